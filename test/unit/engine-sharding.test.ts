// One job shared among the idle workers of a model (src/engine/shards.ts), with fake workers
// (test/support/fake-worker.mjs: `!long` audio is answered by each shard with its share of the lines).
// Jobs are held by gates, never by timing.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Engine, isEngineError, type EngineInfo, type EngineSegment } from '../../src/engine/index.ts';
// eslint-disable-next-line no-restricted-imports -- this test checks the engine module itself
import { ShardMerger } from '../../src/engine/shards.ts';
import { engineOptions, FakeWorld, job, testLogger, text, track, waitUntil } from '../support/fake-engine.ts';

let world: FakeWorld;
before(() => (world = new FakeWorld()));
after(() => world.remove());

/** An engine whose models have two workers and share long jobs among them. */
function shardingEngine(shardLongAudio = true): Engine {
  return new Engine(
    engineOptions({ workersPerModel: 2, shardLongAudio }, { longAudioBatchSize: 8, longAudioSeconds: 60 }),
    testLogger(),
  );
}

/** The shards each worker process received, by pid. */
function shardsByPid(model: string): Map<number, { index: number; count: number }[]> {
  const byPid = new Map<number, { index: number; count: number }[]>();
  for (const entry of world.journal(model)) {
    if (entry.event !== 'run') continue;
    for (const run of entry.jobs ?? []) {
      if (run.shard) byPid.set(entry.pid, [...(byPid.get(entry.pid) ?? []), run.shard]);
    }
  }
  return byPid;
}

async function bothWorkersReady(engine: Engine, model: string): Promise<void> {
  await waitUntil(() => engine.modelStatus(model)?.workers === 2, 'both workers are ready');
}

const lines = ['one', 'two', 'three', 'four', 'five'];

describe('sharding one job among idle workers', () => {
  it('sends a job on an idle model to both workers and joins their segments in order, streamed', async (t) => {
    const engine = shardingEngine();
    t.after(() => engine.stop());
    const model = world.model('shard-long');
    await engine.transcribe(model, job(world.audio('warm')));
    await bothWorkersReady(engine, 'shard-long');
    const streamed: EngineSegment[] = [];
    const infos: EngineInfo[] = [];
    const transcript = await engine.transcribe(model, {
      ...job(world.audio('!long', ...lines)),
      listener: { onSegment: (segment) => streamed.push(segment), onInfo: (info) => infos.push(info) },
    });
    assert.equal(text(transcript), lines.join(' '));
    assert.deepEqual(
      transcript.segments.map((segment) => [segment.id, segment.start]),
      lines.map((_, index) => [index, index]),
    );
    assert.deepEqual(streamed, transcript.segments, 'the stream gives the joined segments, in order');
    assert.equal(infos.length, 1, 'one info for the job');
    const shards = [...shardsByPid('shard-long').values()];
    assert.equal(shards.length, 2, 'two worker processes took a shard of the long job');
    assert.deepEqual(
      shards
        .flat()
        .sort((a, b) => a.index - b.index)
        .slice(-2),
      [
        { index: 0, count: 2 },
        { index: 1, count: 2 },
      ],
    );
  });

  it("passes the first shard's language on to the others, which wait for it; not when the job has one", async (t) => {
    const engine = shardingEngine();
    t.after(() => engine.stop());
    const model = world.model('shard-language');
    await engine.transcribe(model, job(world.audio('warm')));
    await bothWorkersReady(engine, 'shard-language');
    const infos: EngineInfo[] = [];
    const transcript = await engine.transcribe(model, {
      ...job(world.audio('!long', '!language=de', ...lines)),
      listener: { onInfo: (info) => infos.push(info) },
    });
    assert.equal(text(transcript), lines.join(' '), 'the later shard decoded once it had the language');
    assert.equal(transcript.info.language, 'de');
    assert.deepEqual(
      infos.map((info) => info.language),
      ['de'],
      "the job's info is the first shard's (the later one's says '')",
    );
    const runs = world.journal('shard-language').filter((entry) => entry.event === 'run');
    const later = runs.find((entry) => entry.jobs?.some((run) => run.shard?.index === 1));
    const relayed = world.journal('shard-language').filter((entry) => entry.event === 'language');
    assert.deepEqual(
      relayed.map((entry) => [entry.pid, entry.language]),
      [[later?.pid, 'de']],
      'the worker of shard 1, and only it, got the language',
    );

    await engine.transcribe(model, job(world.audio('!long', ...lines), { language: 'fr' }));
    const after = world.journal('shard-language').filter((entry) => entry.event === 'language');
    assert.equal(after.length, 1, 'a job given its language is decoded with it, nothing relayed');
  });

  it('gives a short job whole to the first shard: the transcript is the unsharded one', async (t) => {
    const engine = shardingEngine();
    t.after(() => engine.stop());
    const model = world.model('shard-short');
    await engine.transcribe(model, job(world.audio('warm')));
    await bothWorkersReady(engine, 'shard-short');
    const transcript = await engine.transcribe(model, job(world.audio(...lines)));
    assert.equal(shardsByPid('shard-short').size, 2, 'the job was sent to both workers');
    assert.equal(text(transcript), lines.join(' '));
    assert.deepEqual(
      transcript.segments.map((segment) => segment.id),
      lines.map((_, index) => index),
    );
  });

  it('does not shard when it is off, or a job the batched pipeline cannot take', async (t) => {
    const engine = shardingEngine(false);
    t.after(() => engine.stop());
    const model = world.model('shard-off');
    await engine.transcribe(model, job(world.audio('warm')));
    await bothWorkersReady(engine, 'shard-off');
    await engine.transcribe(model, job(world.audio('!long', ...lines)));
    assert.equal(shardsByPid('shard-off').size, 0);

    const on = shardingEngine();
    t.after(() => on.stop());
    const other = world.model('shard-unbatchable');
    await on.transcribe(other, job(world.audio('warm')));
    await bothWorkersReady(on, 'shard-unbatchable');
    const before = shardsByPid('shard-unbatchable').size;
    await on.transcribe(other, job(world.audio('!long', ...lines), { condition_on_previous_text: true }));
    await on.transcribe(other, job(world.audio('!long', ...lines), { diarize: {} }));
    assert.equal(shardsByPid('shard-unbatchable').size, before, 'no shard for these jobs');
  });

  it('lets the next jobs wait while a job runs as shards, then runs them side by side unsharded', async (t) => {
    const engine = shardingEngine();
    t.after(() => engine.stop());
    const model = world.model('shard-queue');
    await engine.transcribe(model, job(world.audio('warm')));
    await bothWorkersReady(engine, 'shard-queue');
    const gate = world.gate();
    const long = track(engine.transcribe(model, job(world.audio('!long', `!gate=${gate.path}`, ...lines))));
    await waitUntil(() => engine.modelStatus('shard-queue')?.running === 2, 'both shards run');
    const next = ['next', 'second'].map((name) => track(engine.transcribe(model, job(world.audio('!long', name)))));
    await waitUntil(() => engine.modelStatus('shard-queue')?.queued === 2, 'the next jobs wait');
    gate.open();
    assert.equal(text(await long.promise), lines.join(' '));
    assert.deepEqual((await Promise.all(next.map((held) => held.promise))).map(text), ['next', 'second']);
    const runs = world
      .journal('shard-queue')
      .flatMap((entry) => (entry.event === 'run' ? (entry.jobs ?? []) : []))
      .filter((run) => run.text === 'next' || run.text === 'second');
    assert.equal(runs.length, 2, 'each waiting job ran once');
    assert.ok(
      runs.every((run) => run.shard === undefined),
      'jobs that found others waiting were not sharded',
    );
  });

  it('ends the job when one shard fails, and stops the other', async (t) => {
    const engine = shardingEngine();
    t.after(() => engine.stop());
    const model = world.model('shard-fail');
    await engine.transcribe(model, job(world.audio('warm')));
    await bothWorkersReady(engine, 'shard-fail');
    const gate = world.gate();
    const failing = engine.transcribe(
      model,
      job(world.audio('!long', '!fail-shard=1', `!gate=${gate.path}`, ...lines)),
    );
    await assert.rejects(failing, (error) => isEngineError(error, 'job_failed'));
    await waitUntil(
      () => world.journal('shard-fail').some((entry) => entry.event === 'cancel'),
      'shard 0 is cancelled',
    );
    await waitUntil(() => engine.modelStatus('shard-fail')?.running === 0, 'nothing runs');
    assert.equal(text(await engine.transcribe(model, job(world.audio('after')))), 'after');
  });

  it('cancels every shard when the client leaves, leaving nothing running', async (t) => {
    const engine = shardingEngine();
    t.after(() => engine.stop());
    const model = world.model('shard-cancel');
    await engine.transcribe(model, job(world.audio('warm')));
    await bothWorkersReady(engine, 'shard-cancel');
    const gate = world.gate();
    const abort = new AbortController();
    const held = engine.transcribe(model, job(world.audio('!long', `!gate=${gate.path}`, ...lines)), abort.signal);
    await waitUntil(() => engine.modelStatus('shard-cancel')?.running === 2, 'both shards run');
    abort.abort();
    await assert.rejects(held, (error) => isEngineError(error, 'job_cancelled'));
    await waitUntil(() => engine.modelStatus('shard-cancel')?.running === 0, 'nothing runs');
    const cancels = world.journal('shard-cancel').filter((entry) => entry.event === 'cancel');
    assert.equal(new Set(cancels.map((entry) => entry.pid)).size, 2, 'both workers were told');
  });
});

describe('a cancelled shard that does not stop', () => {
  it('has its worker replaced after 2 s; the job ends cancelled and the model serves on', async (t) => {
    const engine = shardingEngine();
    t.after(() => engine.stop());
    const model = world.model('shard-stuck');
    await engine.transcribe(model, job(world.audio('warm')));
    await bothWorkersReady(engine, 'shard-stuck');
    const starts = () => world.journal('shard-stuck').filter((entry) => entry.event === 'start').length;
    const before = starts();
    const abort = new AbortController();
    // !hang: each shard is in a call that cannot be interrupted (it answers nothing, not even a cancel).
    const held = engine.transcribe(model, job(world.audio('!long', '!hang', ...lines)), abort.signal);
    await waitUntil(() => engine.modelStatus('shard-stuck')?.running === 2, 'both shards run');
    const abortedAt = performance.now();
    abort.abort();
    await assert.rejects(held, (error) => isEngineError(error, 'job_cancelled'));
    const seconds = (performance.now() - abortedAt) / 1000;
    assert.ok(
      seconds >= 1.9 && seconds < 6,
      `ended ${seconds.toFixed(1)} s after the cancel: the grace, then the kill`,
    );
    await waitUntil(() => starts() === before + 2, 'both workers were replaced');
    await bothWorkersReady(engine, 'shard-stuck');
    assert.equal(text(await engine.transcribe(model, job(world.audio('after')))), 'after');
  });

  it('is left alone when it stops by itself within the grace', async (t) => {
    const engine = shardingEngine();
    t.after(() => engine.stop());
    const model = world.model('shard-stops');
    await engine.transcribe(model, job(world.audio('warm')));
    await bothWorkersReady(engine, 'shard-stops');
    const starts = () => world.journal('shard-stops').filter((entry) => entry.event === 'start').length;
    const before = starts();
    const gate = world.gate();
    const abort = new AbortController();
    const held = engine.transcribe(model, job(world.audio('!long', `!gate=${gate.path}`, ...lines)), abort.signal);
    await waitUntil(() => engine.modelStatus('shard-stops')?.running === 2, 'both shards run');
    abort.abort();
    await assert.rejects(held, (error) => isEngineError(error, 'job_cancelled'));
    await new Promise((resolve) => setTimeout(resolve, 2500));
    assert.equal(starts(), before, 'no worker was replaced');
  });
});

describe('ShardMerger', () => {
  const info: EngineInfo = { language: 'en', language_probability: 1, duration: 90, duration_after_vad: 80 };
  const segment = (id: number, label: string): EngineSegment => ({
    id,
    seek: 0,
    start: 0,
    end: 1,
    text: ` ${label}`,
    tokens: [],
    temperature: 0,
    avg_logprob: -0.1,
    compression_ratio: 1,
    no_speech_prob: 0,
    words: null,
    logprobs: null,
  });

  it('streams a later shard only after the shards before it, renumbered after them', () => {
    const streamed: string[] = [];
    const merger = new ShardMerger(3, { onSegment: (s) => streamed.push(`${s.id}${s.text}`) });
    const [first, second, third] = [0, 1, 2].map((index) => merger.listenerFor(index));
    third!.onSegment?.(segment(1, 'e'));
    merger.finish(2, { task: 'transcribe', info, segments: [] });
    second!.onSegment?.(segment(1, 'c'));
    first!.onSegment?.(segment(1, 'a'));
    second!.onSegment?.(segment(2, 'd'));
    assert.deepEqual(streamed, ['1 a']);
    first!.onSegment?.(segment(2, 'b'));
    merger.finish(1, { task: 'transcribe', info, segments: [] });
    assert.equal(merger.transcript(), undefined, 'not before the first shard has finished');
    merger.finish(0, { task: 'transcribe', info, segments: [] });
    assert.deepEqual(streamed, ['1 a', '2 b', '3 c', '4 d', '5 e']);
    assert.deepEqual(
      merger.transcript()?.segments.map((s) => `${s.id}${s.text}`),
      streamed,
    );
  });
});
