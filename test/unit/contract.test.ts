// The worker contract is defined once (src/engine/messages.ts); the worker reads the JSON Schema
// generated from it. These tests keep the committed schema current and pin the batching rule.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
// eslint-disable-next-line no-restricted-imports -- this test checks the engine module itself
import {
  batchable,
  contractDocument,
  TranscribeOptionsSchema,
  workerOptionNames,
  type TranscribeOptions,
} from '../../src/engine/messages.ts';
// eslint-disable-next-line no-restricted-imports -- this test checks the engine module itself
import { batchKey } from '../../src/engine/model-pool.ts';
import { contractSchemaFile } from '../../src/paths.ts';

test('the committed contract.schema.json is what src/engine/messages.ts generates', () => {
  assert.equal(
    readFileSync(contractSchemaFile, 'utf8'),
    contractDocument(),
    'worker/earshot_worker/contract.schema.json is stale: run npm run contract and commit it',
  );
});

test('the options the worker handles itself are logprobs, batch_size, fit_window, partial, diarize and shard', () => {
  assert.deepEqual([...workerOptionNames].sort(), [
    'batch_size',
    'diarize',
    'fit_window',
    'logprobs',
    'partial',
    'shard',
  ]);
});

test('options and their JSON Schema have the same names', () => {
  const all: Required<TranscribeOptions> = {
    language: 'en',
    task: 'transcribe',
    initial_prompt: '',
    temperature: [0],
    word_timestamps: true,
    beam_size: 5,
    best_of: 5,
    patience: 1,
    vad_filter: true,
    vad_parameters: {},
    hotwords: '',
    prefix: 'And so',
    condition_on_previous_text: true,
    without_timestamps: true,
    no_speech_threshold: 0.6,
    log_prob_threshold: -1,
    compression_ratio_threshold: 2.4,
    hallucination_silence_threshold: 1,
    logprobs: true,
    batch_size: 8,
    fit_window: true,
    partial: true,
    diarize: {},
    shard: { index: 0, count: 2 },
  };
  assert.deepEqual(Object.keys(all).sort(), Object.keys(TranscribeOptionsSchema.properties).sort());
});

// The same cases are checked against the worker's reading of the rule (worker/tests/test_contract.py).
const cases: { options: TranscribeOptions; cross_request: boolean; long_audio: boolean }[] = JSON.parse(
  readFileSync(new URL('../../worker/tests/batching-cases.json', import.meta.url), 'utf8'),
) as never;

test('batchable() follows the x-unbatched rule for each shared case', () => {
  assert.ok(cases.length > 5);
  for (const { options, cross_request, long_audio } of cases) {
    assert.equal(batchable(options, 'cross_request'), cross_request, JSON.stringify(options));
    assert.equal(batchable(options, 'long_audio'), long_audio, JSON.stringify(options));
  }
});

test('the pool batches only what the rule allows, and only identical options together', () => {
  const key = (options: TranscribeOptions) => batchKey({ id: 'x', audioPath: '/a', task: 'transcribe', options });
  for (const { options, cross_request } of cases) {
    assert.equal(key(options) !== undefined, cross_request, JSON.stringify(options));
  }
  assert.equal(key({ task: 'transcribe', language: 'en' }), key({ language: 'en', task: 'transcribe' }));
  assert.notEqual(key({ language: 'en' }), key({ language: 'de' }));
});

test('the fake worker the engine tests run on refuses what is outside the contract', async () => {
  // It checks every command and event (test/support/fake-worker.mjs), so the engine suites prove that
  // the gateway's commands and the fake's events are the contract's.
  const { spawn } = await import('node:child_process');
  const fake = spawn(process.execPath, [
    new URL('../support/fake-worker.mjs', import.meta.url).pathname,
    '--name',
    'x',
  ]);
  let stderr = '';
  fake.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  fake.stdout.once('data', () => fake.stdin.write(`${JSON.stringify({ type: 'cancel', job: 7 })}\n`));
  const code = await new Promise((resolve) => fake.on('exit', resolve));
  assert.equal(code, 70);
  assert.match(stderr, /outside the contract \(WorkerCommand\)/);
});
