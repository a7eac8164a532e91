// The OpenAI wire contract, checked against the real server and the bundled models with the official
// OpenAI Node SDK used as its documentation shows (raw fetch where the bytes on the wire matter):
// streaming, logprobs, translations, the models API, chunking_strategy, faster-whisper's knobs and
// the exact error of every rejected request.
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI, { toFile } from 'openai';
import type { TranscriptionCreateParamsNonStreaming, TranscriptionStreamEvent } from 'openai/resources/audio';
import { modelsFixture } from '../support/fixtures.ts';
import { normalise } from '../support/text.ts';
import { audioDir, JFK_TEXT, startServer, type RunningServer } from '../support/server.ts';
import { assertErrorResponse, sdkError } from './api-errors.ts';

const audio = (name: string) => createReadStream(path.join(audioDir, name));
const jfk = () => audio('jfk.flac');

interface Logprob {
  token?: string;
  logprob?: number;
  bytes?: number[];
}

/** The UTF-8 text that tokens' bytes put together make. */
const decodeTokens = (tokens: readonly Logprob[]) =>
  Buffer.from(tokens.flatMap((token) => token.bytes ?? [])).toString('utf8');

/** A valid 16 kHz mono 16-bit PCM WAV file of `samples` samples (a quiet 440 Hz tone). */
function wav(samples: number, rate = 16_000): Buffer {
  const dataBytes = samples * 2;
  const file = Buffer.alloc(44 + dataBytes);
  file.write('RIFF', 0, 'ascii');
  file.writeUInt32LE(36 + dataBytes, 4);
  file.write('WAVE', 8, 'ascii');
  file.write('fmt ', 12, 'ascii');
  file.writeUInt32LE(16, 16); // fmt chunk size
  file.writeUInt16LE(1, 20); // PCM
  file.writeUInt16LE(1, 22); // mono
  file.writeUInt32LE(rate, 24);
  file.writeUInt32LE(rate * 2, 28); // byte rate
  file.writeUInt16LE(2, 32); // block align
  file.writeUInt16LE(16, 34); // bits per sample
  file.write('data', 36, 'ascii');
  file.writeUInt32LE(dataBytes, 40);
  for (let i = 0; i < samples; i++) {
    file.writeInt16LE(Math.round(3000 * Math.sin((2 * Math.PI * 440 * i) / rate)), 44 + 2 * i);
  }
  return file;
}

/** Transcription parameters plus fields the SDK's types do not know; the SDK sends them as form fields. */
function withExtras(
  params: TranscriptionCreateParamsNonStreaming<'json'>,
  extras: Record<string, string | number | boolean>,
): TranscriptionCreateParamsNonStreaming<'json'> {
  return { ...params, ...extras };
}

/** Checks srt or vtt subtitles and returns their cues' text, in order. */
function subtitleCues(body: string, format: 'srt' | 'vtt', maxSeconds: number): string[] {
  const separator = format === 'srt' ? ',' : '.';
  const time = `(\\d{2}):(\\d{2}):(\\d{2})\\${separator}(\\d{3})`;
  const timing = new RegExp(`^${time} --> ${time}$`);
  const seconds = (parts: string[]) =>
    Number(parts[0]) * 3600 + Number(parts[1]) * 60 + Number(parts[2]) + Number(parts[3]) / 1000;
  let rest = body;
  if (format === 'vtt') {
    assert.ok(body.startsWith('WEBVTT\n\n'), 'vtt starts with its header');
    rest = body.slice('WEBVTT\n\n'.length);
  }
  assert.ok(rest.endsWith('\n\n'), 'the last cue ends with a blank line');
  const cues = rest.slice(0, -2).split('\n\n');
  let previousStart = 0;
  return cues.map((cue, index) => {
    const lines = cue.split('\n');
    if (format === 'srt') assert.equal(lines.shift(), String(index + 1), 'srt cues are numbered from 1');
    const match = timing.exec(lines.shift() ?? '');
    assert.ok(match, `cue ${index + 1} has a timing line`);
    const start = seconds(match.slice(1, 5));
    const end = seconds(match.slice(5, 9));
    assert.ok(start >= previousStart && start <= end && end <= maxSeconds, `cue ${index + 1}: ${start} --> ${end}`);
    previousStart = start;
    assert.ok(lines.length > 0 && lines.every((line) => line.trim() !== ''), `cue ${index + 1} has text`);
    return lines.join(' ');
  });
}

describe('the OpenAI contract, through the OpenAI Node SDK', () => {
  let server: RunningServer;
  let client: OpenAI;
  let fixtures: string;

  before(async () => {
    // A models directory with an OWNER/NAME model: a copy of the bundled tiny.en.
    const fixture = await modelsFixture(['acme/tiny-copy']);
    fixtures = fixture.root;
    server = await startServer({
      EARSHOT_MODELS_DIR: fixture.models,
      // Offline and with an empty hub cache, so the model list holds exactly what this file set up.
      EARSHOT_HUB_DOWNLOAD: 'false',
      EARSHOT_HUB_CACHE_DIR: fixture.hubCache,
    });
    client = new OpenAI({ baseURL: server.baseURL, apiKey: 'not-needed', maxRetries: 0 });
  });

  after(async () => {
    const code = await server.stop();
    await rm(fixtures, { recursive: true, force: true });
    assert.equal(code, 0, 'the server exits cleanly on SIGTERM');
  });

  describe('streaming (stream=true)', () => {
    /** Every event of a streamed transcription, checked to be deltas followed by one done event. */
    async function collect(stream: AsyncIterable<TranscriptionStreamEvent>) {
      const events: TranscriptionStreamEvent[] = [];
      for await (const event of stream) events.push(event);
      const done = events.at(-1);
      assert.ok(done?.type === 'transcript.text.done', 'the last event is transcript.text.done');
      const deltas = events.slice(0, -1).map((event) => {
        if (event.type !== 'transcript.text.delta') assert.fail(`a ${event.type} event before the done event`);
        return event;
      });
      return { deltas, done };
    }

    it('sends the text word by word, then the done event with usage', async () => {
      const stream = await client.audio.transcriptions.create({ file: jfk(), model: 'whisper-1', stream: true });
      const { deltas, done } = await collect(stream);
      assert.ok(deltas.length >= 5, `${deltas.length} deltas`);
      for (const delta of deltas) assert.match(delta.delta, /^\s*\S+$/, 'one word per delta');
      assert.equal(deltas.map((delta) => delta.delta).join(''), done.text);
      assert.equal(done.text, JFK_TEXT);
      assert.deepEqual(done.usage, { type: 'duration', seconds: 11 });
      assert.equal(done.logprobs, undefined, 'no logprobs unless asked for');
      assert.ok(deltas.every((delta) => delta.logprobs === undefined));
    });

    it('is text/event-stream on the wire and ends with data: [DONE]', async () => {
      const form = new FormData();
      form.append('file', new Blob([await readFile(path.join(audioDir, 'jfk.flac'))]), 'jfk.flac');
      form.append('model', 'whisper-1');
      form.append('stream', 'true');
      const response = await fetch(`${server.baseURL}/audio/transcriptions`, { method: 'POST', body: form });
      assert.equal(response.status, 200);
      assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
      const body = await response.text();
      assert.ok(body.endsWith('data: [DONE]\n\n'), body.slice(-100));
      const frames = body.slice(0, -2).split('\n\n');
      assert.equal(frames.pop(), 'data: [DONE]');
      const events = frames.map((frame) => {
        assert.ok(frame.startsWith('data: ') && !frame.includes('\n'), `one data line per event: ${frame}`);
        return JSON.parse(frame.slice('data: '.length)) as { type: string; delta?: string; text?: string };
      });
      assert.deepEqual(events.at(-1), {
        type: 'transcript.text.done',
        text: JFK_TEXT,
        usage: { type: 'duration', seconds: 11 },
      });
      assert.equal(
        events
          .slice(0, -1)
          .map((event) => event.delta)
          .join(''),
        JFK_TEXT,
      );
    });

    it('streams with response_format text too', async () => {
      const stream = await client.audio.transcriptions.create({
        file: jfk(),
        model: 'whisper-1',
        stream: true,
        response_format: 'text',
      });
      const { deltas, done } = await collect(stream);
      assert.ok(deltas.length >= 5, `${deltas.length} deltas`);
      assert.equal(deltas.map((delta) => delta.delta).join(''), JFK_TEXT);
      assert.equal(done.text, JFK_TEXT);
    });

    it('streams verbose_json (earshot extension): segment events, then the verbose_json answer as the done event', async () => {
      const { data: stream, response } = await client.audio.transcriptions
        .create({
          file: audio('multilingual.mp3'),
          model: 'whisper-1',
          stream: true,
          response_format: 'verbose_json',
          timestamp_granularities: ['word', 'segment'],
          // The sequential path: one segment after another, rather than every chunk in one batch.
          ...{ batch_size: 1 },
        })
        .withResponse();
      const duration = Number(response.headers.get('x-audio-duration'));
      assert.ok(Math.abs(duration - 60) < 0.5, `x-audio-duration: ${duration}`);
      const events: TranscriptionStreamEvent[] = [];
      for await (const event of stream) events.push(event);
      const segments = events.filter((event) => event.type === 'transcript.text.segment');
      assert.ok(segments.length >= 2, `${segments.length} segment events`);
      const done = events.at(-1) as unknown as Record<string, unknown> & { segments: { id: number }[] };
      assert.equal(done.type, 'transcript.text.done');
      assert.equal(done.duration, duration);
      assert.equal(done.language, 'english');
      assert.deepEqual(
        segments.map(({ id, start, end, text }) => ({ id, start, end, text })),
        (done.segments as unknown as { id: number; start: number; end: number; text: string }[]).map((segment) => ({
          id: `seg_${segment.id}`,
          start: segment.start,
          end: segment.end,
          text: segment.text,
        })),
        'one segment event per segment of the answer, in order',
      );
      const ends = segments.map((segment) => segment.end);
      assert.deepEqual(
        ends,
        [...ends].sort((a, b) => a - b),
        'segments end in order: progress only grows',
      );
      assert.ok((ends.at(-1) ?? 0) <= duration);
      // Each segment's words came with it; together, they are the answer's words.
      const words = segments.flatMap((segment) => (segment as unknown as { words: unknown[] }).words);
      assert.deepEqual(words, done.words);
      // Its deltas, in between, put together the text, as in every stream.
      const deltas = events.filter((event) => event.type === 'transcript.text.delta');
      assert.equal(deltas.map((delta) => delta.delta).join(''), done.text);
    });

    it('streams translations too (earshot extension), with no usage as a translation has none', async () => {
      // OpenAI's translations do not stream, so the SDK is asked to read the events itself.
      const stream = (await client.audio.translations.create(
        { file: jfk(), model: 'whisper-1', ...{ stream: true } },
        { stream: true },
      )) as unknown as AsyncIterable<TranscriptionStreamEvent>;
      const { deltas, done } = await collect(stream);
      assert.equal(deltas.map((delta) => delta.delta).join(''), done.text);
      assert.equal(normalise(done.text), normalise(JFK_TEXT));
      assert.equal(done.usage, undefined);
    });

    it('refuses srt with stream=true', async () => {
      await assert.rejects(
        client.audio.transcriptions.create({ file: jfk(), model: 'whisper-1', stream: true, response_format: 'srt' }),
        sdkError(OpenAI.BadRequestError, {
          status: 400,
          type: 'invalid_request_error',
          param: 'response_format',
          code: 'unsupported_value',
          message: "response_format 'srt' is not compatible with stream=true. Use 'json' or 'text' instead.",
        }),
      );
    });

    it('answers a file that is not audio with a plain 400, not a stream', async () => {
      const notAudio = await toFile(Buffer.from('this is not audio at all'), 'notes.mp3');
      await assert.rejects(
        client.audio.transcriptions.create({ file: notAudio, model: 'whisper-1', stream: true }),
        sdkError(OpenAI.BadRequestError, {
          status: 400,
          type: 'invalid_request_error',
          param: null,
          code: null,
          message: /^Invalid file format/,
        }),
      );
    });
  });

  describe('logprobs (include[]=logprobs)', () => {
    it('returns every token with its log probability in json', async () => {
      const transcription = await client.audio.transcriptions.create({
        file: jfk(),
        model: 'whisper-1',
        include: ['logprobs'],
      });
      assert.equal(transcription.text, JFK_TEXT);
      const logprobs = transcription.logprobs ?? [];
      assert.ok(logprobs.length >= 20, `${logprobs.length} tokens`);
      for (const token of logprobs) {
        assert.deepEqual(Object.keys(token).sort(), ['bytes', 'logprob', 'token']);
        assert.ok(typeof token.logprob === 'number' && token.logprob <= 0, `logprob ${token.logprob}`);
        assert.ok(Array.isArray(token.bytes) && token.bytes.length > 0);
        assert.ok(token.bytes.every((byte) => Number.isInteger(byte) && byte >= 0 && byte <= 255));
        // JFK is ASCII, so each token's bytes are its text.
        assert.equal(token.token, decodeTokens([token]));
      }
      assert.equal(decodeTokens(logprobs), ` ${transcription.text}`);
      assert.deepEqual((transcription as unknown as { usage: unknown }).usage, { type: 'duration', seconds: 11 });
    });

    it('gives each streamed delta its own tokens, and the done event all of them', async () => {
      const stream = await client.audio.transcriptions.create({
        file: jfk(),
        model: 'whisper-1',
        stream: true,
        include: ['logprobs'],
      });
      const deltas: OpenAI.Audio.TranscriptionTextDeltaEvent[] = [];
      let done: OpenAI.Audio.TranscriptionTextDoneEvent | undefined;
      for await (const event of stream) {
        if (event.type === 'transcript.text.delta') deltas.push(event);
        else if (event.type === 'transcript.text.done') done = event;
        else assert.fail(`unexpected ${event.type} event`);
      }
      assert.ok(done, 'a done event');
      assert.ok(deltas.length >= 5);
      deltas.forEach((delta, index) => {
        assert.ok(delta.logprobs && delta.logprobs.length > 0, `delta ${index} has logprobs`);
        const expected = index === 0 ? ` ${delta.delta}` : delta.delta;
        assert.equal(decodeTokens(delta.logprobs), expected, `delta ${index}`);
        assert.ok(delta.logprobs.every((token) => typeof token.logprob === 'number' && token.logprob <= 0));
      });
      assert.equal(done.text, JFK_TEXT);
      assert.deepEqual(
        done.logprobs,
        deltas.flatMap((delta) => delta.logprobs ?? []),
      );
      assert.equal(decodeTokens(done.logprobs ?? []), ` ${JFK_TEXT}`);
    });

    it('refuses logprobs with response_format text', async () => {
      await assert.rejects(
        client.audio.transcriptions.create({
          file: jfk(),
          model: 'whisper-1',
          include: ['logprobs'],
          response_format: 'text',
        }),
        sdkError(OpenAI.BadRequestError, {
          status: 400,
          type: 'invalid_request_error',
          param: 'include',
          code: 'unsupported_value',
          message: "include[]=logprobs is not compatible with response_format 'text'. Use 'json' instead.",
        }),
      );
    });
  });

  // The SDK's translation types ignore response_format (every overload gives Translation), hence the casts.
  describe('translations of German and English speech (multilingual.mp3, 60 s)', () => {
    const multilingual = () => audio('multilingual.mp3');
    const granted = /permission is hereby granted/i;

    it('json: text only, no usage', async () => {
      const translation = await client.audio.translations.create({ file: multilingual(), model: 'whisper-1' });
      assert.deepEqual(Object.keys(translation), ['text']);
      assert.match(translation.text, granted);
    });

    it('text: a raw string', async () => {
      const text = (await client.audio.translations.create({
        file: multilingual(),
        model: 'whisper-1',
        response_format: 'text',
      })) as unknown as string;
      assert.equal(typeof text, 'string');
      assert.match(text, granted);
      assert.ok(text.endsWith('\n') && !text.startsWith('{') && !text.startsWith('"'));
    });

    it('srt and vtt: subtitles that parse, with the same cues', async () => {
      const srt = (await client.audio.translations.create({
        file: multilingual(),
        model: 'whisper-1',
        response_format: 'srt',
      })) as unknown as string;
      const vtt = (await client.audio.translations.create({
        file: multilingual(),
        model: 'whisper-1',
        response_format: 'vtt',
      })) as unknown as string;
      const srtCues = subtitleCues(srt, 'srt', 60);
      assert.ok(srtCues.length >= 3, `${srtCues.length} cues`);
      assert.match(srtCues.join(' '), granted);
      assert.deepEqual(subtitleCues(vtt, 'vtt', 60), srtCues);
    });

    it("verbose_json: task 'translate', language 'english', no usage", async () => {
      const verbose = (await client.audio.translations.create({
        file: multilingual(),
        model: 'whisper-1',
        response_format: 'verbose_json',
      })) as unknown as OpenAI.Audio.TranslationVerbose & { task: string };
      assert.equal(verbose.task, 'translate');
      assert.equal(verbose.language, 'english');
      assert.ok(Math.abs(verbose.duration - 59.9) < 0.5, `duration ${verbose.duration}`);
      assert.match(verbose.text, granted);
      assert.ok((verbose.segments ?? []).length >= 3);
      assert.deepEqual(Object.keys(verbose), ['task', 'language', 'duration', 'text', 'segments']);
    });
  });

  describe('models API', () => {
    it('lists the models it can serve, in OpenAI shape', async () => {
      const ids: string[] = [];
      for await (const model of client.models.list()) {
        // OpenAI's four fields, plus earshot's `state` (which the SDK passes through).
        assert.deepEqual(Object.keys(model).sort(), ['created', 'id', 'object', 'owned_by', 'state']);
        assert.ok(['loaded', 'loading', 'available'].includes((model as unknown as { state: string }).state));
        assert.equal(model.object, 'model');
        assert.ok(Number.isInteger(model.created) && model.created >= 0);
        assert.equal(typeof model.owned_by, 'string');
        ids.push(model.id);
      }
      for (const id of ['whisper-1', 'base', 'tiny.en', 'acme/tiny-copy']) assert.ok(ids.includes(id), id);
      assert.equal(new Set(ids).size, ids.length, 'no id twice');
    });

    it('retrieves one model', async () => {
      const model = await client.models.retrieve('whisper-1');
      assert.equal(model.id, 'whisper-1');
      assert.equal(model.object, 'model');
      assert.equal(model.owned_by, 'earshot');
    });

    it('retrieves a model whose id holds a slash, encoded or not, and transcribes with it', async () => {
      const model = await client.models.retrieve('acme/tiny-copy');
      assert.deepEqual(
        { id: model.id, object: model.object, owned_by: model.owned_by },
        { id: 'acme/tiny-copy', object: 'model', owned_by: 'acme' },
      );
      for (const route of ['acme%2Ftiny-copy', 'acme/tiny-copy']) {
        const response = await fetch(`${server.baseURL}/models/${route}`);
        assert.equal(response.status, 200, route);
        assert.deepEqual(await response.json(), model, route);
      }
      const transcription = await client.audio.transcriptions.create({ file: jfk(), model: 'acme/tiny-copy' });
      assert.equal(normalise(transcription.text), normalise(JFK_TEXT));
    });

    it('answers an unknown model with model_not_found', async () => {
      await assert.rejects(
        client.models.retrieve('no-such-model'),
        sdkError(OpenAI.NotFoundError, {
          status: 404,
          type: 'invalid_request_error',
          param: null,
          code: 'model_not_found',
          message: 'The model `no-such-model` does not exist or you do not have access to it.',
        }),
      );
    });
  });

  describe('chunking_strategy', () => {
    it("'auto' gives the reference text", async () => {
      const transcription = await client.audio.transcriptions.create({
        file: jfk(),
        model: 'whisper-1',
        chunking_strategy: 'auto',
      });
      assert.equal(normalise(transcription.text), normalise(JFK_TEXT));
    });

    it('a server_vad object gives the reference text', async () => {
      const transcription = await client.audio.transcriptions.create({
        file: jfk(),
        model: 'whisper-1',
        chunking_strategy: { type: 'server_vad', threshold: 0.5, prefix_padding_ms: 300, silence_duration_ms: 500 },
      });
      assert.equal(normalise(transcription.text), normalise(JFK_TEXT));
    });

    it('refuses a threshold out of range, naming it', async () => {
      await assert.rejects(
        client.audio.transcriptions.create({
          file: jfk(),
          model: 'whisper-1',
          chunking_strategy: { type: 'server_vad', threshold: 2 },
        }),
        sdkError(OpenAI.BadRequestError, {
          status: 400,
          type: 'invalid_request_error',
          param: 'chunking_strategy.threshold',
          code: 'invalid_value',
          message: "Invalid chunking_strategy.threshold '2': use a number from 0 to 1.",
        }),
      );
    });
  });

  describe("faster-whisper's knobs as extra form fields", () => {
    it('beam_size=1', async () => {
      const transcription = await client.audio.transcriptions.create(
        withExtras({ file: jfk(), model: 'whisper-1' }, { beam_size: 1 }),
      );
      assert.equal(normalise(transcription.text), normalise(JFK_TEXT));
    });

    it('hotwords makes a product name come out right', async () => {
      // Without the hotword, base hears "confu i" here.
      const transcription = await client.audio.transcriptions.create(
        withExtras({ file: audio('hotwords.mp3'), model: 'whisper-1' }, { hotwords: 'ComfyUI' }),
      );
      assert.match(transcription.text, /ComfyUI/);
    });

    it('batch_size=8 decodes the 60 s recording to English text', async () => {
      const transcription = await client.audio.transcriptions.create(
        withExtras({ file: audio('multilingual.mp3'), model: 'whisper-1' }, { batch_size: 8 }),
      );
      assert.match(transcription.text, /permission is hereby granted/i);
      assert.doesNotMatch(transcription.text, /[äöüß]|\b(und|der|die|das|Software-)\b/i, 'no German');
      assert.deepEqual((transcription as unknown as { usage: unknown }).usage, { type: 'duration', seconds: 60 });
    });

    it('vad_filter=true with vad_parameters as JSON', async () => {
      const transcription = await client.audio.transcriptions.create(
        withExtras(
          { file: jfk(), model: 'whisper-1' },
          { vad_filter: true, vad_parameters: JSON.stringify({ threshold: 0.5, min_silence_duration_ms: 500 }) },
        ),
      );
      assert.equal(normalise(transcription.text), normalise(JFK_TEXT));
    });

    it('refuses beam_size=0, naming it', async () => {
      await assert.rejects(
        client.audio.transcriptions.create(withExtras({ file: jfk(), model: 'whisper-1' }, { beam_size: 0 })),
        sdkError(OpenAI.BadRequestError, {
          status: 400,
          type: 'invalid_request_error',
          param: 'beam_size',
          code: 'invalid_value',
          message: "Invalid beam_size '0': use a whole number from 1 to 20.",
        }),
      );
    });

    it('accepts an unknown field', async () => {
      const form = new FormData();
      form.append('file', new Blob([await readFile(path.join(audioDir, 'jfk.flac'))]), 'jfk.flac');
      form.append('model', 'whisper-1');
      form.append('user', 'abc');
      const response = await fetch(`${server.baseURL}/audio/transcriptions`, { method: 'POST', body: form });
      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), { text: JFK_TEXT, usage: { type: 'duration', seconds: 11 } });
    });
  });

  describe('exact errors', () => {
    const badRequest = (param: string | null, code: string | null, message: string | RegExp) =>
      sdkError(OpenAI.BadRequestError, { status: 400, type: 'invalid_request_error', param, code, message });

    it('missing model', async () => {
      await assert.rejects(
        client.audio.transcriptions.create({ file: jfk() } as unknown as TranscriptionCreateParamsNonStreaming),
        badRequest('model', 'missing_required_parameter', "Missing required parameter: 'model'."),
      );
    });

    it('unknown model', async () => {
      await assert.rejects(
        client.audio.transcriptions.create({ file: jfk(), model: 'gpt-99-transcribe' }),
        sdkError(OpenAI.NotFoundError, {
          status: 404,
          type: 'invalid_request_error',
          param: null,
          code: 'model_not_found',
          message: 'The model `gpt-99-transcribe` does not exist or you do not have access to it.',
        }),
      );
    });

    it('bad response_format', async () => {
      await assert.rejects(
        client.audio.transcriptions.create({
          file: jfk(),
          model: 'whisper-1',
          response_format: 'xml' as 'json',
        }),
        badRequest(
          'response_format',
          'invalid_value',
          "Invalid value: 'xml'. Supported values are: 'json', 'text', 'srt', 'verbose_json', 'vtt', and 'diarized_json'.",
        ),
      );
    });

    it('timestamp_granularities without verbose_json', async () => {
      await assert.rejects(
        client.audio.transcriptions.create({ file: jfk(), model: 'whisper-1', timestamp_granularities: ['word'] }),
        badRequest(
          'timestamp_granularities',
          'invalid_value',
          "timestamp_granularities needs response_format 'verbose_json'.",
        ),
      );
    });

    it('temperature out of range', async () => {
      await assert.rejects(
        client.audio.transcriptions.create({ file: jfk(), model: 'whisper-1', temperature: 2 }),
        badRequest('temperature', 'invalid_value', "Invalid temperature '2': use a number from 0 to 1."),
      );
    });

    it('unknown language', async () => {
      await assert.rejects(
        client.audio.transcriptions.create({ file: jfk(), model: 'whisper-1', language: 'xx' }),
        badRequest(
          'language',
          'invalid_language_format',
          "Invalid language 'xx'. Language parameter must be specified in ISO-639-1 format.",
        ),
      );
    });

    it('a file that is not audio', async () => {
      const notAudio = await toFile(Buffer.from('RIFF....WAVEnot really'), 'fake.wav');
      await assert.rejects(
        client.audio.transcriptions.create({ file: notAudio, model: 'whisper-1' }),
        badRequest(null, null, /^Invalid file format/),
      );
    });

    it('audio shorter than 0.1 s', async () => {
      const short = await toFile(wav(800), 'short.wav');
      await assert.rejects(
        client.audio.transcriptions.create({ file: short, model: 'whisper-1' }),
        badRequest('file', 'audio_too_short', 'Audio file is too short. Minimum audio length is 0.1 seconds.'),
      );
    });

    it('a file over 25 MiB', async () => {
      const tooLarge = await toFile(Buffer.alloc(25 * 1024 * 1024 + 1), 'big.wav');
      await assert.rejects(
        client.audio.transcriptions.create({ file: tooLarge, model: 'whisper-1' }),
        sdkError(OpenAI.APIError, {
          status: 413,
          type: 'server_error',
          param: null,
          code: null,
          message: 'Maximum content size limit (26214400) exceeded (26214401 bytes read)',
        }),
      );
    });

    it('diarized_json of a translation', async () => {
      await assert.rejects(
        client.audio.translations.create({
          file: jfk(),
          model: 'whisper-1',
          response_format: 'diarized_json' as 'json',
        }),
        badRequest(
          'response_format',
          'unsupported_value',
          "response_format 'diarized_json' is for transcriptions: translations have no speakers.",
        ),
      );
    });

    it('a JSON body instead of a multipart form', async () => {
      const response = await fetch(`${server.baseURL}/audio/transcriptions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'whisper-1', file: 'jfk.flac' }),
      });
      await assertErrorResponse(response, {
        status: 400,
        type: 'invalid_request_error',
        param: null,
        code: null,
        message: "Expected a multipart/form-data body with the fields 'file' and 'model'.",
      });
    });
  });
});
