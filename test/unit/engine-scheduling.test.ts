// Scheduling with fake workers (test/support/fake-worker.mjs): FIFO order, the workers of a model
// used in parallel, the queue bound (429 with retry-after), which queued jobs are decoded together
// in one batch, and live jobs ahead of the others. Jobs are held by gates (files the fake waits for),
// never by timing.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Engine, isEngineError, type JobRequest, type TranscribeOptions } from '../../src/engine/index.ts';
import {
  engineOptions,
  fakeApp,
  FakeWorld,
  job,
  multipart,
  testLogger,
  text,
  track,
  waitUntil,
} from '../support/fake-engine.ts';

let world: FakeWorld;
before(() => (world = new FakeWorld()));
after(() => world.remove());

describe('scheduling', () => {
  it('runs the jobs of one worker in the order they arrived', async (t) => {
    const engine = new Engine(engineOptions({ workersPerModel: 1 }), testLogger());
    t.after(() => engine.stop());
    const model = world.model('fifo');
    const gate = world.gate();
    const first = engine.transcribe(model, job(world.audio('first', `!gate=${gate.path}`)));
    await waitUntil(() => world.runs('fifo').length === 1, 'the first job runs');
    const names = ['second', 'third', 'fourth', 'fifth'];
    const rest = names.map((name) => engine.transcribe(model, job(world.audio(name))));
    await waitUntil(() => engine.modelStatus('fifo')?.queued === 4, 'four jobs wait');
    gate.open();
    const transcripts = await Promise.all([first, ...rest]);
    assert.deepEqual(transcripts.map(text), ['first', ...names]);
    assert.deepEqual(world.runs('fifo'), [['first'], ...names.map((name) => [name])]);
  });

  it('uses every worker of a model at once', async (t) => {
    const engine = new Engine(engineOptions({ workersPerModel: 2 }), testLogger());
    t.after(() => engine.stop());
    const model = world.model('parallel');
    const gate = world.gate();
    const held = ['a', 'b', 'c'].map((name) =>
      track(engine.transcribe(model, job(world.audio(name, `!gate=${gate.path}`)))),
    );
    await waitUntil(() => world.runs('parallel').length === 2, 'two jobs run');
    const status = engine.modelStatus('parallel');
    assert.equal(status?.running, 2);
    assert.equal(status.queued, 1);
    assert.ok(
      held.every((job) => !job.settled()),
      'no job finished before the gate opened',
    );
    const pids = new Set(
      world
        .journal('parallel')
        .filter((entry) => entry.event === 'run')
        .map((entry) => entry.pid),
    );
    assert.equal(pids.size, 2, 'two worker processes each run one job');
    gate.open();
    assert.deepEqual((await Promise.all(held.map((job) => job.promise))).map(text), ['a', 'b', 'c']);
    assert.equal(world.starts('parallel'), 2);
  });

  it('answers 429 server_overloaded with retry-after when the queue is full', async (t) => {
    const { app, engine } = await fakeApp(world, 'overload', engineOptions({ workersPerModel: 1, maxQueuedJobs: 1 }));
    world.model('overload');
    t.after(async () => {
      await app.close();
      await engine.stop();
    });
    const gate = world.gate();
    const post = async (fileText: string) =>
      app.inject({
        method: 'POST',
        url: '/v1/audio/transcriptions',
        ...(await multipart({ model: 'whisper-1' }, fileText)),
      });
    const running = post(`running\n!gate=${gate.path}`);
    await waitUntil(() => engine.modelStatus('overload')?.running === 1, 'the first request runs');
    const waiting = post('waiting');
    await waitUntil(() => engine.modelStatus('overload')?.queued === 1, 'the second request waits');

    const refused = await post('refused');
    assert.equal(refused.statusCode, 429);
    const retryAfter = Number(refused.headers['retry-after']);
    assert.ok(
      Number.isInteger(retryAfter) && retryAfter >= 1,
      `retry-after: ${String(refused.headers['retry-after'])}`,
    );
    const body = refused.json<{ error: Record<string, unknown> }>();
    assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(body.error.type, 'server_error');
    assert.equal(body.error.code, 'server_overloaded');
    assert.equal(body.error.param, null);
    assert.match(String(body.error.message), /1 jobs are waiting for model overload/);
    assert.equal((await app.inject({ method: 'GET', url: '/ready' })).statusCode, 503, '/ready says the queue is full');

    gate.open();
    const answers = await Promise.all([running, waiting]);
    assert.deepEqual(
      answers.map((answer) => [answer.statusCode, answer.json<{ text: string }>().text]),
      [
        [200, 'running'],
        [200, 'waiting'],
      ],
    );
    assert.deepEqual(world.runs('overload'), [['running'], ['waiting']], 'the refused request never ran');
  });
});

describe('cross-request batching', () => {
  /**
   * Holds the one worker with a gated job, queues `queued` (name and options each), opens the gate
   * and returns what the worker received together, after the gated job.
   */
  async function batchesFor(
    modelName: string,
    maxBatch: number,
    queued: [string, TranscribeOptions][],
  ): Promise<string[][]> {
    const engine = new Engine(engineOptions({ workersPerModel: 1, maxBatch }), testLogger());
    try {
      const model = world.model(modelName);
      const gate = world.gate();
      const first = engine.transcribe(model, job(world.audio('gated', `!gate=${gate.path}`)));
      await waitUntil(() => world.runs(modelName).length === 1, 'the gated job runs');
      const jobs = queued.map(([name, options]) => engine.transcribe(model, job(world.audio(name), options)));
      await waitUntil(() => engine.modelStatus(modelName)?.queued === queued.length, 'every job waits');
      gate.open();
      const transcripts = await Promise.all([first, ...jobs]);
      assert.deepEqual(transcripts.map(text), ['gated', ...queued.map(([name]) => name)], 'each job its own text');
      const runs = world.runs(modelName);
      assert.deepEqual(runs[0], ['gated']);
      return runs.slice(1);
    } finally {
      await engine.stop();
    }
  }

  it('batches waiting jobs with identical options, up to maxBatch, in queue order', async () => {
    const runs = await batchesFor('batch', 3, [
      ['p1', {}],
      ['en1', { language: 'en' }],
      ['p2', {}],
      ['p3', {}],
      ['p4', {}],
      ['en2', { language: 'en' }],
      ['w1', { word_timestamps: true, language: 'en' }],
      ['w2', { language: 'en', word_timestamps: true }],
    ]);
    assert.deepEqual(runs, [
      ['p1', 'p2', 'p3'],
      ['en1', 'en2'],
      ['p4'],
      // The same options in another order are the same options.
      ['w1', 'w2'],
    ]);
  });

  it('runs jobs with logprobs, VAD, their own batch_size or the hallucination filter alone', async () => {
    const runs = await batchesFor('alone', 8, [
      ['l1', { logprobs: true }],
      ['l2', { logprobs: true }],
      ['v1', { vad_filter: true }],
      ['v2', { vad_filter: true }],
      ['b1', { batch_size: 4 }],
      ['b2', { batch_size: 4 }],
      ['h1', { hallucination_silence_threshold: 1 }],
      ['h2', { hallucination_silence_threshold: 1 }],
      ['p1', {}],
      ['p2', {}],
    ]);
    assert.deepEqual(runs, [['l1'], ['l2'], ['v1'], ['v2'], ['b1'], ['b2'], ['h1'], ['h2'], ['p1', 'p2']]);
  });

  it('does not batch at all with maxBatch 1', async () => {
    const runs = await batchesFor('nobatch', 1, [
      ['p1', {}],
      ['p2', {}],
      ['p3', {}],
    ]);
    assert.deepEqual(runs, [['p1'], ['p2'], ['p3']]);
  });
});

describe('live jobs', () => {
  const live = (audioPath: string): JobRequest => ({ ...job(audioPath), priority: 'live' });

  it('run ahead of the waiting jobs, in their own order, each alone, observed as any job', async (t) => {
    const observed: string[] = [];
    const engine = new Engine(
      engineOptions({
        workersPerModel: 2,
        maxBatch: 4,
        observer: {
          jobStarted: (model) => observed.push(`started ${model}`),
          jobFinished: (model, outcome) => observed.push(`${outcome} ${model}`),
        },
      }),
      testLogger(),
    );
    t.after(() => engine.stop());
    const model = world.model('live');
    const [gateA, gateB, gateL] = [world.gate(), world.gate(), world.gate()];
    // One after the other: waiting together, they would be one batch.
    const held = [engine.transcribe(model, job(world.audio('a', `!gate=${gateA.path}`)))];
    await waitUntil(() => world.runs('live').length === 1, 'a worker is busy');
    held.push(engine.transcribe(model, job(world.audio('b', `!gate=${gateB.path}`))));
    await waitUntil(() => world.runs('live').length === 2, 'both workers are busy');
    // The file jobs and the second live job have the same options: they could all be one batch.
    const files = ['f1', 'f2'].map((name) => engine.transcribe(model, job(world.audio(name))));
    await waitUntil(() => engine.modelStatus('live')?.queued === 2, 'two file jobs wait');
    const lives = [
      engine.transcribe(model, live(world.audio('l1', `!gate=${gateL.path}`))),
      engine.transcribe(model, live(world.audio('l2'))),
    ];
    await waitUntil(() => engine.modelStatus('live')?.queued === 4, 'the live jobs wait too');

    gateA.open();
    await waitUntil(() => world.runs('live').length === 3, 'a worker is free');
    assert.deepEqual(world.runs('live')[2], ['l1'], 'the first live job runs next, ahead of the file jobs');
    gateB.open();
    await waitUntil(() => world.runs('live').length === 5, 'the other worker takes the next two');
    gateL.open();
    const transcripts = await Promise.all([...held, ...files, ...lives]);
    assert.deepEqual(transcripts.map(text), ['a', 'b', 'f1', 'f2', 'l1', 'l2']);
    assert.deepEqual(world.runs('live'), [['a'], ['b'], ['l1'], ['l2'], ['f1', 'f2']], 'live jobs run alone');
    assert.deepEqual(observed.filter((entry) => entry === 'started live').length, 6);
    assert.deepEqual(observed.filter((entry) => entry === 'ok live').length, 6);
  });

  it('leave the queue when cancelled while they wait, and never run', async (t) => {
    const engine = new Engine(engineOptions({ workersPerModel: 1 }), testLogger());
    t.after(() => engine.stop());
    const model = world.model('live-cancel');
    const gate = world.gate();
    const running = engine.transcribe(model, job(world.audio('running', `!gate=${gate.path}`)));
    await waitUntil(() => world.runs('live-cancel').length === 1, 'the first job runs');
    const file = engine.transcribe(model, job(world.audio('file')));
    const controller = new AbortController();
    const abandoned = engine.transcribe(model, live(world.audio('abandoned')), controller.signal);
    const next = engine.transcribe(model, live(world.audio('next')));
    await waitUntil(() => engine.modelStatus('live-cancel')?.queued === 3, 'three jobs wait');
    controller.abort();
    await assert.rejects(abandoned, (error: Error) => isEngineError(error, 'job_cancelled'));
    assert.equal(engine.modelStatus('live-cancel')?.queued, 2);
    gate.open();
    assert.deepEqual((await Promise.all([running, next, file])).map(text), ['running', 'next', 'file']);
    assert.deepEqual(world.runs('live-cancel'), [['running'], ['next'], ['file']]);
  });
});
