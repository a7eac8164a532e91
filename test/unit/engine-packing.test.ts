// Which waiting jobs a free worker takes to pack side by side into shared windows (model-pool.ts
// packKey, packShare), with fake workers (test/support/fake-worker.mjs): what each worker received
// together, after a gated job held it. Jobs are held by gates, never by timing.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Engine, isEnglishOnly, packShare, type TranscribeOptions } from '../../src/engine/index.ts';
import { engineOptions, FakeWorld, job, testLogger, text, waitUntil } from '../support/fake-engine.ts';

let world: FakeWorld;
before(() => (world = new FakeWorld()));
after(() => world.remove());

/**
 * Holds the one worker of `modelName` with a gated job, queues `queued` (name and options each), opens
 * the gate and returns what the worker received together after the gated job.
 */
async function groupsFor(
  modelName: string,
  options: { packMaxClips: number; maxBatch?: number },
  queued: [string, TranscribeOptions][],
): Promise<string[][]> {
  const engine = new Engine(engineOptions({ workersPerModel: 1, ...options }), testLogger());
  try {
    const model = world.model(modelName);
    const gate = world.gate();
    const first = engine.transcribe(model, job(world.audio('gated', `!gate=${gate.path}`)));
    await waitUntil(() => world.runs(modelName).length === 1, 'the gated job runs');
    const jobs = queued.map(([name, jobOptions]) => engine.transcribe(model, job(world.audio(name), jobOptions)));
    await waitUntil(() => engine.modelStatus(modelName)?.queued === queued.length, 'every job waits');
    gate.open();
    const transcripts = await Promise.all([first, ...jobs]);
    assert.deepEqual(transcripts.map(text), ['gated', ...queued.map(([name]) => name)], 'each job its own text');
    return world.runs(modelName).slice(1);
  } finally {
    await engine.stop();
  }
}

const en: TranscribeOptions = { task: 'transcribe', language: 'en' };

describe('packing short jobs', () => {
  it('packs waiting jobs with the same options and a language, up to packMaxClips, in queue order', async () => {
    const runs = await groupsFor('pack', { packMaxClips: 3 }, [
      ['e1', en],
      ['d1', { task: 'transcribe', language: 'de' }],
      // Word timestamps only change what is sent back: packed with the others.
      ['e2', { ...en, word_timestamps: true }],
      ['e3', en],
      ['e4', en],
      ['d2', { task: 'transcribe', language: 'de' }],
      ['t1', { task: 'translate', language: 'en' }],
    ]);
    assert.deepEqual(runs, [['e1', 'e2', 'e3'], ['d1', 'd2'], ['e4'], ['t1']]);
  });

  it('runs alone what needs a decode of its own: no language, a prompt, logprobs, VAD, conditioning', async () => {
    const runs = await groupsFor('pack-alone', { packMaxClips: 8 }, [
      ['n1', { task: 'transcribe' }],
      ['n2', { task: 'transcribe' }],
      ['p1', { ...en, initial_prompt: 'Kennedy.' }],
      ['p2', { ...en, initial_prompt: 'Kennedy.' }],
      ['l1', { ...en, logprobs: true }],
      ['l2', { ...en, logprobs: true }],
      ['v1', { ...en, vad_filter: true }],
      ['v2', { ...en, vad_filter: true }],
      ['c1', { ...en, condition_on_previous_text: false }],
      ['c2', { ...en, condition_on_previous_text: false }],
      ['k1', en],
      ['k2', en],
    ]);
    assert.deepEqual(runs, [
      ['n1'],
      ['n2'],
      ['p1'],
      ['p2'],
      ['l1'],
      ['l2'],
      ['v1'],
      ['v2'],
      ['c1'],
      ['c2'],
      ['k1', 'k2'],
    ]);
  });

  it('packs without a language on an English-only model', async () => {
    const runs = await groupsFor('tiny.en', { packMaxClips: 8 }, [
      ['a', { task: 'transcribe' }],
      ['b', { task: 'transcribe' }],
    ]);
    assert.deepEqual(runs, [['a', 'b']]);
  });

  it('leaves jobs that are not packed to cross-request batching, and packs nothing with packMaxClips 1', async () => {
    assert.deepEqual(
      await groupsFor('pack-batch', { packMaxClips: 8, maxBatch: 4 }, [
        ['n1', { task: 'transcribe' }],
        ['e1', en],
        ['n2', { task: 'transcribe' }],
        ['e2', en],
      ]),
      [
        ['n1', 'n2'],
        ['e1', 'e2'],
      ],
    );
    assert.deepEqual(
      await groupsFor('pack-off', { packMaxClips: 1 }, [
        ['e1', en],
        ['e2', en],
      ]),
      [['e1'], ['e2']],
    );
  });

  it('gives each idle worker an even share of the waiting jobs, at most packMaxClips', () => {
    assert.equal(packShare(1, 2, 8), 1);
    assert.equal(packShare(2, 2, 8), 1);
    assert.equal(packShare(7, 2, 8), 4);
    assert.equal(packShare(20, 1, 8), 8);
    assert.equal(packShare(5, 0, 8), 5);
  });

  it('knows English-only models by their name', () => {
    const directory = (id: string, dir: string) => ({ id, source: { kind: 'directory' as const, path: dir } });
    assert.equal(isEnglishOnly(directory('tiny.en', '/models/tiny.en')), true);
    assert.equal(isEnglishOnly(directory('fast', '/models/base.en/')), true);
    assert.equal(
      isEnglishOnly({ id: 'x', source: { kind: 'hub', repo: 'Systran/faster-whisper-small.en', cached: true } }),
      true,
    );
    assert.equal(isEnglishOnly(directory('base', '/models/base')), false);
    assert.equal(isEnglishOnly(directory('english', '/models/large-v3')), false);
  });
});
