// Model names cannot probe the server: a name that is not servable is refused with model_not_found
// before any worker starts, whatever exists on disk, and the models API answers every name exactly
// as the transcription route does.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bundledModelsDir } from '../../src/paths.ts';
import { modelsFixture } from '../support/fixtures.ts';
import { audioDir, JFK_TEXT, startServer, type RunningServer } from '../support/server.ts';
import { normalise } from '../support/text.ts';
import { assertErrorResponse } from './api-errors.ts';

/** A hub-cache entry (huggingface_hub's layout) holding a copy of the bundled tiny.en. */
async function cacheHubModel(hubCache: string, repo: string): Promise<void> {
  const entry = path.join(hubCache, `models--${repo.replace('/', '--')}`);
  const snapshot = path.join(entry, 'snapshots', '0123abcd');
  await mkdir(snapshot, { recursive: true });
  await mkdir(path.join(entry, 'refs'), { recursive: true });
  await writeFile(path.join(entry, 'refs', 'main'), '0123abcd');
  for (const file of ['model.bin', 'config.json', 'tokenizer.json', 'vocabulary.txt']) {
    await symlink(path.join(bundledModelsDir, 'tiny.en', file), path.join(snapshot, file));
  }
}

/** The process ids of a process's children (Linux). */
function childProcesses(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid …: comm may hold spaces, so read after its closing parenthesis.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) children.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return children;
}

describe('model names', () => {
  let server: RunningServer;
  let fixtureRoot: string;
  let jfk: Buffer;

  before(async () => {
    const fixture = await modelsFixture(['copy-a', 'acme/tiny-copy']);
    fixtureRoot = fixture.root;
    await mkdir(path.join(fixture.models, 'not-a-model'));
    await cacheHubModel(fixture.hubCache, 'acme/cached-tiny');
    // The repository of faster-whisper's `small`, cached (as tiny.en, to stay small and fast).
    await cacheHubModel(fixture.hubCache, 'Systran/faster-whisper-small');
    server = await startServer({
      EARSHOT_MODELS_DIR: fixture.models,
      EARSHOT_HUB_DOWNLOAD: 'false',
      EARSHOT_HUB_CACHE_DIR: fixture.hubCache,
      EARSHOT_WORKERS_PER_MODEL: '1',
      EARSHOT_MAX_LOADED_MODELS: '3',
      // The flood below comes from one address: let all of it through the per-client upload cap.
      EARSHOT_MAX_CONCURRENT_UPLOADS_PER_CLIENT: '100',
    });
    jfk = await readFile(path.join(audioDir, 'jfk.flac'));
  });

  after(async () => {
    assert.equal(await server.stop(), 0);
    await rm(fixtureRoot, { recursive: true, force: true });
  });

  const transcribe = (model: string) => {
    const form = new FormData();
    form.append('file', new Blob([jfk]), 'jfk.flac');
    form.append('model', model);
    return fetch(`${server.baseURL}/audio/transcriptions`, { method: 'POST', body: form });
  };
  const loadedModels = async () =>
    ((await (await fetch(`${server.url}/api/ps`)).json()) as { data: { model: string }[] }).data.map(
      (pool) => pool.model,
    );

  it('refuses a flood of unknown names with model_not_found, starting no worker, and still serves', async () => {
    const pid = server.process.pid ?? assert.fail('no server pid');
    const workersBefore = childProcesses(pid).sort();
    const logsBefore = server.logs.length;
    const names = [
      'node_modules/openai',
      'node_modules/fastify',
      'nosuch/model',
      'Systran/faster-whisper-large-v3',
      'large-v3',
      'not-a-model',
      'src/engine',
      ...Array.from({ length: 40 }, (_, i) => `made-up-${i}/model-${i}`),
    ];
    const responses = await Promise.all(names.map(async (name) => ({ name, response: await transcribe(name) })));
    for (const { name, response } of responses) {
      await assertErrorResponse(response, {
        status: 404,
        type: 'invalid_request_error',
        param: null,
        code: 'model_not_found',
        message: `The model \`${name}\` does not exist or you do not have access to it.`,
      });
    }
    assert.deepEqual(await loadedModels(), ['base']);
    assert.deepEqual(childProcesses(pid).sort(), workersBefore, 'no worker process started or replaced');
    assert.ok(!server.logs.slice(logsBefore).some((entry) => entry.msg === 'loading model'));

    const real = await transcribe('whisper-1');
    assert.equal(real.status, 200);
    assert.equal(((await real.json()) as { text: string }).text, JFK_TEXT);
  });

  it('answers GET /v1/models/{id} as the transcription route answers, for every kind of name', async () => {
    const served = [
      'whisper-1',
      'gpt-4o-transcribe',
      'gpt-4o-mini-transcribe',
      'base',
      'tiny.en',
      'Systran/faster-whisper-base',
      'Systran/faster-whisper-tiny.en',
      'copy-a',
      'acme/tiny-copy',
      'acme/cached-tiny',
      'small',
      'Systran/faster-whisper-small',
    ];
    const refused = [
      'nosuch/model',
      'node_modules/openai',
      'large-v3',
      'Systran/faster-whisper-large-v3',
      'tiny',
      'no-such-model',
      'not-a-model',
      'acme',
      '../models/copy-a',
    ];
    const listed = ((await (await fetch(`${server.baseURL}/models`)).json()) as { data: { id: string }[] }).data.map(
      (model) => model.id,
    );
    for (const name of [...served, ...refused]) {
      const model = await fetch(`${server.baseURL}/models/${encodeURIComponent(name)}`);
      const transcription = await transcribe(name);
      const expected = served.includes(name) ? 200 : 404;
      assert.deepEqual(
        { name, models: model.status, transcription: transcription.status },
        { name, models: expected, transcription: expected },
      );
      if (expected === 200) {
        assert.equal(((await model.json()) as { id: string }).id, name);
        assert.equal(normalise(((await transcription.json()) as { text: string }).text), normalise(JFK_TEXT));
      } else {
        assert.equal(((await model.json()) as { error: { code: string } }).error.code, 'model_not_found');
        assert.equal(((await transcription.json()) as { error: { code: string } }).error.code, 'model_not_found');
        assert.ok(!listed.includes(name), `${name} is not listed`);
      }
    }
    for (const id of listed)
      assert.equal((await fetch(`${server.baseURL}/models/${encodeURIComponent(id)}`)).status, 200, id);
  });
});
