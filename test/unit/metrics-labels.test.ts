// Nothing a client sends becomes a metrics label value: made-up paths, model ids, methods and
// request ids all count under a fixed set of series, so no client can grow /metrics without bound.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Metrics } from '../../src/metrics.ts';
import { stubApp } from '../support/stub-app.ts';

describe('metrics labels', () => {
  it('stay a fixed set whatever paths, model ids and methods clients make up', async () => {
    const metrics = new Metrics();
    const { app, dispose } = await stubApp({}, { metrics, apiKeys: ['k'] });
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
    await dispose();
  });
});
