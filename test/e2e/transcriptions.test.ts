// The real server, the bundled model and real recordings, called with the official OpenAI Node SDK.
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI, { toFile } from 'openai';
import { normalise } from '../support/text.ts';
import { audioDir, JFK_TEXT, startServer, type RunningServer } from '../support/server.ts';
import { assertErrorResponse, sdkError } from './api-errors.ts';

const jfk = () => createReadStream(path.join(audioDir, 'jfk.flac'));

describe('transcriptions through the OpenAI Node SDK', () => {
  let server: RunningServer;
  let client: OpenAI;
  let tmpDir: string;

  before(async () => {
    tmpDir = await mkdtemp(path.join(os.tmpdir(), 'earshot-e2e-'));
    server = await startServer({ EARSHOT_TMP_DIR: tmpDir });
    client = new OpenAI({ baseURL: server.baseURL, apiKey: 'not-needed', maxRetries: 0 });
  });

  after(async () => {
    const code = await server.stop();
    assert.equal(code, 0, `the server exits cleanly on SIGTERM; its warnings and errors: ${problems(server)}`);
    assert.deepEqual(await readdir(tmpDir), [], 'the upload directory is removed at shutdown');
  });

  it('transcribes jfk.flac to the reference text as json', async () => {
    const transcription = await client.audio.transcriptions.create({ file: jfk(), model: 'whisper-1' });
    assert.equal(transcription.text, JFK_TEXT);
    assert.deepEqual((transcription as unknown as { usage: unknown }).usage, { type: 'duration', seconds: 11 });
  });

  it('returns text as a raw string', async () => {
    const text = await client.audio.transcriptions.create({
      file: jfk(),
      model: 'whisper-1',
      response_format: 'text',
    });
    assert.equal(typeof text, 'string');
    assert.equal(text, `${JFK_TEXT}\n`);
  });

  it('returns srt and vtt that parse', async () => {
    const srt = await client.audio.transcriptions.create({ file: jfk(), model: 'whisper-1', response_format: 'srt' });
    const cues = srt.trim().split(/\n\n/);
    assert.ok(cues.length >= 1);
    cues.forEach((cue, index) => {
      const [number, timing, ...text] = cue.split('\n');
      assert.equal(number, String(index + 1));
      assert.match(timing ?? '', /^\d{2}:\d{2}:\d{2},\d{3} --> \d{2}:\d{2}:\d{2},\d{3}$/);
      assert.ok(text.join(' ').length > 0);
    });
    assert.equal(normalise(cues.map((cue) => cue.split('\n').slice(2).join(' ')).join(' ')), normalise(JFK_TEXT));

    const vtt = await client.audio.transcriptions.create({ file: jfk(), model: 'whisper-1', response_format: 'vtt' });
    assert.ok(vtt.startsWith('WEBVTT\n\n'));
    for (const cue of vtt.slice('WEBVTT\n\n'.length).trim().split(/\n\n/)) {
      assert.match(cue.split('\n')[0] ?? '', /^\d{2}:\d{2}:\d{2}\.\d{3} --> \d{2}:\d{2}:\d{2}\.\d{3}$/);
    }
  });

  it('returns verbose_json with segments and monotonic words within the duration', async () => {
    const verbose = await client.audio.transcriptions.create({
      file: jfk(),
      model: 'whisper-1',
      response_format: 'verbose_json',
      timestamp_granularities: ['word', 'segment'],
    });
    assert.equal(verbose.language, 'english');
    assert.ok(Math.abs(verbose.duration - 11) < 0.1);
    assert.equal(verbose.text, JFK_TEXT);
    assert.ok(verbose.segments && verbose.segments.length >= 1);
    for (const segment of verbose.segments) {
      assert.deepEqual(Object.keys(segment).sort(), [
        'avg_logprob',
        'compression_ratio',
        'end',
        'id',
        'no_speech_prob',
        'seek',
        'start',
        'temperature',
        'text',
        'tokens',
      ]);
    }
    const words = verbose.words ?? [];
    assert.equal(normalise(words.map((w) => w.word).join(' ')), normalise(JFK_TEXT));
    let previousStart = 0;
    for (const word of words) {
      assert.ok(word.start >= previousStart, `${word.word} starts before the word before it`);
      assert.ok(word.start <= word.end && word.end <= verbose.duration);
      previousStart = word.start;
    }
  });

  it('leaves out segments when only word timestamps are asked for', async () => {
    const verbose = await client.audio.transcriptions.create({
      file: jfk(),
      model: 'whisper-1',
      response_format: 'verbose_json',
      timestamp_granularities: ['word'],
    });
    assert.equal(verbose.segments, undefined);
    assert.ok((verbose.words ?? []).length > 10);
  });

  it('accepts the file before the model field, and any model name form that names the bundled model', async () => {
    for (const model of ['base', 'Systran/faster-whisper-base', 'tiny.en']) {
      const form = new FormData();
      form.append('file', new Blob([await readFile(path.join(audioDir, 'jfk.flac'))]), 'speech.flac');
      form.append('model', model);
      const response = await fetch(`${server.baseURL}/audio/transcriptions`, { method: 'POST', body: form });
      assert.equal(response.status, 200, model);
      const body = (await response.json()) as { text: string };
      assert.equal(normalise(body.text), normalise(JFK_TEXT), model);
    }
  });

  it('translates German speech to English', async () => {
    const translation = await client.audio.translations.create({
      file: createReadStream(path.join(audioDir, 'multilingual.mp3')),
      model: 'whisper-1',
      response_format: 'verbose_json',
    });
    assert.equal((translation as unknown as { task: string }).task, 'translate');
    assert.match(translation.text, /permission is hereby granted/i);
  });

  it('answers errors in OpenAI shape, raised by the SDK as typed exceptions', async () => {
    await assert.rejects(
      client.audio.transcriptions.create({ file: jfk(), model: 'no-such-model' }),
      sdkError(OpenAI.NotFoundError, {
        status: 404,
        type: 'invalid_request_error',
        param: null,
        code: 'model_not_found',
        message: 'The model `no-such-model` does not exist or you do not have access to it.',
      }),
    );
    const notAudio = await toFile(Buffer.from('this is not audio'), 'notes.txt');
    await assert.rejects(client.audio.transcriptions.create({ file: notAudio, model: 'whisper-1' }), (error) => {
      sdkError(OpenAI.BadRequestError, {
        status: 400,
        type: 'invalid_request_error',
        param: null,
        code: null,
        message: /^Invalid file format/,
      })(error);
      assert.doesNotMatch((error as Error).message, new RegExp(tmpDir), 'the message leaks no server path');
      return true;
    });
    await assert.rejects(
      client.audio.transcriptions.create({ file: jfk(), model: 'whisper-1', timestamp_granularities: ['word'] }),
      sdkError(OpenAI.BadRequestError, {
        status: 400,
        type: 'invalid_request_error',
        param: 'timestamp_granularities',
        code: 'invalid_value',
        message: "timestamp_granularities needs response_format 'verbose_json'.",
      }),
    );
    await assert.rejects(
      client.audio.transcriptions.create({ file: jfk(), model: 'whisper-1', language: 'klingon' }),
      sdkError(OpenAI.BadRequestError, {
        status: 400,
        type: 'invalid_request_error',
        param: 'language',
        code: 'invalid_language_format',
        message: "Invalid language 'klingon'. Language parameter must be specified in ISO-639-1 format.",
      }),
    );
    const noFile = await fetch(`${server.baseURL}/audio/transcriptions`, {
      method: 'POST',
      body: (() => {
        const form = new FormData();
        form.append('model', 'whisper-1');
        return form;
      })(),
    });
    await assertErrorResponse(noFile, {
      status: 400,
      type: 'invalid_request_error',
      param: null,
      code: null,
      message: "Missing required parameter: 'file'.",
    });
    const uploads = (await readdir(tmpDir)).filter((name) => name.startsWith('earshot-uploads-'));
    assert.equal(uploads.length, 1);
    assert.deepEqual(await readdir(path.join(tmpDir, uploads[0]!)), [], 'no upload is left behind');
  });

  it('cancels the job of a client that disconnects', async () => {
    const controller = new AbortController();
    const request = client.audio.transcriptions.create(
      { file: createReadStream(path.join(audioDir, 'multilingual.mp3')), model: 'whisper-1' },
      { signal: controller.signal },
    );
    const logsBefore = server.logs.length;
    await waitForLog(server, logsBefore, (entry) => entry.msg === 'job queued');
    controller.abort();
    await assert.rejects(request);
    await waitForLog(server, logsBefore, (entry) => entry.msg === 'client disconnected; job cancelled');
    const transcription = await client.audio.transcriptions.create({ file: jfk(), model: 'whisper-1' });
    assert.equal(transcription.text, JFK_TEXT);
  });
});

/** The server's log lines at level warn or above, for a failure message. */
function problems(server: RunningServer): string {
  const lines = server.logs.filter((entry) => typeof entry.level === 'number' && entry.level >= 40);
  return JSON.stringify(lines.slice(-10));
}

/** Waits for a log line, written after the first `from` lines, that matches. */
async function waitForLog(
  server: RunningServer,
  from: number,
  match: (entry: Record<string, unknown>) => boolean,
): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!server.logs.slice(from).some(match)) {
    if (Date.now() > deadline) throw new Error('expected log line did not appear');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
