// One client address may hold at most EARSHOT_MAX_CONNECTIONS_PER_ADDRESS connections open: each
// holds a file descriptor (an idle one for 60 s), and a client that took them all left the server
// unable to accept any other connection.
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { stubApp } from '../support/stub-app.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Connects and sends `request` (if any); resolves with the socket and what it has received so far. */
async function connect(port: number, request?: string) {
  const socket = net.connect(port, '127.0.0.1');
  let received = '';
  let closed = false;
  socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
  socket.on('error', () => undefined);
  socket.on('close', () => (closed = true));
  await new Promise((resolve) => socket.once('connect', resolve));
  if (request) socket.write(request);
  return { socket, received: () => received, closed: () => closed };
}

describe('connections per client address', () => {
  it('answers connections past the cap 429 and closes them, never serving their requests; a freed slot serves again', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as never);
        done();
      },
    });
    const { app, dispose } = await stubApp(
      { EARSHOT_MAX_CONNECTIONS_PER_ADDRESS: '5' },
      { logger: pino({ level: 'info' }, sink) },
    );
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as net.AddressInfo;
    const idle = [];
    try {
      for (let i = 0; i < 5; i++) idle.push(await connect(port));
      const refused = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          connect(port, `GET /v1/models HTTP/1.1\r\nHost: x\r\nx-request-id: refused-${i}\r\n\r\n`),
        ),
      );
      await sleep(500);
      for (const connection of refused) {
        assert.match(connection.received(), /^HTTP\/1.1 429 /);
        assert.match(connection.received(), /"code":"too_many_connections"/);
        assert.ok(connection.closed(), 'the connection is closed');
      }
      assert.deepEqual(
        lines.filter((line) => String(line.reqId).startsWith('refused-')),
        [],
        'no request on a refused connection is served',
      );
      for (const connection of idle) assert.equal(connection.received(), '', 'the connections within the cap stay');

      idle.pop()?.socket.destroy();
      await sleep(100);
      const served = await connect(port, 'GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      await sleep(500);
      assert.match(served.received(), /^HTTP\/1.1 200 /);
    } finally {
      for (const connection of idle) connection.socket.destroy();
      await dispose();
    }
  });
});

describe('an HTTP/1.1 request without a Host header', () => {
  it('gets a 400 in OpenAI shape with an x-request-id, and the connection closed', async () => {
    const { app, dispose } = await stubApp({}, { apiKeys: ['k'] });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as net.AddressInfo;
    try {
      const connection = await connect(port, 'GET /v1/models HTTP/1.1\r\nAuthorization: Bearer k\r\n\r\n');
      await sleep(500);
      const [head = '', body = ''] = connection.received().split('\r\n\r\n');
      assert.match(head, /^HTTP\/1.1 400 /);
      assert.match(head, /\r\nx-request-id: [0-9a-f-]{36}\r\n/);
      assert.match(head, /\r\nconnection: close\r\n/i);
      assert.deepEqual(JSON.parse(body), {
        error: {
          message: 'The request is not valid HTTP (an HTTP/1.1 request needs a Host header).',
          type: 'invalid_request_error',
          param: null,
          code: null,
        },
      });
      assert.ok(connection.closed());
      // HTTP/1.0 needs none.
      const old = await connect(port, 'GET /v1/models HTTP/1.0\r\nAuthorization: Bearer k\r\n\r\n');
      await sleep(300);
      assert.match(old.received(), /^HTTP\/1.1 200 /);
    } finally {
      await dispose();
    }
  });
});

describe('OPTIONS with CORS on', () => {
  it('answers an OPTIONS that is not a preflight without a text/plain error, and allows no origin by it', async () => {
    const { app, dispose } = await stubApp({ EARSHOT_CORS_ORIGINS: 'https://app.example' }, { apiKeys: ['k'] });
    try {
      for (const headers of [{}, { origin: 'https://evil.example' }, { 'access-control-request-method': 'POST' }]) {
        const response = await app.inject({ method: 'OPTIONS', url: '/v1/audio/transcriptions', headers });
        assert.notEqual(response.headers['content-type'], 'text/plain', response.body);
        assert.ok(response.statusCode < 400, `${response.statusCode} ${response.body}`);
        assert.equal(response.headers['access-control-allow-origin'], undefined);
      }
      const preflight = await app.inject({
        method: 'OPTIONS',
        url: '/v1/audio/transcriptions',
        headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' },
      });
      assert.equal(preflight.statusCode, 204);
      assert.equal(preflight.headers['access-control-allow-origin'], 'https://app.example');
    } finally {
      await dispose();
    }
  });
});
