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

describe('event loop lag', () => {
  it('is still caught with the coarser sampling: a loop blocked for 300 ms shows in the lag gauges', async () => {
    const metrics = new Metrics();
    await new Promise((resolve) => setTimeout(resolve, 250));
    const blockedUntil = Date.now() + 300;
    while (Date.now() < blockedUntil) {
      // the event loop is blocked
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
    const text = await metrics.registry.metrics();
    const max = /^earshot_gateway_nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(text)?.[1];
    assert.ok(max !== undefined, 'the lag gauge is exposed');
    assert.ok(Number(max) >= 0.15, `a 300 ms block shows as lag (max ${max} s)`);
  });
});
