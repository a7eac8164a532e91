// Models come and go, with fake workers (test/support/fake-worker.mjs): the least recently used idle
// model makes room under maxLoadedModels, a model idle past its TTL is unloaded, pinned and busy
// models stay. Every wait polls for its condition under a generous deadline.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Engine, EngineError } from '../../src/engine/index.ts';
import { toApiError } from '../../src/server/error-translation.ts';
import { engineOptions, fakeApp, FakeWorld, job, testLogger, text, track, waitUntil } from '../support/fake-engine.ts';

let world: FakeWorld;
before(() => (world = new FakeWorld()));
after(() => world.remove());

/** The model's worker processes have all exited (the fake journals its own exit). */
function allExited(name: string): boolean {
  const journal = world.journal(name);
  const started = new Set(journal.filter((entry) => entry.event === 'start').map((entry) => entry.pid));
  const exited = new Set(journal.filter((entry) => entry.event === 'exit').map((entry) => entry.pid));
  return started.size > 0 && [...started].every((pid) => exited.has(pid));
}

describe('the cap on loaded models (LRU)', () => {
  it('unloads the least recently used idle model to make room', async (t) => {
    const engine = new Engine(engineOptions({ maxLoadedModels: 2 }), testLogger());
    t.after(() => engine.stop());
    const [a, b, c] = [world.model('lru-a'), world.model('lru-b'), world.model('lru-c')];
    await engine.load(a);
    await engine.load(b);
    // a was loaded first but used last: b is now the least recently used.
    assert.equal(text(await engine.transcribe(a, job(world.audio('hello')))), 'hello');
    await engine.load(c);
    assert.deepEqual(
      [a, b, c].map((model) => engine.isLoaded(model.id)),
      [true, false, true],
    );
    await waitUntil(() => allExited('lru-b'), 'the workers of lru-b exit');
    const evicted = world.journal('lru-b').find((entry) => entry.event === 'exit');
    assert.equal(evicted?.reason, 'shutdown');
    // The evicted model's worker was gone before the new model's started: never both in memory.
    const started = world.journal('lru-c').find((entry) => entry.event === 'start');
    assert.ok(
      evicted && started && evicted.t <= started.t,
      `lru-b exited at ${evicted?.t}, lru-c started at ${started?.t}`,
    );

    // Used again, b loads again in place of the least recently used: a, now that c has run a job.
    assert.equal(text(await engine.transcribe(c, job(world.audio('on c')))), 'on c');
    assert.equal(text(await engine.transcribe(b, job(world.audio('again')))), 'again');
    assert.deepEqual(
      [a, b, c].map((model) => engine.isLoaded(model.id)),
      [false, true, true],
    );
    assert.equal(world.starts('lru-b'), 2);
  });

  it('starts the new model only once the evicted one has stopped: never both in memory', async (t) => {
    const engine = new Engine(engineOptions({ maxLoadedModels: 1 }), testLogger());
    t.after(() => engine.stop());
    // Its worker takes 1.5 s to exit once asked to.
    const [evicted, next] = [world.model('evict-slow-exit-1500'), world.model('evict-next')];
    await engine.load(evicted);
    await engine.load(next);
    const exited = world.journal(evicted.id).find((entry) => entry.event === 'exit');
    const started = world.journal(next.id).find((entry) => entry.event === 'start');
    assert.ok(exited && started, 'the evicted worker exited and the next one started');
    assert.ok(exited.t <= started.t, `the evicted worker exited at ${exited.t}, the next started at ${started.t}`);
  });

  it('never unloads a pinned model or a busy one, and refuses when every loaded model is either', async (t) => {
    const engine = new Engine(engineOptions({ maxLoadedModels: 2 }), testLogger());
    t.after(() => engine.stop());
    const [pinned, busy, other] = [world.model('pin-p'), world.model('pin-busy'), world.model('pin-other')];
    await engine.preload(pinned);
    const gate = world.gate();
    const held = track(engine.transcribe(busy, job(world.audio('held', `!gate=${gate.path}`))));
    await waitUntil(() => world.runs('pin-busy').length === 1, 'the busy model runs its job');

    await assert.rejects(engine.transcribe(other, job(world.audio('refused'))), (error) => {
      assert.ok(error instanceof EngineError, String(error));
      assert.deepEqual(error.failure, { reason: 'no_room_for_model', loaded: 2, maxLoaded: 2 });
      const answer = toApiError(error);
      assert.equal(answer.kind, 'model_load_failed');
      assert.equal(answer.status, 503);
      assert.equal(answer.message, '2 models are loaded and busy (EARSHOT_MAX_LOADED_MODELS=2); try again later.');
      return true;
    });
    assert.deepEqual(
      [pinned, busy, other].map((model) => engine.isLoaded(model.id)),
      [true, true, false],
    );
    assert.equal(world.starts('pin-other'), 0, 'no worker was started for the refused model');
    assert.equal(held.settled(), false, 'the busy model kept its job');

    gate.open();
    assert.equal(text(await held.promise), 'held');
    // Idle now, the busy model is the one that makes room; the pinned one stays, however old.
    assert.equal(text(await engine.transcribe(other, job(world.audio('served')))), 'served');
    assert.deepEqual(
      [pinned, busy, other].map((model) => engine.isLoaded(model.id)),
      [true, false, true],
    );
  });
});

describe('the idle TTL', () => {
  it('unloads an idle model past its TTL, but not a pinned or a busy one', async (t) => {
    const engine = new Engine(engineOptions({ modelTtlSeconds: 1 }), testLogger());
    t.after(() => engine.stop());
    const [pinned, idle, busy] = [world.model('ttl-pinned'), world.model('ttl-idle'), world.model('ttl-busy')];
    await engine.preload(pinned);
    await engine.load(idle);
    const gate = world.gate();
    const held = track(engine.transcribe(busy, job(world.audio('long job', `!gate=${gate.path}`))));
    await waitUntil(() => world.runs('ttl-busy').length === 1, 'the busy model runs its job');

    // The idle sweep runs every few seconds: the idle model going shows that one ran.
    await waitUntil(() => !engine.isLoaded(idle.id), 'the idle model is unloaded', 30_000);
    await waitUntil(() => allExited('ttl-idle'), 'the workers of the idle model exit');
    assert.ok(engine.isLoaded(pinned.id), 'the pinned model stays');
    assert.ok(engine.isLoaded(busy.id), 'the busy model stays');
    assert.equal(held.settled(), false);

    gate.open();
    assert.equal(text(await held.promise), 'long job');
    await waitUntil(() => !engine.isLoaded(busy.id), 'the model is unloaded once idle past its TTL', 30_000);
    assert.ok(engine.isLoaded(pinned.id), 'the pinned model still stays');
    assert.deepEqual(
      engine.status().map((pool) => pool.model),
      ['ttl-pinned'],
    );
  });

  it('counts idle time from when a model could first serve, never unloading one that is loading', async (t) => {
    const engine = new Engine(engineOptions({ modelTtlSeconds: 1 }), testLogger());
    t.after(() => engine.stop());
    // Loads for longer than the TTL and than the idle sweep's interval.
    const slow = world.model('slow-load-6000');
    await engine.load(slow);
    assert.ok(engine.isLoaded(slow.id), 'loaded, not swept away while loading');
    assert.equal(engine.modelStatus(slow.id)?.state, 'ready');
  });
});

describe('the admin API (idle models)', () => {
  it('loads, lists and unloads models; refuses pinned, unknown and unloaded ones', async (t) => {
    const { app, engine } = await fakeApp(world, 'admin-default', engineOptions());
    t.after(async () => {
      await app.close();
      await engine.stop();
    });
    await engine.preload(world.model('admin-default'));
    world.model('admin-extra');
    world.model('admin-fail-load');
    const errorOf = (response: { json: <T>() => T }) => {
      const { message: _message, ...rest } = response.json<{ error: Record<string, unknown> }>().error;
      return rest;
    };

    const loaded = await app.inject({ method: 'POST', url: '/api/ps/admin-extra' });
    assert.equal(loaded.statusCode, 201);
    assert.equal(loaded.json<{ state: string }>().state, 'ready');
    assert.equal((await app.inject({ method: 'POST', url: '/api/ps/admin-extra' })).statusCode, 200);
    const listed = (await app.inject({ method: 'GET', url: '/api/ps' })).json<{
      data: { model: string; pinned: boolean }[];
    }>();
    assert.deepEqual(
      listed.data.map(({ model, pinned }) => [model, pinned]),
      [
        ['admin-default', true],
        ['admin-extra', false],
      ],
    );

    const unloaded = await app.inject({ method: 'DELETE', url: '/api/ps/admin-extra' });
    assert.equal(unloaded.statusCode, 200);
    assert.deepEqual(unloaded.json(), {
      model: 'admin-extra',
      unloaded: true,
      finished: 0,
      refused: 0,
      interrupted: 0,
    });
    assert.equal(engine.isLoaded('admin-extra'), false);
    await waitUntil(() => allExited('admin-extra'), "the unloaded model's workers exit");

    const notLoaded = await app.inject({ method: 'DELETE', url: '/api/ps/admin-extra' });
    assert.equal(notLoaded.statusCode, 404);
    assert.deepEqual(errorOf(notLoaded), { type: 'invalid_request_error', param: null, code: 'model_not_loaded' });
    const pinned = await app.inject({ method: 'DELETE', url: '/api/ps/admin-default' });
    assert.equal(pinned.statusCode, 409);
    assert.deepEqual(errorOf(pinned), { type: 'invalid_request_error', param: null, code: 'model_pinned' });
    const unknown = await app.inject({ method: 'POST', url: '/api/ps/no-such-model' });
    assert.equal(unknown.statusCode, 404);
    assert.deepEqual(errorOf(unknown), { type: 'invalid_request_error', param: null, code: 'model_not_found' });
    const failed = await app.inject({ method: 'POST', url: '/api/ps/admin-fail-load' });
    assert.equal(failed.statusCode, 503);
    assert.deepEqual(errorOf(failed), { type: 'server_error', param: null, code: 'model_load_failed' });
    assert.equal(engine.isLoaded('admin-default'), true);
  });
});
