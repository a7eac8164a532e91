// API keys. Key guessing is limited per client address: the 401s come before the rate limiter (which counts
// per key), so without this limit wrong keys could be tried at any speed.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { AuthFailureLimiter, clientAddress, loadApiKeys } from '../../src/server/plugins/auth.ts';
import { stubApp } from '../support/stub-app.ts';

const disposals: (() => Promise<void>)[] = [];
after(() => Promise.all(disposals.map((dispose) => dispose())));

async function app(env: Record<string, string> = {}) {
  const stub = await stubApp(env, { apiKeys: ['right-key-0123456789'] });
  disposals.push(stub.dispose);
  return stub.app;
}

describe('failed API key checks', () => {
  it('refuses an address after 10 failures a minute by default, right key or not; others are not affected', async () => {
    const server = await app();
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      // Wrong keys and missing ones alike.
      const headers = i % 2 === 0 ? { authorization: `Bearer guess-${i}` } : {};
      statuses.push((await server.inject({ url: '/v1/models', headers })).statusCode);
    }
    assert.deepEqual(statuses, [...Array<number>(10).fill(401), 429, 429]);
    const refused = await server.inject({
      url: '/v1/models',
      headers: { authorization: 'Bearer right-key-0123456789' },
    });
    assert.equal(refused.statusCode, 429, 'a right key does not tell the guesser it found one');
    assert.equal(refused.json<{ error: { code: string } }>().error.code, 'too_many_auth_failures');
    const retryAfter = Number(refused.headers['retry-after']);
    assert.ok(retryAfter > 0 && retryAfter <= 60, `retry-after ${retryAfter}`);

    const other = await server.inject({
      url: '/v1/models',
      remoteAddress: '10.0.0.2',
      headers: { authorization: 'Bearer right-key-0123456789' },
    });
    assert.equal(other.statusCode, 200, 'another address keeps its allowance');
    assert.equal((await server.inject({ url: '/health' })).statusCode, 503, 'public paths answer as before');
    await server.close();
  });

  it('can be set or turned off', async () => {
    const strict = await app({ EARSHOT_AUTH_FAILURES_PER_MINUTE: '2' });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await strict.inject({ url: '/api/ps' })).statusCode);
    assert.deepEqual(statuses, [401, 401, 429]);
    await strict.close();

    const off = await app({ EARSHOT_AUTH_FAILURES_PER_MINUTE: '0' });
    for (let i = 0; i < 20; i++) assert.equal((await off.inject({ url: '/v1/models' })).statusCode, 401);
    await off.close();
  });

  it('lets the address try again once its minute is over', () => {
    let now = 1_000_000;
    const limiter = new AuthFailureLimiter(2, () => now);
    limiter.recordFailure('a');
    assert.equal(limiter.retryAfter('a'), undefined);
    limiter.recordFailure('a');
    assert.equal(limiter.retryAfter('a'), 60);
    now += 59_500;
    assert.equal(limiter.retryAfter('a'), 1);
    now += 500;
    assert.equal(limiter.retryAfter('a'), undefined);
    limiter.recordFailure('a');
    assert.equal(limiter.retryAfter('a'), undefined, 'a new window starts from one failure');
  });
});

describe('configured API keys', () => {
  it('refuses at start a key that is not printable ASCII (clients sending UTF-8 could never match it), without showing it', () => {
    assert.throws(
      () => loadApiKeys(['ascii-key', 'clé-secrète'], undefined),
      (error: Error) => /key 2 of 2 .* not printable ASCII/.test(error.message) && !error.message.includes('secr'),
    );
    assert.throws(() => loadApiKeys(['tab\tkey'], undefined), /not printable ASCII/);
    assert.deepEqual(loadApiKeys(['sk-1', 'with inner space'], undefined), ['sk-1', 'with inner space']);
  });

  it('refuses at start a key that looks like an ephemeral key (ek_…), which earshot mints itself', () => {
    assert.throws(() => loadApiKeys(['sk-1', 'ek_mine'], undefined), /key 2 of 2 .* starts with ek_/);
  });
});

describe('admin keys (EARSHOT_ADMIN_API_KEYS)', () => {
  it('are the only keys the admin API takes, however its path is spelled; they serve everything else too', async () => {
    const server = await app({ EARSHOT_ADMIN_API_KEYS: 'admin-key-0123456789' });
    const as = (key: string, url: string, method: 'GET' | 'DELETE' = 'GET') =>
      server.inject({ url, method, headers: { authorization: `Bearer ${key}` } });
    for (const [url, method] of [
      ['/api/ps', 'GET'],
      ['/api/p%73', 'GET'],
      ['/api/ps/base', 'DELETE'],
      ['/api/ps?x=1', 'GET'],
    ] as const) {
      const refused = await as('right-key-0123456789', url, method);
      assert.equal(refused.statusCode, 403, `${method} ${url}: ${refused.body}`);
      assert.equal(refused.json<{ error: { code: string } }>().error.code, 'admin_key_required');
    }
    assert.equal((await as('admin-key-0123456789', '/api/ps')).statusCode, 200);
    assert.equal((await as('admin-key-0123456789', '/v1/models')).statusCode, 200);
    assert.equal((await as('right-key-0123456789', '/v1/models')).statusCode, 200);
    assert.equal((await as('wrong', '/api/ps')).statusCode, 401);
    await server.close();
  });

  it('leave the admin API to every API key when not set', async () => {
    const server = await app();
    const response = await server.inject({ url: '/api/ps', headers: { authorization: 'Bearer right-key-0123456789' } });
    assert.equal(response.statusCode, 200);
    await server.close();
  });
});

describe('client addresses in per-address limits', () => {
  it('counts an IPv6 client by its /64 and an IPv4-mapped one as IPv4', () => {
    assert.equal(clientAddress('203.0.113.7'), '203.0.113.7');
    assert.equal(clientAddress('::ffff:203.0.113.7'), '203.0.113.7');
    assert.equal(clientAddress('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
    assert.equal(clientAddress('2001:0db8:0001:0002:ffff:1:2:3'), '2001:db8:1:2::/64');
    assert.equal(clientAddress('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(clientAddress('2001:db8:0:0:1::'), '2001:db8:0:0::/64');
    assert.equal(clientAddress('fe80::1%eth0'), 'fe80:0:0:0::/64');
    assert.equal(clientAddress('::1'), '0:0:0:0::/64');
    assert.equal(clientAddress('64:ff9b::198.51.100.1'), '64:ff9b:0:0::/64');
    assert.equal(clientAddress(undefined), 'unknown');
  });

  it('refuses key guessing from addresses rotated within one IPv6 /64', async () => {
    const server = await app({ EARSHOT_AUTH_FAILURES_PER_MINUTE: '3' });
    const statuses: number[] = [];
    for (let i = 1; i <= 5; i++) {
      const response = await server.inject({
        url: '/v1/models',
        remoteAddress: `2001:db8:1:2::${i.toString(16)}`,
        headers: { authorization: `Bearer guess-${i}` },
      });
      statuses.push(response.statusCode);
    }
    assert.deepEqual(statuses, [401, 401, 401, 429, 429]);
    const otherNetwork = await server.inject({
      url: '/v1/models',
      remoteAddress: '2001:db8:1:3::1',
      headers: { authorization: 'Bearer right-key-0123456789' },
    });
    assert.equal(otherNetwork.statusCode, 200);
    await server.close();
  });
});
