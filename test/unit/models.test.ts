import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ModelRegistry, readBundledModels, type ModelRegistryOptions } from '../../src/engine/index.ts';

/** A model directory: what makes a directory a model is its model.bin. */
function modelAt(directory: string) {
  mkdirSync(directory, { recursive: true });
  writeFileSync(path.join(directory, 'model.bin'), '');
}

/** huggingface_hub's cache layout: models--OWNER--NAME/refs/main naming a snapshot with model.bin. */
function cachedHubModel(hubCache: string, repo: string) {
  const entry = path.join(hubCache, `models--${repo.replace('/', '--')}`);
  mkdirSync(path.join(entry, 'refs'), { recursive: true });
  writeFileSync(path.join(entry, 'refs', 'main'), 'abc123\n');
  modelAt(path.join(entry, 'snapshots', 'abc123'));
}

function registryWithModelsDir(options: Partial<ModelRegistryOptions> = {}) {
  const modelsDir = mkdtempSync(path.join(os.tmpdir(), 'earshot-models-'));
  for (const name of ['my-model', 'acme/whisper-de', 'small']) modelAt(path.join(modelsDir, name));
  mkdirSync(path.join(modelsDir, 'not-a-model'));
  const hubCache = mkdtempSync(path.join(os.tmpdir(), 'earshot-hub-'));
  cachedHubModel(hubCache, 'Systran/faster-whisper-medium');
  cachedHubModel(hubCache, 'acme/cached-model');
  const registry = new ModelRegistry({
    defaultModel: 'base',
    aliases: new Map([
      ['whisper-1', ''],
      ['gpt-4o-transcribe', 'tiny.en'],
    ]),
    modelsDir,
    bundled: readBundledModels(),
    bundledDir: '/bundled',
    hubCacheDir: hubCache,
    scanTtlMs: 0,
    ...options,
  });
  return { registry, modelsDir, hubCache };
}

describe('model name resolution', () => {
  const { registry, modelsDir, hubCache } = registryWithModelsDir();

  it('maps OpenAI aliases to the default model or to their configured target', async () => {
    assert.deepEqual(await registry.resolve('whisper-1'), {
      id: 'base',
      source: { kind: 'bundled', path: '/bundled/base' },
    });
    assert.deepEqual(await registry.resolve('gpt-4o-transcribe'), {
      id: 'tiny.en',
      source: { kind: 'bundled', path: '/bundled/tiny.en' },
    });
  });

  it('serves a bundled model by its name, its size name and its hub id', async () => {
    for (const name of ['base', 'Systran/faster-whisper-base', ' base ']) {
      assert.equal((await registry.resolve(name))?.source.kind, 'bundled', name);
      assert.equal((await registry.resolve(name))?.id, 'base', name);
    }
    assert.equal((await registry.resolve('Systran/faster-whisper-tiny.en'))?.id, 'tiny.en');
  });

  it('serves directories inside the models directory by NAME and OWNER/NAME, before the hub', async () => {
    assert.deepEqual(await registry.resolve('my-model'), {
      id: 'my-model',
      source: { kind: 'directory', path: path.join(modelsDir, 'my-model') },
    });
    assert.deepEqual((await registry.resolve('acme/whisper-de'))?.source, {
      kind: 'directory',
      path: path.join(modelsDir, 'acme', 'whisper-de'),
    });
    assert.equal((await registry.resolve('small'))?.source.kind, 'directory');
  });

  it('maps faster-whisper size names to hub repositories, downloadable by default', async () => {
    assert.deepEqual(await registry.resolve('large-v3'), {
      id: 'large-v3',
      source: { kind: 'hub', repo: 'Systran/faster-whisper-large-v3', cached: false },
    });
    assert.deepEqual((await registry.resolve('turbo'))?.source, {
      kind: 'hub',
      repo: 'mobiuslabsgmbh/faster-whisper-large-v3-turbo',
      cached: false,
    });
    assert.deepEqual((await registry.resolve('distil-large-v3'))?.source, {
      kind: 'hub',
      repo: 'Systran/faster-distil-whisper-large-v3',
      cached: false,
    });
  });

  it('serves hub models in the hub cache by id and by size name', async () => {
    assert.deepEqual(await registry.resolve('acme/cached-model'), {
      id: 'acme/cached-model',
      source: { kind: 'hub', repo: 'acme/cached-model', cached: true },
    });
    assert.deepEqual((await registry.resolve('medium'))?.source, {
      kind: 'hub',
      repo: 'Systran/faster-whisper-medium',
      cached: true,
    });
    assert.equal((await registry.resolve('Systran/faster-whisper-medium'))?.source.kind, 'hub');
  });

  it('refuses a made-up OWNER/NAME that is not on disk: no download of names nobody allowed', async () => {
    for (const name of ['someone/faster-whisper-x', 'nosuch/model', 'node_modules/openai', 'acme/whisper-xx']) {
      assert.equal(await registry.resolve(name), undefined, name);
    }
  });

  it('knows nothing of a plain name that is neither bundled, a directory nor a size', async () => {
    assert.equal(await registry.resolve('no-such-model'), undefined);
    const { registry: any } = registryWithModelsDir({ hubModels: ['*'] });
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf']) {
      assert.equal(await registry.resolve(name), undefined, name);
      assert.equal(await any.resolve(name), undefined, name);
    }
    assert.equal(await registry.resolve('not-a-model'), undefined, 'a directory without model.bin is not a model');
    assert.equal(await registry.resolve(''), undefined);
  });

  it('never turns a name into a path outside the allowed places', async () => {
    const outside = mkdtempSync(path.join(os.tmpdir(), 'earshot-outside-'));
    writeFileSync(path.join(outside, 'model.bin'), '');
    const attempts = [
      '../outside',
      `..${path.sep}..${path.sep}etc`,
      outside,
      '/etc/passwd',
      'a/b/c',
      './my-model',
      'my-model/.',
      'acme/..',
      '..',
      '.',
      '~/models',
      'C:\\models\\x',
      'my-model\0',
      'owner/na me',
      path.relative(modelsDir, outside),
    ];
    for (const name of attempts) {
      const resolved = await registry.resolve(name);
      assert.equal(resolved, undefined, `${JSON.stringify(name)} resolved to ${JSON.stringify(resolved)}`);
    }
  });

  it('answers a name that is a directory of the working directory as it answers a made-up one', async () => {
    // node_modules/openai exists under the project directory (the working directory of tests and of
    // `npm start`): it must not be tried as a model, nor answer differently from a name that does not exist.
    const { registry: offline } = registryWithModelsDir({ hubDownload: false });
    const { registry: online } = registryWithModelsDir({ hubDownload: true, hubModels: ['*'] });
    for (const names of [offline, registry]) {
      assert.equal(await names.resolve('node_modules/openai'), undefined);
      assert.equal(await names.describe('node_modules/openai'), undefined);
    }
    // Even when any hub id may be downloaded, it is a hub id (loaded as such), never a local path.
    assert.deepEqual((await online.resolve('node_modules/openai'))?.source, {
      kind: 'hub',
      repo: 'node_modules/openai',
      cached: false,
    });
    assert.throws(() => new ModelRegistry({ ...optionsOf('models') }), /must be absolute/);
  });

  it("serves an operator's symlinked model directory, and no path beyond it", async () => {
    const outside = mkdtempSync(path.join(os.tmpdir(), 'earshot-outside-'));
    writeFileSync(path.join(outside, 'model.bin'), '');
    symlinkSync(outside, path.join(modelsDir, 'linked'));
    // An operator's symlink inside the models directory is theirs to make and is served as a model.
    assert.equal((await registry.resolve('linked'))?.source.kind, 'directory');
    assert.equal(await registry.resolve('linked/../../etc'), undefined);
  });

  it('lists what serves without a download, and describes every name it resolves', async () => {
    const ids = (await registry.list()).map((listing) => listing.entry.id);
    for (const id of ['base', 'tiny.en', 'whisper-1', 'gpt-4o-transcribe', 'my-model', 'acme/whisper-de']) {
      assert.ok(ids.includes(id), id);
    }
    assert.ok(ids.includes('acme/cached-model') && ids.includes('Systran/faster-whisper-medium'), 'the hub cache');
    assert.ok(!ids.includes('large-v3'), 'not downloaded yet');
    for (const name of ['Systran/faster-whisper-base', 'large-v3', 'medium', 'acme/cached-model', 'small']) {
      assert.equal((await registry.describe(name))?.entry.id, name, name);
    }
    assert.equal((await registry.describe('Systran/faster-whisper-base'))?.entry.owned_by, 'earshot');
    assert.equal((await registry.describe('acme/whisper-de'))?.entry.owned_by, 'acme');
    assert.equal(await registry.describe('nosuch/model'), undefined);
    assert.ok(hubCache);
  });
});

function optionsOf(modelsDir: string): ModelRegistryOptions {
  return { defaultModel: 'base', aliases: new Map(), modelsDir, bundled: readBundledModels() };
}

describe('hub downloads', () => {
  it('with EARSHOT_HUB_DOWNLOAD=false, serves size names and hub ids only from the hub cache', async () => {
    const { registry } = registryWithModelsDir({ hubDownload: false });
    assert.equal(await registry.resolve('large-v3'), undefined);
    assert.equal(await registry.resolve('Systran/faster-whisper-large-v3'), undefined);
    assert.equal(await registry.resolve('made-up/name'), undefined);
    assert.equal((await registry.resolve('medium'))?.source.kind, 'hub', 'in the hub cache');
    assert.equal((await registry.resolve('acme/cached-model'))?.source.kind, 'hub', 'in the hub cache');
    assert.equal((await registry.resolve('base'))?.source.kind, 'bundled');
  });

  it('downloads only the allowed names: size names and their repositories by default, a list, or *', async () => {
    const { registry: sizes } = registryWithModelsDir();
    assert.equal((await sizes.resolve('large-v2'))?.source.kind, 'hub');
    assert.equal((await sizes.resolve('Systran/faster-whisper-large-v2'))?.source.kind, 'hub', 'its repository');
    assert.equal(await sizes.resolve('Systran/faster-whisper-made-up'), undefined);

    const { registry: listed } = registryWithModelsDir({ hubModels: ['Systran/faster-whisper-large-v2', 'turbo'] });
    assert.equal((await listed.resolve('Systran/faster-whisper-large-v2'))?.source.kind, 'hub');
    assert.equal((await listed.resolve('large-v2'))?.source.kind, 'hub', 'the size name of an allowed repository');
    assert.equal((await listed.resolve('turbo'))?.source.kind, 'hub');
    assert.equal(await listed.resolve('large-v3'), undefined);

    const { registry: any } = registryWithModelsDir({ hubModels: ['*'] });
    assert.equal((await any.resolve('someone/some-model'))?.source.kind, 'hub');
    assert.equal(await any.resolve('plain-name'), undefined, 'a one-segment name is no hub id');
  });

  it('always allows the models the configuration names', async () => {
    const { registry } = registryWithModelsDir({
      defaultModel: 'acme/default-model',
      aliases: new Map([['whisper-1', 'acme/alias-target']]),
      preloadModels: ['acme/preloaded'],
    });
    for (const name of ['acme/default-model', 'acme/alias-target', 'whisper-1', 'acme/preloaded']) {
      assert.equal((await registry.resolve(name))?.source.kind, 'hub', name);
    }
  });
});

describe('the catalogue of what is on disk', () => {
  it('is read once per scan interval, and sees a model dropped in after it', async () => {
    const { registry, modelsDir } = registryWithModelsDir({ scanTtlMs: 150 });
    assert.equal(await registry.resolve('dropped-in'), undefined);
    modelAt(path.join(modelsDir, 'dropped-in'));
    assert.equal(await registry.resolve('dropped-in'), undefined, 'the last scan is still used');
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal((await registry.resolve('dropped-in'))?.source.kind, 'directory');
  });

  it('resolves from the last scan between scans, without touching the disk', async () => {
    const { registry, modelsDir } = registryWithModelsDir({ scanTtlMs: 60_000 });
    assert.equal((await registry.resolve('my-model'))?.source.kind, 'directory');
    rmSync(modelsDir, { recursive: true });
    // Had resolve() looked at the disk, the model would be gone.
    assert.equal((await registry.resolve('my-model'))?.source.kind, 'directory');
    assert.equal((await registry.resolve('acme/whisper-de'))?.source.kind, 'directory');
  });
});
