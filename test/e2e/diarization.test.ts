// Diarization through the real server, the bundled models and real voices, called with the official
// OpenAI Node SDK: the two voices of stereo_diarization.wav one after the other (left: "He began a
// confused complaint against the wizard…", right: "The horizon seems extremely distant."), JFK alone.
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI, { toFile } from 'openai';
import type { TranscriptionDiarized, TranscriptionStreamEvent } from 'openai/resources/audio/transcriptions';
import { encodeWav16k } from '../../src/realtime/audio.ts';
import { concat } from '../support/reference-audio.ts';
import { audioDir, startServer, type RunningServer } from '../support/server.ts';
import { sdkError } from './api-errors.ts';

const RATE = 16_000;

/** The two channels of a 16-bit PCM WAV file, as floats. */
async function channels(file: string): Promise<[Float32Array, Float32Array]> {
  const wav = await readFile(file);
  let at = 12;
  while (wav.toString('ascii', at, at + 4) !== 'data') at += 8 + wav.readUInt32LE(at + 4);
  const data = wav.subarray(at + 8, at + 8 + wav.readUInt32LE(at + 4));
  const frames = data.length / 4;
  const left = new Float32Array(frames);
  const right = new Float32Array(frames);
  for (let i = 0; i < frames; i++) {
    left[i] = data.readInt16LE(i * 4) / 32768;
    right[i] = data.readInt16LE(i * 4 + 2) / 32768;
  }
  return [left, right];
}

const dataUrl = (wav: Buffer) => `data:audio/wav;base64,${wav.toString('base64')}`;

describe('diarization through the OpenAI Node SDK', () => {
  let server: RunningServer;
  let client: OpenAI;
  let tmpDir: string;
  let conversation: Buffer;
  let left: Buffer;
  let right: Buffer;

  before(async () => {
    const [leftVoice, rightVoice] = await channels(path.join(audioDir, 'stereo_diarization.wav'));
    // The right voice speaks from 0.2 s to 2.8 s of its channel.
    const rightSpeech = rightVoice.subarray(0.2 * RATE, 2.8 * RATE);
    const pause = new Float32Array(0.8 * RATE);
    conversation = encodeWav16k(concat(leftVoice, pause, rightSpeech, pause));
    left = encodeWav16k(leftVoice);
    right = encodeWav16k(rightSpeech);
    tmpDir = await mkdtemp(path.join(os.tmpdir(), 'earshot-e2e-diarization-'));
    server = await startServer({ EARSHOT_TMP_DIR: tmpDir });
    client = new OpenAI({ baseURL: server.baseURL, apiKey: 'not-needed', maxRetries: 0 });
  });

  after(async () => {
    assert.equal(await server.stop(), 0);
    assert.deepEqual(await readdir(tmpDir), [], 'no upload or reference clip is left');
  });

  const talk = () => toFile(conversation, 'talk.wav');

  it("answers diarized_json in OpenAI's shape, a speaker per voice", async () => {
    const result = (await client.audio.transcriptions.create({
      file: await talk(),
      model: 'whisper-1',
      response_format: 'diarized_json',
    })) as TranscriptionDiarized;
    assert.equal(result.task, 'transcribe');
    assert.ok(result.duration > 8, String(result.duration));
    assert.deepEqual(
      result.segments.map((segment) => [segment.id, segment.type, segment.speaker]),
      [
        ['seg_0', 'transcript.text.segment', 'A'],
        ['seg_1', 'transcript.text.segment', 'B'],
      ],
    );
    const [first, second] = result.segments;
    assert.match(first?.text ?? '', /wizard/);
    assert.match(second?.text ?? '', /horizon/);
    assert.ok((first?.end ?? Infinity) <= (second?.start ?? 0), 'the turns follow each other');
    assert.equal(
      result.text,
      result.segments
        .map((segment) => segment.text)
        .join('')
        .trim(),
    );
    assert.deepEqual(result.usage, { type: 'duration', seconds: Math.ceil(result.duration) });
  });

  it('names known speakers by their reference clips, and one speaker when asked for one', async () => {
    const named = (await client.audio.transcriptions.create({
      file: await talk(),
      model: 'whisper-1',
      response_format: 'diarized_json',
      known_speaker_names: ['horizon', 'wizard'],
      known_speaker_references: [dataUrl(right), dataUrl(left)],
    })) as TranscriptionDiarized;
    assert.deepEqual(
      named.segments.map((segment) => segment.speaker),
      ['wizard', 'horizon'],
    );
    const one = (await client.audio.transcriptions.create({
      file: await talk(),
      model: 'whisper-1',
      response_format: 'diarized_json',
      // num_speakers is earshot's own field: the SDK passes it on as it is.
      ...({ num_speakers: 1 } as object),
    })) as TranscriptionDiarized;
    assert.deepEqual([...new Set(one.segments.map((segment) => segment.speaker))], ['A']);
  });

  it('streams transcript.text.segment events, then transcript.text.done with the whole text', async () => {
    const stream = await client.audio.transcriptions.create({
      file: await talk(),
      model: 'whisper-1',
      response_format: 'diarized_json',
      stream: true,
    });
    const events: TranscriptionStreamEvent[] = [];
    for await (const event of stream) events.push(event);
    assert.deepEqual(
      events.map((event) => event.type),
      ['transcript.text.segment', 'transcript.text.segment', 'transcript.text.done'],
    );
    const segments = events.filter((event) => event.type === 'transcript.text.segment');
    assert.deepEqual(
      segments.map((event) => [event.id, event.speaker]),
      [
        ['seg_0', 'A'],
        ['seg_1', 'B'],
      ],
    );
    const done = events.at(-1);
    assert.ok(done?.type === 'transcript.text.done');
    assert.equal(
      done.text,
      segments
        .map((event) => event.text)
        .join('')
        .trim(),
    );
  });

  it('gives one speaker to one voice, labelled in vtt', async () => {
    const vtt = await client.audio.transcriptions.create({
      file: createReadStream(path.join(audioDir, 'jfk.flac')),
      model: 'whisper-1',
      response_format: 'vtt',
      ...({ speaker_labels: true } as object),
    });
    const cues = vtt.split('\n').filter((line) => line.startsWith('<v '));
    assert.ok(cues.length > 0, vtt);
    for (const cue of cues) assert.ok(cue.startsWith('<v A>'), cue);
  });

  it('refuses a reference that is not audio with 400 invalid_value naming known_speaker_references', async () => {
    await assert.rejects(
      client.audio.transcriptions.create({
        file: await talk(),
        model: 'whisper-1',
        response_format: 'diarized_json',
        known_speaker_names: ['someone'],
        known_speaker_references: [dataUrl(Buffer.from('hello there, not audio at all'))],
      }),
      sdkError(OpenAI.BadRequestError, {
        status: 400,
        type: 'invalid_request_error',
        param: 'known_speaker_references',
        code: 'invalid_value',
        message: /known_speaker_references\[0\].*could not be decoded/,
      }),
    );
  });
});
