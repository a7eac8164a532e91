// Unloading a model: its busy jobs drain (or are told honestly that the model went away), and no
// worker process outlives its pool, whether its workers died together or one died while loading.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { modelsFixture } from '../support/fixtures.ts';
import { processGone, sleep, waitUntil, workerPidsOf } from '../support/processes.ts';
import { audioDir, startServer, waitForLog, type RunningServer } from '../support/server.ts';
import { normalise } from '../support/text.ts';

interface PoolStatus {
  model: string;
  state: string;
  queued: number;
  running: number;
  workers: number;
}

async function pools(server: RunningServer): Promise<PoolStatus[]> {
  return ((await (await fetch(`${server.url}/api/ps`)).json()) as { data: PoolStatus[] }).data;
}

async function pool(server: RunningServer, model: string): Promise<PoolStatus | undefined> {
  return (await pools(server)).find((status) => status.model === model);
}

/** POSTs a clip for `model`; its status and JSON body. */
async function transcribe(
  server: RunningServer,
  model: string,
  clip: string,
): Promise<{ status: number; body: { text?: string; error?: { code: string; message: string } } }> {
  const form = new FormData();
  form.set('model', model);
  form.set('file', new Blob([readFileSync(path.join(audioDir, clip))]), clip);
  const response = await fetch(`${server.baseURL}/audio/transcriptions`, {
    method: 'POST',
    body: form,
    signal: AbortSignal.timeout(120_000),
  });
  return { status: response.status, body: (await response.json()) as never };
}

const LONG_TEXT = /permission is hereby granted/i;

describe('no worker outlives its pool (two workers per model)', () => {
  let server: RunningServer;
  let fixtureRoot: string;

  before(async () => {
    const fixture = await modelsFixture(['copy-a', 'copy-b', 'copy-c']);
    fixtureRoot = fixture.root;
    server = await startServer({
      EARSHOT_DEFAULT_MODEL: 'tiny.en',
      EARSHOT_MODELS_DIR: fixture.models,
      EARSHOT_HUB_DOWNLOAD: 'false',
      EARSHOT_HUB_CACHE_DIR: fixture.hubCache,
      EARSHOT_WORKERS_PER_MODEL: '2',
      EARSHOT_MAX_LOADED_MODELS: '4',
      EARSHOT_SHUTDOWN_GRACE_MS: '60000',
      // One job per worker: the first long request on the idle model would otherwise take both workers
      // as shards, and "two jobs run" would hold with one (sharding has its own tests).
      EARSHOT_SHARD_LONG_AUDIO: 'false',
    });
  });

  after(async () => {
    assert.equal(await server.stop(), 0);
    await rm(fixtureRoot, { recursive: true, force: true });
  });

  it('unloading a model whose workers all died together leaves none of its processes', async () => {
    assert.equal((await fetch(`${server.url}/api/ps/copy-a`, { method: 'POST' })).status, 201);
    await waitUntil(async () => (await pool(server, 'copy-a'))?.workers === 2, 60_000, 'both workers serve');
    const workers = workerPidsOf(server, 'copy-a');
    assert.equal(workers.length, 2);
    const from = server.logs.length;
    for (const pid of workers) process.kill(pid, 'SIGKILL');
    // Both restarts are scheduled (0.5 s and 1 s away) when the model is unloaded.
    await waitUntil(
      () => server.logs.slice(from).filter((e) => e.msg === 'restarting engine worker').length === 2,
      10_000,
      'both restarts are scheduled',
    );
    const unload = await fetch(`${server.url}/api/ps/copy-a`, { method: 'DELETE' });
    assert.equal(unload.status, 200);
    // Past both restart delays: a timer left behind would have started a worker by now.
    await sleep(2000);
    await waitUntil(() => workerPidsOf(server, 'copy-a').length === 0, 10_000, 'no copy-a worker is left');
    assert.equal(await pool(server, 'copy-a'), undefined);
  });

  it('a worker killed while its on-demand model loads: 503, and the other worker is stopped too', async () => {
    const load = fetch(`${server.url}/api/ps/copy-b`, { method: 'POST' });
    await waitUntil(() => workerPidsOf(server, 'copy-b').length === 2, 30_000, 'both copy-b workers start');
    const [victim, other] = workerPidsOf(server, 'copy-b');
    process.kill(victim!, 'SIGKILL');
    const answer = await load;
    assert.equal(answer.status, 503);
    assert.equal(((await answer.json()) as { error: { code: string } }).error.code, 'model_load_failed');
    await waitUntil(() => processGone(other!), 10_000, `the other copy-b worker ${other} exits`);
    assert.deepEqual(workerPidsOf(server, 'copy-b'), []);
    assert.equal(await pool(server, 'copy-b'), undefined, '/api/ps does not list it');

    // Loading it again starts exactly two workers.
    assert.equal((await fetch(`${server.url}/api/ps/copy-b`, { method: 'POST' })).status, 201);
    assert.equal(workerPidsOf(server, 'copy-b').length, 2);
    assert.equal((await fetch(`${server.url}/api/ps/copy-b`, { method: 'DELETE' })).status, 200);
  });

  it('unloading a busy model lets its running and waiting jobs finish, and says so', async () => {
    assert.equal((await fetch(`${server.url}/api/ps/copy-c`, { method: 'POST' })).status, 201);
    const from = server.logs.length;
    const running = [1, 2].map(() => transcribe(server, 'copy-c', 'multilingual.mp3'));
    await waitUntil(async () => (await pool(server, 'copy-c'))?.running === 2, 60_000, 'two jobs run');
    const waiting = transcribe(server, 'copy-c', 'jfk.flac');
    await waitUntil(async () => (await pool(server, 'copy-c'))?.queued === 1, 60_000, 'a third job waits');

    const unload = await fetch(`${server.url}/api/ps/copy-c`, { method: 'DELETE' });
    assert.equal(unload.status, 200);
    assert.deepEqual(await unload.json(), {
      model: 'copy-c',
      unloaded: true,
      finished: 3,
      refused: 0,
      interrupted: 0,
    });
    for (const answer of await Promise.all(running)) {
      assert.equal(answer.status, 200);
      assert.match(answer.body.text ?? '', LONG_TEXT);
    }
    const last = await waiting;
    assert.equal(last.status, 200);
    assert.match(normalise(last.body.text ?? ''), /ask not what your country can do for you/);
    await waitForLog(server, 'model unloaded', { from, match: (entry) => entry.model === 'copy-c' });
    await waitUntil(() => workerPidsOf(server, 'copy-c').length === 0, 10_000, 'copy-c’s workers exit');
  });
});

describe('unloading a busy model past its grace (EARSHOT_SHUTDOWN_GRACE_MS=1, one worker)', () => {
  let server: RunningServer;
  let fixtureRoot: string;

  before(async () => {
    const fixture = await modelsFixture(['copy-a']);
    fixtureRoot = fixture.root;
    server = await startServer({
      EARSHOT_DEFAULT_MODEL: 'tiny.en',
      EARSHOT_MODELS_DIR: fixture.models,
      EARSHOT_HUB_DOWNLOAD: 'false',
      EARSHOT_HUB_CACHE_DIR: fixture.hubCache,
      EARSHOT_WORKERS_PER_MODEL: '1',
      EARSHOT_SHUTDOWN_GRACE_MS: '1',
    });
  });

  after(async () => {
    // A 1 ms shutdown grace may end the server by its timeout: the exit code is not the point here.
    await server.stop();
    await rm(fixtureRoot, { recursive: true, force: true });
  });

  it('tells the running and the waiting request that the model was unloaded, and a retry loads it again', async () => {
    assert.equal((await fetch(`${server.url}/api/ps/copy-a`, { method: 'POST' })).status, 201);
    const running = transcribe(server, 'copy-a', 'multilingual.mp3');
    await waitUntil(async () => (await pool(server, 'copy-a'))?.running === 1, 60_000, 'a job runs');
    const waiting = transcribe(server, 'copy-a', 'jfk.flac');
    await waitUntil(async () => (await pool(server, 'copy-a'))?.queued === 1, 60_000, 'a job waits');

    const unload = await fetch(`${server.url}/api/ps/copy-a`, { method: 'DELETE' });
    assert.equal(unload.status, 200);
    assert.deepEqual(await unload.json(), {
      model: 'copy-a',
      unloaded: true,
      finished: 0,
      refused: 1,
      interrupted: 1,
    });
    for (const answer of [await running, await waiting]) {
      assert.equal(answer.status, 503);
      assert.equal(answer.body.error?.code, 'model_unloaded');
      assert.equal(
        answer.body.error?.message,
        'The model copy-a was unloaded (asked by the admin API) before this request finished; retry to load it again.',
      );
    }
    await waitUntil(() => workerPidsOf(server, 'copy-a').length === 0, 10_000, 'copy-a’s worker exits');

    const retry = await transcribe(server, 'copy-a', 'jfk.flac');
    assert.equal(retry.status, 200);
    assert.match(normalise(retry.body.text ?? ''), /ask not what your country can do for you/);
  });
});
