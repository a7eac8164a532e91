// What belongs to the engine's Python libraries is read from the facts the installer writes from
// them (.venv/earshot-facts.json), never copied into TypeScript. worker/tests/test_facts.py checks
// that the file is current and that huggingface_hub reads a hub cache as the gateway's scanner does.
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
// eslint-disable-next-line no-restricted-imports -- this test checks the engine module itself
import {
  engineFacts,
  loadEngineFacts,
  MissingEngineFactsError,
  readEngineFacts,
  sileroVadModelPath,
} from '../../src/engine/engine-facts.ts';
// eslint-disable-next-line no-restricted-imports -- this test checks the engine module itself
import { ModelRegistry } from '../../src/engine/models.ts';
import { projectVenvDir } from '../../src/paths.ts';
import { engineKnowsLanguage, normaliseLanguage, supportedLanguageCodes } from '../../src/openai/languages.ts';

test('without the facts file the message says to run npm install', () => {
  assert.throws(
    () => readEngineFacts('/nonexistent/earshot-facts.json'),
    (error: Error) => error instanceof MissingEngineFactsError && /run npm install/.test(error.message),
  );
  const dir = mkdtempSync(path.join(os.tmpdir(), 'earshot-facts-'));
  try {
    writeFileSync(path.join(dir, 'facts.json'), '{"sizeNames": {}}');
    assert.throws(() => readEngineFacts(path.join(dir, 'facts.json')), /run npm install again/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the installed faster-whisper says its size names and language codes', () => {
  const facts = engineFacts();
  assert.equal(facts.sizeNames['tiny.en'], 'Systran/faster-whisper-tiny.en');
  assert.ok(facts.sizeNames['large-v3']);
  assert.ok(facts.languageCodes.includes('en') && facts.languageCodes.includes('yue'));
});

test("the names table names exactly faster-whisper's language codes, in its order", () => {
  // A faster-whisper that adds a language fails here: give it OpenAI whisper's English name.
  assert.deepEqual([...supportedLanguageCodes], engineFacts().languageCodes);
});

test('a language faster-whisper does not know is not accepted, by code or by name', () => {
  assert.equal(engineKnowsLanguage('en'), true);
  assert.equal(engineKnowsLanguage('xx'), false);
  assert.equal(normaliseLanguage('English'), 'en');
  assert.equal(normaliseLanguage('mandarin'), 'zh');
  assert.equal(normaliseLanguage('xx'), undefined);
  for (const code of supportedLanguageCodes) assert.equal(normaliseLanguage(code), code);
});

test("the registry's size names and hub cache layout are the facts'", async () => {
  const facts = engineFacts();
  const hubCacheDir = mkdtempSync(path.join(os.tmpdir(), 'earshot-hub-'));
  try {
    const { repoFolderPrefix, separator, refsDir, defaultRevision, snapshotsDir } = facts.hubCache;
    const folder = path.join(hubCacheDir, `${repoFolderPrefix}Systran${separator}faster-whisper-tiny`);
    mkdirSync(path.join(folder, refsDir), { recursive: true });
    writeFileSync(path.join(folder, refsDir, defaultRevision), 'abc123\n');
    mkdirSync(path.join(folder, snapshotsDir, 'abc123'), { recursive: true });
    writeFileSync(path.join(folder, snapshotsDir, 'abc123', 'model.bin'), '');
    const registry = new ModelRegistry({
      defaultModel: '',
      aliases: new Map(),
      modelsDir: path.join(hubCacheDir, 'no-models'),
      bundled: [],
      bundledDir: path.join(hubCacheDir, 'no-bundled'),
      hubCacheDir,
      hubDownload: false,
    });
    assert.deepEqual(await registry.resolve('tiny'), {
      id: 'tiny',
      source: { kind: 'hub', repo: 'Systran/faster-whisper-tiny', cached: true },
    });
    assert.equal(await registry.resolve('base'), undefined);
  } finally {
    rmSync(hubCacheDir, { recursive: true, force: true });
  }
});

test('another worker Python is asked for its own facts', () => {
  const other = path.join(projectVenvDir, 'bin', 'python3');
  assert.deepEqual(loadEngineFacts(other), readEngineFacts());
  // One that cannot answer: the installed facts stand in, with a warning naming the problem.
  const warnings: string[] = [];
  assert.deepEqual(
    loadEngineFacts('/nonexistent/python', (message) => warnings.push(message)),
    readEngineFacts(),
  );
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /worker\/requirements\.txt.*using the installed engine's facts/);
});

test("the Silero VAD model is faster-whisper's own file", () => {
  // test/unit/realtime-vad.test.ts shows it gives faster-whisper's probabilities.
  const model = sileroVadModelPath();
  assert.equal(path.basename(model), 'silero_vad_v6.onnx');
  assert.ok(model.includes(`${path.sep}faster_whisper${path.sep}assets${path.sep}`));
  assert.ok(statSync(model).size > 100_000);
});
