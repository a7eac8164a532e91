// One long request on an idle server is decoded by both workers of its model at once (EARSHOT_SHARD_LONG_AUDIO),
// through the official OpenAI Node SDK: its text is the unsharded one, streamed or not, and a client that
// leaves stops both shards.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI, { toFile } from 'openai';
import { decodeAudio, testAudio } from '../support/reference-audio.ts';
import { startServer, readTextStream, type RunningServer } from '../support/server.ts';

const RATE = 16_000;

/** About 70 s of real speech (the recordings one after another, 1 s of silence between), as 16 kHz WAV. */
function longRecording(file: string): string {
  const english = decodeAudio(testAudio('multilingual.mp3'), RATE).subarray(0, Math.round(29.6 * RATE));
  const jfk = decodeAudio(testAudio('jfk.flac'), RATE);
  const parts = [
    jfk,
    english,
    decodeAudio(testAudio('hotwords.mp3'), RATE),
    decodeAudio(testAudio('stereo_diarization.wav'), RATE),
    jfk,
  ];
  const gap = new Float32Array(RATE);
  const samples = parts.flatMap((part) => [...part, ...gap]);
  const wav = Buffer.alloc(44 + samples.length * 2);
  wav.write('RIFF', 0, 'ascii');
  wav.writeUInt32LE(36 + samples.length * 2, 4);
  wav.write('WAVEfmt ', 8, 'ascii');
  wav.writeUInt32LE(16, 16);
  wav.writeUInt16LE(1, 20);
  wav.writeUInt16LE(1, 22);
  wav.writeUInt32LE(RATE, 24);
  wav.writeUInt32LE(RATE * 2, 28);
  wav.writeUInt16LE(2, 32);
  wav.writeUInt16LE(16, 34);
  wav.write('data', 36, 'ascii');
  wav.writeUInt32LE(samples.length * 2, 40);
  samples.forEach((value, index) =>
    wav.writeInt16LE(Math.max(-32768, Math.min(32767, Math.round(value * 32768))), 44 + index * 2),
  );
  writeFileSync(file, wav);
  return file;
}

interface ModelHealth {
  workers: number;
  running: number;
  queued: number;
}

async function defaultModel(server: RunningServer): Promise<ModelHealth> {
  const health = (await (await fetch(`${server.url}/health`)).json()) as { models: ModelHealth[] };
  return health.models[0]!;
}

async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The worker pids that logged decoding a non-empty share of a job's chunks since `from`. */
function shardPids(server: RunningServer, from: number): Set<unknown> {
  const pids = new Set<unknown>();
  for (const entry of server.logs.slice(from)) {
    const share = /shard \d of 2: chunks (\d+) to (\d+) /.exec(String(entry.msg));
    if (entry.worker === 'stderr' && share && Number(share[2]) >= Number(share[1])) pids.add(entry.pid);
  }
  return pids;
}

/** How many jobs of the default model ended with this outcome (earshot_job_duration_seconds). */
async function jobs(server: RunningServer, outcome: 'ok' | 'cancelled'): Promise<number> {
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  const line = metrics
    .split('\n')
    .find((row) => row.startsWith('earshot_job_duration_seconds_count{') && row.includes(`outcome="${outcome}"`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describe('one long request on every worker', () => {
  let sharded: RunningServer;
  let client: OpenAI;
  let directory: string;
  let recording: string;

  before(async () => {
    directory = mkdtempSync(path.join(os.tmpdir(), 'earshot-shards-'));
    recording = longRecording(path.join(directory, 'long.wav'));
    // Debug: the workers' own log lines (which chunks each shard decodes) reach the gateway's log.
    sharded = await startServer({
      EARSHOT_LOG_LEVEL: 'debug',
      EARSHOT_WORKERS_PER_MODEL: '2',
      EARSHOT_CPU_THREADS: '1',
    });
    client = new OpenAI({ baseURL: sharded.baseURL, apiKey: 'not-needed', maxRetries: 0, timeout: 300_000 });
    await until(async () => (await defaultModel(sharded)).workers === 2, 'both workers are ready');
  });

  after(async () => {
    assert.equal(await sharded.stop(), 0);
    rmSync(directory, { recursive: true, force: true });
  });

  const file = async () => toFile(await readFile(recording), 'long.wav');

  it('decodes it on both workers and gives the unsharded text, streamed or not', async () => {
    const from = sharded.logs.length;
    const okBefore = await jobs(sharded, 'ok');
    const verbose = await client.audio.transcriptions.create({
      file: await file(),
      model: 'whisper-1',
      response_format: 'verbose_json',
    });
    assert.equal(shardPids(sharded, from).size, 2, 'both workers decoded a share of the chunks');
    const said = (pattern: RegExp) =>
      sharded.logs.slice(from).filter((entry) => entry.worker === 'stderr' && pattern.test(String(entry.msg)));
    assert.equal(said(/Detected language/).length, 1, 'the language was detected once, by the first shard');
    assert.equal(
      said(/shard 1 of 2: decoding with the first shard's language en$/).length,
      1,
      'and passed on to the other',
    );
    assert.equal(verbose.language, 'english');
    assert.equal(await jobs(sharded, 'ok'), okBefore + 1, 'one job in the metrics');
    assert.ok(verbose.duration >= 60);
    const segments = verbose.segments ?? [];
    assert.deepEqual(
      segments.map((segment) => segment.id),
      segments.map((_, index) => index + (segments[0]?.id ?? 0)),
      'segments numbered in order across the shards',
    );
    assert.ok(segments.every((segment, index) => index === 0 || segment.start >= segments[index - 1]!.start));
    assert.match(verbose.text, /ask not what your country can do for you/i);
    assert.match(verbose.text, /behind the curtain on the left/i);

    const streamFrom = sharded.logs.length;
    const stream = await client.audio.transcriptions.create({
      file: await file(),
      model: 'whisper-1',
      response_format: 'verbose_json',
      stream: true,
    });
    const done = await readTextStream(stream);
    assert.equal(shardPids(sharded, streamFrom).size, 2, 'the streamed request was sharded too');
    assert.equal(done, verbose.text);

    // The same request where sharding is off: the same text.
    const unsharded = await startServer({
      EARSHOT_SHARD_LONG_AUDIO: 'false',
      EARSHOT_WORKERS_PER_MODEL: '1',
      EARSHOT_CPU_THREADS: '1',
    });
    try {
      const alone = new OpenAI({ baseURL: unsharded.baseURL, apiKey: 'not-needed', maxRetries: 0, timeout: 300_000 });
      const whole = await alone.audio.transcriptions.create({
        file: await file(),
        model: 'whisper-1',
        response_format: 'verbose_json',
      });
      assert.equal(verbose.text, whole.text);
      assert.deepEqual(
        segments.map((segment) => [segment.start, segment.end, segment.text]),
        (whole.segments ?? []).map((segment) => [segment.start, segment.end, segment.text]),
      );
    } finally {
      assert.equal(await unsharded.stop(), 0);
    }
  });

  it('stops both shards when the client leaves', async () => {
    const from = sharded.logs.length;
    const cancelledBefore = await jobs(sharded, 'cancelled');
    const abort = new AbortController();
    const stream = await client.audio.transcriptions.create(
      { file: await file(), model: 'whisper-1', stream: true },
      { signal: abort.signal },
    );
    try {
      for await (const event of stream) {
        if (event.type === 'transcript.text.delta') {
          abort.abort();
          break;
        }
      }
    } catch {
      // The SDK may end the stream with an abort error.
    }
    const abortedAt = performance.now();
    await until(async () => (await defaultModel(sharded)).running === 0, 'no worker runs a job');
    // A shard decodes its chunks in one call, which a cancel cannot interrupt: a shard still in it after
    // 2 s has its worker replaced, so nothing runs a few seconds after the client left.
    const seconds = (performance.now() - abortedAt) / 1000;
    assert.ok(seconds < 5, `the shards stopped ${seconds.toFixed(1)} s after the client left`);
    assert.equal(shardPids(sharded, from).size, 2, 'the job was sharded');
    assert.equal(await jobs(sharded, 'cancelled'), cancelledBefore + 1, 'the job ended cancelled, not done');
    // The server goes on serving.
    const after = await client.audio.transcriptions.create({ file: await file(), model: 'whisper-1' });
    assert.match(after.text, /ask not what your country can do for you/i);
  });
});
