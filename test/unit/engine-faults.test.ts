// Worker faults with fake workers (test/support/fake-worker.mjs): a crash costs the job it held and
// the pool recovers; a pinned model that cannot load is retried with a growing backoff; an on-demand
// model that cannot load answers 503; a hung job times out (504) and its worker is replaced; workers
// are recycled after N jobs. Waits poll for their condition; no assertion bounds a time from above.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { Engine, EngineError, isEngineError } from '../../src/engine/index.ts';
import { toApiError } from '../../src/server/error-translation.ts';
import {
  engineOptions,
  fakeApp,
  FakeWorld,
  job,
  multipart,
  testLogger,
  text,
  waitUntil,
} from '../support/fake-engine.ts';

let world: FakeWorld;
before(() => (world = new FakeWorld()));
after(() => world.remove());

/** The process is running (not gone, not a zombie left to reap). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Every worker process of the model that started has exited on its own (the fake journals it). */
function allExited(name: string): boolean {
  const journal = world.journal(name);
  const exited = new Set(journal.filter((entry) => entry.event === 'exit').map((entry) => entry.pid));
  return journal.filter((entry) => entry.event === 'start').every((entry) => exited.has(entry.pid));
}

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

describe('a worker that crashes mid-job', () => {
  it('fails that job with engine_crashed, restarts the worker and serves the next job', async (t) => {
    const engine = new Engine(engineOptions({ workersPerModel: 1 }), testLogger());
    t.after(() => engine.stop());
    const model = world.model('crashy');
    await engine.load(model);
    await assert.rejects(engine.transcribe(model, job(world.audio('doomed', '!crash'))), (error) => {
      assert.ok(error instanceof EngineError, String(error));
      assert.deepEqual(error.failure, { reason: 'worker_crashed', exit: 'exited with code 1' });
      const answer = toApiError(error);
      assert.equal(answer.kind, 'engine_crashed');
      assert.equal(answer.status, 500);
      assert.equal(answer.message, 'The engine worker stopped (exited with code 1) while transcribing; try again.');
      return true;
    });
    // A job sent while the worker is being replaced waits for the new one.
    assert.equal(text(await engine.transcribe(model, job(world.audio('next')))), 'next');
    assert.equal(world.starts('crashy'), 2);
    assert.equal(engine.modelStatus('crashy')?.restarts, 1);
    assert.equal(engine.modelStatus('crashy')?.state, 'ready');

    // The other jobs of a batch the crash took down fail the same way; the pool recovers again.
    const batching = new Engine(engineOptions({ workersPerModel: 1, maxBatch: 4 }), testLogger());
    t.after(() => batching.stop());
    const batchModel = world.model('crashy-batch');
    const gate = world.gate();
    const first = batching.transcribe(batchModel, job(world.audio('first', `!gate=${gate.path}`)));
    await waitUntil(() => world.runs('crashy-batch').length === 1, 'the gated job runs');
    const batch = [
      batching.transcribe(batchModel, job(world.audio('fine'))),
      batching.transcribe(batchModel, job(world.audio('doomed', '!crash'))),
      batching.transcribe(batchModel, job(world.audio('never'))),
    ];
    await waitUntil(() => batching.modelStatus('crashy-batch')?.queued === 3, 'three jobs wait');
    gate.open();
    assert.equal(text(await first), 'first');
    const outcomes = await Promise.allSettled(batch);
    assert.deepEqual(world.runs('crashy-batch')[1], ['fine', 'doomed', 'never'], 'the three ran as one batch');
    assert.equal(outcomes[0]?.status, 'fulfilled', 'the job answered before the crash keeps its transcript');
    for (const outcome of outcomes.slice(1)) {
      assert.equal(outcome.status, 'rejected');
      assert.ok(isEngineError(outcome.reason, 'worker_crashed'), String(outcome.reason));
    }
    assert.equal(text(await batching.transcribe(batchModel, job(world.audio('after')))), 'after');
  });
});

describe('a pinned model that fails to load', () => {
  it('is retried with a growing backoff; its waiting job is served once it loads', async (t) => {
    const engine = new Engine(engineOptions({ workersPerModel: 1 }), testLogger());
    t.after(() => engine.stop());
    // Fails on its first three starts, then loads.
    const model = world.model('flaky-load-3');
    const ready = engine.preload(model);
    const waiting = engine.transcribe(model, job(world.audio('patient')));
    await ready;
    assert.equal(text(await waiting), 'patient');
    const starts = world
      .journal('flaky-load-3')
      .filter((entry) => entry.event === 'start')
      .map((entry) => entry.t);
    assert.equal(starts.length, 4);
    const gaps = starts.slice(1).map((time, index) => time - starts[index]!);
    // Lower bounds only: a busy machine may be slower, never faster. (A timer may fire a little
    // before its time by the wall clock the fake writes, hence the small allowance.)
    [500, 1000, 2000].forEach((backoff, index) =>
      assert.ok(gaps[index]! >= backoff - 20, `restart ${index + 1} after ${gaps[index]} ms, before ${backoff} ms`),
    );
    assert.equal(engine.modelStatus('flaky-load-3')?.restarts, 3);
    assert.equal(engine.modelStatus('flaky-load-3')?.lastError, undefined, 'the error is cleared once it loads');
  });
});

describe('an on-demand model that fails to load', () => {
  it('answers 503 model_load_failed with the reason, and tries again on the next request', async (t) => {
    const { app, engine } = await fakeApp(world, 'fine', engineOptions({ workersPerModel: 2 }));
    t.after(async () => {
      await app.close();
      await engine.stop();
    });
    world.model('fine');
    world.model('fail-load');
    world.model('exit-load');
    const post = async (model: string) =>
      app.inject({ method: 'POST', url: '/v1/audio/transcriptions', ...(await multipart({ model }, 'hello')) });

    const cases: [string, string][] = [
      ['fail-load', 'Model fail-load could not be loaded: fake: cannot load model fail-load'],
      ['exit-load', 'Model exit-load could not be loaded: the worker exited with code 3.'],
    ];
    for (const [model, message] of cases) {
      const answer = await post(model);
      assert.equal(answer.statusCode, 503, model);
      assert.deepEqual(answer.json<ErrorBody>(), {
        error: { message, type: 'server_error', param: null, code: 'model_load_failed' },
      });
      assert.equal(engine.isLoaded(model), false, 'the failed model does not stay loaded');
      const starts = world.starts(model);
      assert.ok(starts >= 1 && starts <= 2, `${model}: ${starts} workers started`);
      assert.equal((await post(model)).statusCode, 503);
      assert.ok(world.starts(model) > starts, 'the next request tries to load it again');
    }
    const ok = await post('fine');
    assert.equal(ok.statusCode, 200);
    assert.equal(ok.json<{ text: string }>().text, 'hello');
  });
});

describe('a model that does not load in time', () => {
  it('fails with model_load_failed after the start timeout and kills the worker', async (t) => {
    const engine = new Engine(engineOptions({ workersPerModel: 1 }, { startTimeoutMs: 500 }), testLogger());
    t.after(() => engine.stop());
    const model = world.model('hang-load');
    await assert.rejects(engine.load(model), (error) => {
      assert.ok(error instanceof EngineError, String(error));
      assert.deepEqual(error.failure, {
        reason: 'model_load_failed',
        model: 'hang-load',
        cause: { kind: 'start_timeout', timeoutMs: 500 },
      });
      assert.equal(toApiError(error).kind, 'model_load_failed');
      assert.equal(toApiError(error).message, 'Model hang-load did not load within 500 ms.');
      return true;
    });
    const pid = world.journal('hang-load')[0]?.pid;
    assert.ok(pid !== undefined, 'the worker started');
    await waitUntil(() => !processAlive(pid), 'the worker that did not load is killed');
    assert.equal(engine.isLoaded('hang-load'), false);
  });
});

describe('an on-demand model whose workers disagree (one fails to load, another loads)', () => {
  it('leaves no worker process behind', async (t) => {
    const engine = new Engine(engineOptions({ workersPerModel: 2 }), testLogger());
    t.after(() => engine.stop());
    // Of its two workers, one fails at once, the other would load after 300 ms.
    const model = world.model('flaky-load-1-slow-load-300');
    await assert.rejects(engine.load(model), (error) => isEngineError(error, 'model_load_failed'));
    assert.equal(engine.isLoaded(model.id), false);
    // Dropping the model stops its other worker too, without waiting for Engine.stop().
    await waitUntil(() => allExited(model.id), 'every worker of the failed model exits');
  });
});

describe('a hung job (job timeout)', () => {
  it('answers 504 job_timeout, replaces the worker and serves the next request', async (t) => {
    const { app, engine } = await fakeApp(
      world,
      'hangs',
      engineOptions({ workersPerModel: 1 }, { jobTimeoutMs: 2000 }),
    );
    world.model('hangs');
    t.after(async () => {
      await app.close();
      await engine.stop();
    });
    const post = async (fileText: string) =>
      app.inject({
        method: 'POST',
        url: '/v1/audio/transcriptions',
        ...(await multipart({ model: 'whisper-1' }, fileText)),
      });
    const hung = await post('stuck\n!hang');
    assert.equal(hung.statusCode, 504);
    assert.deepEqual(hung.json<ErrorBody>(), {
      error: {
        message: 'The job took longer than 2000 ms and was stopped.',
        type: 'server_error',
        param: null,
        code: 'job_timeout',
      },
    });
    const next = await post('next');
    assert.equal(next.statusCode, 200);
    assert.equal(next.json<{ text: string }>().text, 'next');
    const runs = world.journal('hangs').filter((entry) => entry.event === 'run');
    assert.equal(runs.length, 2);
    assert.notEqual(runs[0]?.pid, runs[1]?.pid, 'a new worker process served the next request');
    assert.equal(engine.modelStatus('hangs')?.restarts, 1);
  });
});

describe('worker recycling', () => {
  it('replaces a worker after workerMaxJobs jobs, without failing any', async (t) => {
    const engine = new Engine(engineOptions({ workersPerModel: 1, workerMaxJobs: 2 }), testLogger());
    t.after(() => engine.stop());
    const model = world.model('recycled');
    await engine.load(model);
    const names = ['j1', 'j2', 'j3', 'j4', 'j5'];
    const transcripts = await Promise.all(names.map((name) => engine.transcribe(model, job(world.audio(name)))));
    assert.deepEqual(transcripts.map(text), names);
    const pids = world
      .journal('recycled')
      .filter((entry) => entry.event === 'run')
      .map((entry) => entry.pid);
    assert.equal(pids.length, 5);
    assert.equal(pids[0], pids[1]);
    assert.equal(pids[2], pids[3]);
    assert.equal(new Set(pids).size, 3, 'two jobs per worker process');
    // The recycled workers were asked to stop, not killed.
    await waitUntil(
      () =>
        [pids[0], pids[2]].every((pid) =>
          world.journal('recycled').some((entry) => entry.event === 'exit' && entry.pid === pid),
        ),
      'the recycled workers exit',
    );
    assert.equal(engine.modelStatus('recycled')?.restarts, 0, 'recycling is not a restart');
  });

  it('replaces a worker whose memory is over workerMaxRssMb after a job', async (t) => {
    // Any process is over 1 MiB: every job is the last of its worker.
    const engine = new Engine(engineOptions({ workersPerModel: 1, workerMaxRssMb: 1 }), testLogger());
    t.after(() => engine.stop());
    const model = world.model('recycled-rss');
    await engine.load(model);
    const names = ['r1', 'r2', 'r3'];
    const transcripts = await Promise.all(names.map((name) => engine.transcribe(model, job(world.audio(name)))));
    assert.deepEqual(transcripts.map(text), names);
    const pids = world
      .journal('recycled-rss')
      .filter((entry) => entry.event === 'run')
      .map((entry) => entry.pid);
    assert.equal(new Set(pids).size, 3, 'one job per worker process');
    assert.equal(engine.modelStatus('recycled-rss')?.restarts, 0);
  });

  it('does not give a job to a worker it is about to recycle', async (t) => {
    const engine = new Engine(engineOptions({ workersPerModel: 1, workerMaxJobs: 1 }), testLogger());
    t.after(() => engine.stop());
    const model = world.model('recycle-race');
    await engine.load(model);
    await engine.transcribe(model, job(world.audio('first')));
    // Submitted as soon as the first job resolves: its worker has done its one job.
    await engine.transcribe(model, job(world.audio('second')));
    const journal = world.journal('recycle-race');
    const runs = journal.filter((entry) => entry.event === 'run');
    assert.notEqual(runs[0]?.pid, runs[1]?.pid, 'the second job ran on the replacement worker');
  });
});
