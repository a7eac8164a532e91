// Nothing a client sends becomes a metrics label value: made-up paths, model ids, methods and
// request ids all count under a fixed set of series, so no client can grow /metrics without bound.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { ModelRegistry, readBundledModels, type Engine } from '../../src/engine/index.ts';
import { Metrics } from '../../src/metrics.ts';
import { buildApp } from '../../src/server/app.ts';

describe('metrics labels', () => {
  it('stay a fixed set whatever paths, model ids and methods clients make up', async () => {
    const tmpDir = mkdtempSync(path.join(os.tmpdir(), 'earshot-metrics-'));
    const config = loadConfig([], { EARSHOT_TMP_DIR: tmpDir, EARSHOT_LOG_LEVEL: 'silent' });
    const registry = new ModelRegistry({
      defaultModel: 'base',
      aliases: new Map(),
      modelsDir: mkdtempSync(path.join(tmpDir, 'models-')),
      bundled: readBundledModels(),
    });
    const engine = { modelStatus: () => undefined, status: () => [] } as unknown as Engine;
    const metrics = new Metrics();
    const app = await buildApp({ config, engine, registry, metrics, apiKeys: ['k'] });
    const series = async () =>
      (await metrics.registry.metrics()).split('\n').filter((line) => line.startsWith('earshot_http_')).length;
    const round = async (tag: string) => {
      for (let i = 0; i < 20; i++) {
        const headers = { authorization: i % 2 ? 'Bearer k' : 'Bearer nope', 'x-request-id': `${tag}-${i}` };
        await app.inject({ url: `/${tag}/made-up-${i}`, headers });
        await app.inject({ url: `/v1/models/${tag}-model-${i}`, headers: { authorization: 'Bearer k' } });
        await app.inject({ url: `/api/ps/${tag}%2F${i}`, method: 'DELETE', headers: { authorization: 'Bearer k' } });
        await app.inject({ url: `/v1/models`, method: i % 2 ? 'PATCH' : 'PUT', headers });
      }
    };
    await round('first');
    const after = await series();
    await round('second');
    assert.equal(await series(), after, 'a second round of made-up names adds no series');
    await app.close();
    rmSync(tmpDir, { recursive: true, force: true });
  });
});
