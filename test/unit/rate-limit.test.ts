// The per-key rate limit counts a key however its Authorization header spells it, and falls back
// to the client's address when no keys are configured, whatever bearer a client makes up.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { stubApp } from '../support/stub-app.ts';

const LIMIT = 3;

const disposals: (() => Promise<void>)[] = [];
after(() => Promise.all(disposals.map((dispose) => dispose())));

async function app(apiKeys: string[]) {
  const stub = await stubApp({ EARSHOT_RATE_LIMIT_PER_MINUTE: String(LIMIT) }, { apiKeys });
  disposals.push(stub.dispose);
  return stub.app;
}

describe('rate limit per key', () => {
  it('gives a key one allowance however the Authorization header spells it', async () => {
    const server = await app(['k1', 'k2']);
    const spellings = ['Bearer k2', 'Bearer  k2', 'bearer k2', 'BEARER k2', 'Bearer\tk2 ', ' Bearer k2'];
    const statuses: number[] = [];
    for (const authorization of spellings) {
      statuses.push((await server.inject({ url: '/v1/models', headers: { authorization } })).statusCode);
    }
    assert.deepEqual(statuses, [200, 200, 200, 429, 429, 429]);
    // Another key keeps its own allowance.
    assert.equal((await server.inject({ url: '/v1/models', headers: { authorization: 'Bearer k1' } })).statusCode, 200);
    await server.close();
  });

  it('limits per client address when no keys are configured, whatever bearer is sent', async () => {
    const server = await app([]);
    const statuses: number[] = [];
    for (let i = 0; i < LIMIT + 2; i++) {
      const response = await server.inject({ url: '/v1/models', headers: { authorization: `Bearer made-up-${i}` } });
      statuses.push(response.statusCode);
    }
    assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
    const elsewhere = await server.inject({ url: '/v1/models', remoteAddress: '10.0.0.2' });
    assert.equal(elsewhere.statusCode, 200, 'another address has its own allowance');
    await server.close();
  });
});
