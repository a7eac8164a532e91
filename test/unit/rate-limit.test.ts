// The per-key rate limit counts a key however its Authorization header spells it, and falls back
// to the client's address when no keys are configured, whatever bearer a client makes up.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { ModelRegistry, readBundledModels, type Engine } from '../../src/engine/index.ts';
import { buildApp } from '../../src/server/app.ts';

const LIMIT = 3;

async function app(apiKeys: string[]) {
  const config = loadConfig([], {
    EARSHOT_RATE_LIMIT_PER_MINUTE: String(LIMIT),
    EARSHOT_LOG_LEVEL: 'fatal',
    EARSHOT_TMP_DIR: mkdtempSync(path.join(os.tmpdir(), 'earshot-rate-')),
  });
  const registry = new ModelRegistry({
    defaultModel: 'base',
    aliases: new Map(),
    modelsDir: mkdtempSync(path.join(os.tmpdir(), 'earshot-models-')),
    bundled: readBundledModels(),
  });
  const engine = { modelStatus: () => undefined } as unknown as Engine;
  return buildApp({ config, engine, registry, apiKeys });
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
