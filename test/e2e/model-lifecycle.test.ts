// Models come and go: loaded on demand or through the admin API, unloaded when idle past their TTL,
// the least recently used evicted under the cap, the default pinned; a cancelled job frees its place.
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { modelsFixture } from '../support/fixtures.ts';
import { audioDir, startServer, waitForLog, type RunningServer } from '../support/server.ts';
import { normalise } from '../support/text.ts';
import { assertErrorResponse } from './api-errors.ts';

interface PoolStatus {
  model: string;
  state: string;
  pinned: boolean;
  queued: number;
  running: number;
}

const TTL_SECONDS = 2;

describe('model lifecycle and admin API', () => {
  let server: RunningServer;
  let client: OpenAI;
  let fixtureRoot: string;

  before(async () => {
    const fixture = await modelsFixture(['copy-a', 'copy-b']);
    fixtureRoot = fixture.root;
    server = await startServer({
      EARSHOT_MODELS_DIR: fixture.models,
      EARSHOT_HUB_DOWNLOAD: 'false',
      EARSHOT_HUB_CACHE_DIR: fixture.hubCache,
      EARSHOT_MODEL_TTL_SECONDS: String(TTL_SECONDS),
      EARSHOT_MAX_LOADED_MODELS: '2',
      EARSHOT_WORKERS_PER_MODEL: '1',
    });
    client = new OpenAI({ baseURL: server.baseURL, apiKey: 'not-needed', maxRetries: 0 });
  });

  after(async () => {
    assert.equal(await server.stop(), 0);
    await rm(fixtureRoot, { recursive: true, force: true });
  });

  const loaded = async (): Promise<PoolStatus[]> =>
    ((await (await fetch(`${server.url}/api/ps`)).json()) as { data: PoolStatus[] }).data;
  const states = async (): Promise<Record<string, string>> => {
    const list = (await (await fetch(`${server.baseURL}/models`)).json()) as { data: { id: string; state: string }[] };
    return Object.fromEntries(list.data.map((model) => [model.id, model.state]));
  };

  it('loads a model through the admin API, shows it in /v1/models, and keeps the default pinned', async () => {
    assert.deepEqual(
      (await loaded()).map(({ model, pinned }) => ({ model, pinned })),
      [{ model: 'base', pinned: true }],
    );
    const load = await fetch(`${server.url}/api/ps/copy-a`, { method: 'POST' });
    assert.equal(load.status, 201);
    assert.equal(((await load.json()) as PoolStatus).state, 'ready');
    assert.equal((await fetch(`${server.url}/api/ps/copy-a`, { method: 'POST' })).status, 200, 'already loaded');
    const byId = await states();
    assert.equal(byId['copy-a'], 'loaded');
    assert.equal(byId['whisper-1'], 'loaded');
    assert.equal(byId['copy-b'], 'available');

    await assertErrorResponse(await fetch(`${server.url}/api/ps/base`, { method: 'DELETE' }), {
      status: 409,
      type: 'invalid_request_error',
      param: null,
      code: 'model_pinned',
      message: 'The model `base` is pinned (the default or preloaded) and stays loaded.',
    });
    await assertErrorResponse(await fetch(`${server.url}/api/ps/nope`, { method: 'POST' }), {
      status: 404,
      type: 'invalid_request_error',
      param: null,
      code: 'model_not_found',
      message: 'The model `nope` does not exist or you do not have access to it.',
    });
  });

  it('evicts the least recently used idle model to stay under EARSHOT_MAX_LOADED_MODELS', async () => {
    const text = await client.audio.transcriptions.create({
      file: createReadStream(path.join(audioDir, 'jfk.flac')),
      model: 'copy-b',
    });
    assert.match(normalise(text.text), /ask not what your country can do for you/);
    const models = (await loaded()).map((pool) => pool.model).sort();
    assert.deepEqual(models, ['base', 'copy-b'], 'copy-a made room for copy-b');
    assert.ok(server.logs.some((entry) => entry.msg === 'unloading model' && entry.model === 'copy-a'));
  });

  it('unloads a model idle past its TTL, and unloads on request', async () => {
    await waitForLog(server, 'unloading model', {
      match: (entry) => entry.model === 'copy-b' && String(entry.reason).startsWith('idle'),
      timeoutMs: (TTL_SECONDS + 10) * 1000,
    });
    assert.deepEqual(
      (await loaded()).map((pool) => pool.model),
      ['base'],
    );
    assert.equal((await states())['copy-b'], 'available');

    assert.equal((await fetch(`${server.url}/api/ps/copy-a`, { method: 'POST' })).status, 201);
    assert.equal((await fetch(`${server.url}/api/ps/copy-a`, { method: 'DELETE' })).status, 200);
    await assertErrorResponse(await fetch(`${server.url}/api/ps/copy-a`, { method: 'DELETE' }), {
      status: 404,
      type: 'invalid_request_error',
      param: null,
      code: 'model_not_loaded',
      message: 'The model `copy-a` is not loaded.',
    });
  });

  it('drops a cancelled job from the queue at once, and the running one still completes', async () => {
    const running = client.audio.transcriptions.create({
      file: createReadStream(path.join(audioDir, 'multilingual.mp3')),
      model: 'whisper-1',
    });
    const from = server.logs.length;
    await waitForLog(server, 'job queued', { from });
    const controller = new AbortController();
    const waiting = client.audio.transcriptions.create(
      { file: createReadStream(path.join(audioDir, 'jfk.flac')), model: 'whisper-1' },
      { signal: controller.signal },
    );
    const deadline = Date.now() + 10_000;
    while ((await loaded()).find((pool) => pool.model === 'base')?.queued !== 1) {
      assert.ok(Date.now() < deadline, 'the second job waits in the queue');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    controller.abort();
    await assert.rejects(waiting);
    while ((await loaded()).find((pool) => pool.model === 'base')?.queued !== 0) {
      assert.ok(Date.now() < deadline, 'the cancelled job left the queue');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal((await loaded()).find((pool) => pool.model === 'base')?.running, 1, 'the first job still runs');
    assert.match((await running).text, /permission is hereby granted/i);
  });
});
