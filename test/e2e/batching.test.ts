// Cross-request batching: short requests that wait together are decoded in one batch, and each gets
// what it would get alone (after normalisation), streaming included.
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { normalise } from '../support/text.ts';
import { audioDir, startServer, readTextStream, type RunningServer } from '../support/server.ts';

const CLIPS = ['jfk.flac', 'hotwords.mp3', 'stereo_diarization.wav'];

describe('cross-request batching', () => {
  let server: RunningServer;
  let client: OpenAI;

  before(async () => {
    // One worker, so that requests wait together and a batch forms whenever it is busy.
    server = await startServer({
      EARSHOT_MAX_BATCH: '8',
      EARSHOT_WORKERS_PER_MODEL: '1',
      // A batch decodes whole 30 s windows; the same clips sent alone must too, to be compared with it.
      EARSHOT_FIT_SHORT_AUDIO_SECONDS: '0',
    });
    client = new OpenAI({ baseURL: server.baseURL, apiKey: 'not-needed', maxRetries: 0 });
  });

  after(async () => {
    assert.equal(await server.stop(), 0);
  });

  const transcribe = async (clip: string) =>
    (
      await client.audio.transcriptions.create({
        file: createReadStream(path.join(audioDir, clip)),
        model: 'whisper-1',
      })
    ).text;

  it('gives each request of a batch the text it gets alone', async () => {
    const alone = new Map<string, string>();
    for (const clip of CLIPS) alone.set(clip, await transcribe(clip));

    const logsBefore = server.logs.length;
    const streamed = (async () => {
      const stream = await client.audio.transcriptions.create({
        file: createReadStream(path.join(audioDir, 'jfk.flac')),
        model: 'whisper-1',
        stream: true,
      });
      return readTextStream(stream);
    })();
    const together = [...CLIPS, ...CLIPS];
    const texts = await Promise.all(together.map(transcribe));
    const streamedText = await streamed;

    const batches = server.logs.slice(logsBefore).filter((entry) => entry.msg === 'decoding a batch');
    assert.ok(batches.length >= 1, 'concurrent requests were decoded in at least one batch');
    assert.ok(
      batches.some((entry) => (entry.jobs as string[]).length >= 3),
      'a batch held several requests',
    );
    together.forEach((clip, index) => assert.equal(normalise(texts[index]!), normalise(alone.get(clip)!), clip));
    assert.equal(normalise(streamedText), normalise(alone.get('jfk.flac')!));
  });

  it('does not batch requests whose options differ', async () => {
    const logsBefore = server.logs.length;
    await Promise.all([
      transcribe('jfk.flac'),
      client.audio.transcriptions.create({
        file: createReadStream(path.join(audioDir, 'jfk.flac')),
        model: 'whisper-1',
        language: 'en',
      }),
      client.audio.transcriptions.create({
        file: createReadStream(path.join(audioDir, 'hotwords.mp3')),
        model: 'whisper-1',
        prompt: 'ComfyUI',
      }),
    ]);
    const batches = server.logs.slice(logsBefore).filter((entry) => entry.msg === 'decoding a batch');
    assert.deepEqual(batches, []);
  });
});
