import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ModelRegistry, readBundledModels } from '../../src/engine/models.ts';

function registryWithModelsDir() {
  const modelsDir = mkdtempSync(path.join(os.tmpdir(), 'earshot-models-'));
  for (const name of ['my-model', 'acme/whisper-de', 'small']) {
    mkdirSync(path.join(modelsDir, name), { recursive: true });
    writeFileSync(path.join(modelsDir, name, 'model.bin'), '');
  }
  mkdirSync(path.join(modelsDir, 'not-a-model'));
  const registry = new ModelRegistry({
    defaultModel: 'base',
    aliases: new Map([
      ['whisper-1', ''],
      ['gpt-4o-transcribe', 'tiny.en'],
    ]),
    modelsDir,
    bundled: readBundledModels(),
    bundledDir: '/bundled',
  });
  return { registry, modelsDir };
}

describe('model name resolution', () => {
  const { registry, modelsDir } = registryWithModelsDir();

  it('maps OpenAI aliases to the default model or to their configured target', () => {
    assert.deepEqual(registry.resolve('whisper-1'), { id: 'base', source: { kind: 'bundled', path: '/bundled/base' } });
    assert.deepEqual(registry.resolve('gpt-4o-transcribe'), {
      id: 'tiny.en',
      source: { kind: 'bundled', path: '/bundled/tiny.en' },
    });
  });

  it('serves a bundled model by its name, its size name and its hub id', () => {
    for (const name of ['base', 'Systran/faster-whisper-base', ' base ']) {
      assert.equal(registry.resolve(name)?.source.kind, 'bundled', name);
      assert.equal(registry.resolve(name)?.id, 'base', name);
    }
    assert.equal(registry.resolve('Systran/faster-whisper-tiny.en')?.id, 'tiny.en');
  });

  it('serves directories inside the models directory by NAME and OWNER/NAME, before the hub', () => {
    assert.deepEqual(registry.resolve('my-model'), {
      id: 'my-model',
      source: { kind: 'directory', path: path.join(modelsDir, 'my-model') },
    });
    assert.deepEqual(registry.resolve('acme/whisper-de')?.source, {
      kind: 'directory',
      path: path.join(modelsDir, 'acme', 'whisper-de'),
    });
    assert.equal(registry.resolve('small')?.source.kind, 'directory');
  });

  it('maps faster-whisper size names and hub ids to hub repositories', () => {
    assert.deepEqual(registry.resolve('large-v3'), {
      id: 'large-v3',
      source: { kind: 'hub', repo: 'Systran/faster-whisper-large-v3' },
    });
    assert.deepEqual(registry.resolve('turbo')?.source, {
      kind: 'hub',
      repo: 'mobiuslabsgmbh/faster-whisper-large-v3-turbo',
    });
    assert.deepEqual(registry.resolve('distil-large-v3')?.source, {
      kind: 'hub',
      repo: 'Systran/faster-distil-whisper-large-v3',
    });
    assert.deepEqual(registry.resolve('Systran/faster-whisper-small')?.source, {
      kind: 'hub',
      repo: 'Systran/faster-whisper-small',
    });
  });

  it('knows nothing of a plain name that is neither bundled, a directory nor a size', () => {
    assert.equal(registry.resolve('no-such-model'), undefined);
    assert.equal(registry.resolve('not-a-model'), undefined, 'a directory without model.bin is not a model');
    assert.equal(registry.resolve(''), undefined);
  });

  it('never turns a name into a path outside the allowed places', () => {
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
      const resolved = registry.resolve(name);
      assert.equal(resolved, undefined, `${JSON.stringify(name)} resolved to ${JSON.stringify(resolved)}`);
    }
  });

  it("serves an operator's symlinked model directory, and no path beyond it", () => {
    const outside = mkdtempSync(path.join(os.tmpdir(), 'earshot-outside-'));
    writeFileSync(path.join(outside, 'model.bin'), '');
    symlinkSync(outside, path.join(modelsDir, 'linked'));
    // An operator's symlink inside the models directory is theirs to make and is served as a model.
    assert.equal(registry.resolve('linked')?.source.kind, 'directory');
    assert.equal(registry.resolve('linked/../../etc'), undefined);
  });
});
