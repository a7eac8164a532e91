// A worker that dies, hangs or cannot start costs at most the request it held, never the server:
// the request gets a clear 5xx, the worker is replaced, the next request is served. Also: the queue
// bound (429 with retry-after), worker recycling, and a graceful SIGTERM that finishes the request in
// flight and leaves no worker process and no upload behind.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { chmodSync, createReadStream, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import type { TranscriptionCreateParamsNonStreaming } from 'openai/resources/audio';
import { audioDir, JFK_TEXT, startServer, waitForLog, type RunningServer } from '../support/server.ts';
import { childPids, processGone, sleep, waitUntil, workerPidsOf } from '../support/processes.ts';

const jfk = () => createReadStream(path.join(audioDir, 'jfk.flac'));
// About 60 s of speech: 5–10 s of work for the default model on two cores.
const multilingual = () => createReadStream(path.join(audioDir, 'multilingual.mp3'));
const MULTILINGUAL_TEXT = /Permission is hereby granted, free of charge/i;

/**
 * A request that costs little even on a busy machine: 4 s of speech, its language given (language
 * detection would cost one more encoder pass), greedy decoding.
 */
function quickTranscription(client: OpenAI) {
  const params: TranscriptionCreateParamsNonStreaming<'json'> & { beam_size: number } = {
    file: createReadStream(path.join(audioDir, 'hotwords.mp3')),
    model: 'whisper-1',
    language: 'en',
    beam_size: 1,
  };
  return client.audio.transcriptions.create(params);
}
const QUICK_TEXT = /then you go into your/i;

interface Health {
  status: string;
  reason?: string;
  models: { model: string; state: string; restarts: number; queued: number; running: number }[];
}

async function health(server: RunningServer): Promise<{ status: number; body: Health }> {
  const response = await fetch(`${server.url}/health`);
  return { status: response.status, body: (await response.json()) as Health };
}

/** Every server here has one worker per model: the tests follow that one process. */
const ONE_WORKER = { EARSHOT_WORKERS_PER_MODEL: '1' };

/** A fresh directory for the server's uploads (EARSHOT_TMP_DIR), so a test can see it is left empty. */
function freshTmpDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'earshot-e2e-tmp-'));
}

/** The one worker of the default model, once the model serves. */
async function readyWorker(server: RunningServer): Promise<number> {
  await waitUntil(async () => (await health(server)).status === 200, 60_000, 'the default model serves');
  const pids = workerPidsOf(server);
  assert.equal(pids.length, 1, `one worker process, got ${pids.join(', ')}`);
  return pids[0]!;
}

/** GET on a new connection (never a pooled one): its status, or the connection error's code. */
function getOnNewConnection(url: string): Promise<number | string> {
  return new Promise((resolve) => {
    const request = http.get(url, { agent: false }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    request.setTimeout(5000, () => request.destroy(new Error('timeout')));
  });
}

describe('a worker killed mid-request', () => {
  let server: RunningServer;
  let client: OpenAI;
  let tmpDir: string;

  before(async () => {
    tmpDir = freshTmpDir();
    server = await startServer({ ...ONE_WORKER, EARSHOT_TMP_DIR: tmpDir });
    client = new OpenAI({ baseURL: server.baseURL, apiKey: 'not-needed', maxRetries: 0 });
  });

  after(async () => {
    try {
      assert.equal(await server.stop(), 0);
      assert.deepEqual(readdirSync(tmpDir), [], 'no upload is left behind');
    } finally {
      rmSync(tmpDir, { recursive: true, force: true });
    }
  });

  it('fails the request with engine_crashed within seconds, then serves the next request', async () => {
    const worker = await readyWorker(server);
    const from = server.logs.length;
    const request = client.audio.transcriptions.create({ file: multilingual(), model: 'whisper-1' });
    request.catch(() => undefined);
    await waitForLog(server, 'job queued', { from });
    process.kill(worker, 'SIGKILL');
    const killedAt = performance.now();
    await assert.rejects(request, (error) => {
      assert.ok(error instanceof OpenAI.InternalServerError, `expected InternalServerError, got ${String(error)}`);
      assert.equal(error.status, 500);
      assert.equal(error.type, 'server_error');
      assert.equal(error.code, 'engine_crashed');
      assert.match(error.message, /killed by SIGKILL/);
      return true;
    });
    assert.ok(performance.now() - killedAt < 5000, 'the request ends within seconds of the crash');

    assert.equal((await health(server)).body.models[0]?.restarts, 1);
    const transcription = await client.audio.transcriptions.create({ file: jfk(), model: 'whisper-1' });
    assert.equal(transcription.text, JFK_TEXT);
    const [replacement] = workerPidsOf(server);
    assert.ok(replacement && replacement !== worker, 'a new worker process serves');
    assert.ok(processGone(worker));
  });

  it('ends a stream with an error event the SDK raises, then serves the next request', async () => {
    const worker = await readyWorker(server);
    const stream = await client.audio.transcriptions.create({
      file: multilingual(),
      model: 'whisper-1',
      stream: true,
    });
    const events: string[] = [];
    await assert.rejects(
      async () => {
        for await (const event of stream) {
          events.push(event.type);
          if (event.type === 'transcript.text.delta' && events.length === 1) process.kill(worker, 'SIGKILL');
        }
      },
      (error) => {
        assert.ok(error instanceof OpenAI.APIError, `expected APIError, got ${String(error)}`);
        assert.equal(error.type, 'server_error');
        assert.equal(error.code, 'engine_crashed');
        assert.match(error.message, /killed by SIGKILL/);
        return true;
      },
    );
    assert.equal(events[0], 'transcript.text.delta');
    assert.ok(!events.includes('transcript.text.done'), 'no done event after the crash');

    assert.equal((await health(server)).body.models[0]?.restarts, 2);
    assert.match((await quickTranscription(client)).text, QUICK_TEXT);
    const [replacement] = workerPidsOf(server);
    assert.ok(replacement && replacement !== worker, 'a new worker process serves');
  });
});

describe('a hung worker (EARSHOT_JOB_TIMEOUT_MS=4000)', () => {
  let server: RunningServer;
  let client: OpenAI;
  let tmpDir: string;
  let stopped: number | undefined;

  before(async () => {
    tmpDir = freshTmpDir();
    server = await startServer({ ...ONE_WORKER, EARSHOT_TMP_DIR: tmpDir, EARSHOT_JOB_TIMEOUT_MS: '4000' });
    client = new OpenAI({ baseURL: server.baseURL, apiKey: 'not-needed', maxRetries: 0 });
  });

  after(async () => {
    // Should the test fail before the server killed it, do not leave a stopped process behind.
    if (stopped !== undefined && !processGone(stopped)) process.kill(stopped, 'SIGKILL');
    try {
      assert.equal(await server.stop(), 0);
      assert.deepEqual(readdirSync(tmpDir), [], 'no upload is left behind');
    } finally {
      rmSync(tmpDir, { recursive: true, force: true });
    }
  });

  it('answers 504 job_timeout, kills the stopped worker and serves the next request on a new one', async () => {
    const worker = await readyWorker(server);
    const from = server.logs.length;
    const request = client.audio.transcriptions.create({ file: multilingual(), model: 'whisper-1' });
    request.catch(() => undefined);
    await waitForLog(server, 'job queued', { from });
    process.kill(worker, 'SIGSTOP');
    stopped = worker;
    const stoppedAt = performance.now();
    await assert.rejects(request, (error) => {
      assert.ok(error instanceof OpenAI.InternalServerError, `expected InternalServerError, got ${String(error)}`);
      assert.equal(error.status, 504);
      assert.equal(error.type, 'server_error');
      assert.equal(error.param, null);
      assert.equal(error.code, 'job_timeout');
      assert.equal(error.message, '504 The job took longer than 4000 ms and was stopped.');
      return true;
    });
    const seconds = (performance.now() - stoppedAt) / 1000;
    assert.ok(seconds >= 3.5 && seconds <= 10, `the 504 came ${seconds.toFixed(1)} s after the worker hung`);
    await waitForLog(server, 'job timed out; killing the worker as hung', { from });

    await waitUntil(() => processGone(worker), 3000, `the hung worker ${worker} is gone`);
    // Short, so that it finishes within the 4 s job timeout even on a busy machine.
    const transcription = await quickTranscription(client);
    assert.match(transcription.text, QUICK_TEXT);
    const pids = workerPidsOf(server);
    assert.equal(pids.length, 1);
    assert.notEqual(pids[0], worker, 'a new worker process serves');
    assert.equal((await health(server)).body.models[0]?.restarts, 1);
  });
});

describe('a worker that crashes at start', () => {
  let server: RunningServer;
  let scriptDir: string;
  let tmpDir: string;
  let listeningAt: number;

  before(async () => {
    scriptDir = mkdtempSync(path.join(os.tmpdir(), 'earshot-e2e-python-'));
    const script = path.join(scriptDir, 'python');
    // Records every process the server starts as a worker, then fails as a broken install would.
    writeFileSync(script, `#!/bin/sh\necho $$ >> '${scriptDir}/pids'\necho "boom: cannot load" >&2\nexit 3\n`);
    chmodSync(script, 0o755);
    tmpDir = freshTmpDir();
    server = await startServer(
      { ...ONE_WORKER, EARSHOT_TMP_DIR: tmpDir, EARSHOT_WORKER_PYTHON: script, EARSHOT_SHUTDOWN_GRACE_MS: '10000' },
      { waitForReady: false },
    );
    listeningAt = performance.now();
  });

  after(async () => {
    await server.stop();
    rmSync(scriptDir, { recursive: true, force: true });
    rmSync(tmpDir, { recursive: true, force: true });
  });

  it('still listens, and /health says why it cannot serve', async () => {
    let answer = await health(server);
    await waitUntil(
      async () => (answer = await health(server)).body.reason !== undefined,
      3000,
      '/health gives a reason',
    );
    assert.equal(answer.status, 503);
    assert.equal(answer.body.status, 'loading');
    assert.match(answer.body.reason ?? '', /exited with code 3/);
    const ready = await fetch(`${server.url}/ready`);
    assert.equal(ready.status, 503);
    assert.match(((await ready.json()) as { reason: string }).reason, /exited with code 3/);
    // The log says more: what the worker wrote before it died.
    await waitForLog(server, 'model load failed', {
      timeoutMs: 3000,
      match: (entry) => String(entry.stderr).includes('boom: cannot load'),
    });
  });

  it('restarts the worker with a growing backoff', async () => {
    await sleep(Math.max(0, 4000 - (performance.now() - listeningAt)));
    const { status, body } = await health(server);
    assert.equal(status, 503);
    const restarts = body.models[0]?.restarts ?? 0;
    assert.ok(restarts >= 2 && restarts <= 5, `restarts after 4 s: ${restarts}`);
    const delays = server.logs.filter((e) => e.msg === 'restarting engine worker').map((e) => e.delayMs);
    assert.deepEqual(delays.slice(0, 3), [500, 1000, 2000]);
  });

  it('keeps a transcription request waiting in the queue', async () => {
    await assert.rejects(
      fetch(`${server.baseURL}/audio/transcriptions`, {
        method: 'POST',
        body: (() => {
          const form = new FormData();
          form.set('model', 'whisper-1');
          form.set('file', new Blob([readFileSync(path.join(audioDir, 'jfk.flac'))]), 'jfk.flac');
          return form;
        })(),
        signal: AbortSignal.timeout(1500),
      }),
      { name: 'TimeoutError' },
    );
    // The client gave up: its job left the queue.
    await waitUntil(async () => (await health(server)).body.models[0]?.queued === 0, 3000, 'the queue is empty');
    assert.equal((await fetch(`${server.url}/ready`)).status, 503);
  });

  it('stops cleanly on SIGTERM, leaving no process behind', async () => {
    const children = childPids(server.process.pid!);
    const started = performance.now();
    assert.equal(await server.stop(), 0);
    const seconds = (performance.now() - started) / 1000;
    assert.ok(seconds < 5, `stopped in ${seconds.toFixed(1)} s`);
    const workers = readFileSync(path.join(scriptDir, 'pids'), 'utf8').trim().split('\n').map(Number);
    assert.ok(workers.length >= 3, `workers started: ${workers.length}`);
    for (const pid of workers) assert.ok(processGone(pid), `worker ${pid} is gone`);
    // tsx's esbuild service exits once its parent's pipe closes.
    for (const pid of children) await waitUntil(() => processGone(pid), 2000, `child ${pid} is gone`);
    assert.deepEqual(readdirSync(tmpDir), []);
  });
});

describe('a full queue (EARSHOT_MAX_QUEUED_JOBS=1) and worker recycling (EARSHOT_WORKER_MAX_JOBS=2)', () => {
  let server: RunningServer;
  let client: OpenAI;
  let tmpDir: string;

  before(async () => {
    tmpDir = freshTmpDir();
    server = await startServer({
      ...ONE_WORKER,
      EARSHOT_TMP_DIR: tmpDir,
      EARSHOT_MAX_QUEUED_JOBS: '1',
      EARSHOT_WORKER_MAX_JOBS: '2',
    });
    client = new OpenAI({ baseURL: server.baseURL, apiKey: 'not-needed', maxRetries: 0 });
  });

  after(async () => {
    try {
      assert.equal(await server.stop(), 0);
      assert.deepEqual(readdirSync(tmpDir), [], 'no upload is left behind');
    } finally {
      rmSync(tmpDir, { recursive: true, force: true });
    }
  });

  it('runs one job, queues one and refuses the rest with 429 server_overloaded and retry-after', async () => {
    await readyWorker(server);
    const requests = Promise.allSettled(
      [1, 2, 3, 4].map(() => client.audio.transcriptions.create({ file: multilingual(), model: 'whisper-1' })),
    );
    // While one job runs and one waits, load balancers are told to go elsewhere.
    await waitUntil(
      async () => (await fetch(`${server.url}/ready`)).status === 503,
      10_000,
      '/ready says the queue is full',
    );
    const results = await requests;
    const accepted = results.filter((r) => r.status === 'fulfilled').map((r) => r.value);
    const refused = results.filter((r) => r.status === 'rejected').map((r) => r.reason as unknown);
    assert.equal(accepted.length, 2, '1 runs and 1 waits');
    assert.equal(refused.length, 2, 'the rest are refused');
    for (const transcription of accepted) assert.match(transcription.text, MULTILINGUAL_TEXT);
    for (const error of refused) {
      assert.ok(error instanceof OpenAI.RateLimitError, `expected RateLimitError, got ${String(error)}`);
      assert.equal(error.status, 429);
      assert.equal(error.type, 'server_error');
      assert.equal(error.param, null);
      assert.equal(error.code, 'server_overloaded');
      const retryAfter = Number(error.headers?.get('retry-after'));
      assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1, `retry-after: ${error.headers?.get('retry-after')}`);
      assert.match(
        error.message,
        new RegExp(
          `^429 The server is overloaded: 1 jobs are waiting for model base\\. Retry after ${retryAfter} s\\.$`,
        ),
      );
    }
  });

  it('recycles a worker after 2 jobs; the third request is served by a new worker', async () => {
    const worker = await readyWorker(server);
    const from = server.logs.length;
    for (let i = 0; i < 2; i++) assert.match((await quickTranscription(client)).text, QUICK_TEXT);
    const recycled = await waitForLog(server, 'recycling engine worker', { from, timeoutMs: 5000 });
    assert.equal(recycled.pid, worker);
    assert.equal(recycled.reason, 'it has run 2 jobs');
    assert.match((await quickTranscription(client)).text, QUICK_TEXT);
    await waitUntil(() => processGone(worker), 6000, `the recycled worker ${worker} exits`);
    const pids = workerPidsOf(server);
    assert.equal(pids.length, 1);
    assert.notEqual(pids[0], worker, 'a new worker process serves');
    // Recycling is not a failure.
    assert.equal((await health(server)).body.models[0]?.restarts, 0);
  });
});

describe('SIGTERM with a request in flight', () => {
  const GRACE_MS = 60_000;
  let server: RunningServer;
  let client: OpenAI;
  let tmpDir: string;

  before(async () => {
    tmpDir = freshTmpDir();
    server = await startServer({ ...ONE_WORKER, EARSHOT_TMP_DIR: tmpDir, EARSHOT_SHUTDOWN_GRACE_MS: String(GRACE_MS) });
    client = new OpenAI({ baseURL: server.baseURL, apiKey: 'not-needed', maxRetries: 0 });
  });

  after(async () => {
    await server.stop();
    rmSync(tmpDir, { recursive: true, force: true });
  });

  it('finishes the request, refuses new ones, exits 0 and leaves no worker or upload behind', async () => {
    const worker = await readyWorker(server);
    const from = server.logs.length;
    const request = client.audio.transcriptions.create({ file: multilingual(), model: 'whisper-1' });
    request.catch(() => undefined);
    await waitForLog(server, 'job queued', { from });
    assert.deepEqual(workerPidsOf(server), [worker]);
    const children = childPids(server.process.pid!);

    const exited = once(server.process, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    const signalledAt = performance.now();
    server.process.kill('SIGTERM');
    await waitForLog(server, 'shutting down', { from });
    const late = await getOnNewConnection(`${server.url}/health`);
    assert.ok(
      late === 503 || late === 'ECONNREFUSED' || late === 'ECONNRESET',
      `a new connection after SIGTERM is refused or gets 503, got ${late}`,
    );

    const transcription = await request;
    const answeredAt = performance.now();
    assert.match(transcription.text, MULTILINGUAL_TEXT);
    const [code, signal] = await exited;
    const seconds = (performance.now() - signalledAt) / 1000;
    assert.equal(signal, null);
    assert.equal(code, 0);
    assert.ok(seconds < GRACE_MS / 1000, `exited ${seconds.toFixed(1)} s after SIGTERM`);
    // Once its last request is answered, nothing holds the server: not the kept-alive connection
    // that request came on, not the worker.
    const afterAnswer = (performance.now() - answeredAt) / 1000;
    assert.ok(afterAnswer < 5, `exited ${afterAnswer.toFixed(1)} s after the last response`);
    // The server waits for its workers to exit before it exits itself.
    assert.ok(processGone(worker), `worker ${worker} is gone`);
    // tsx's esbuild service exits once its parent's pipe closes.
    for (const pid of children) await waitUntil(() => processGone(pid), 2000, `child ${pid} is gone`);
    assert.deepEqual(readdirSync(tmpDir), [], 'no upload is left behind');
  });
});
