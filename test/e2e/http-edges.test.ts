// Requests at the edges of HTTP and of Fastify: every answer is OpenAI's error shape with an
// x-request-id and one "request done" log line, and a streamed response carries the headers that
// plugins and hooks set (CORS), as any other response does.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { audioDir, startServer, waitForLog, type RunningServer } from '../support/server.ts';

const ORIGIN = 'https://app.example';

interface RawAnswer {
  status: number;
  headers: Map<string, string>;
  body: string;
}

/** Sends bytes as they are over a socket and reads the answer until the server closes. */
async function raw(server: RunningServer, request: string): Promise<RawAnswer> {
  const { hostname, port } = new URL(server.url);
  const socket = net.connect(Number(port), hostname);
  socket.write(request);
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  await new Promise((resolve, reject) => {
    socket.on('close', resolve);
    socket.on('error', reject);
    socket.setTimeout(10_000, () => reject(new Error('no answer within 10 s')));
  });
  const text = Buffer.concat(chunks).toString('latin1');
  const [head = '', ...rest] = text.split('\r\n\r\n');
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers = new Map(
    lines.map((line) => [
      line.slice(0, line.indexOf(':')).trim().toLowerCase(),
      line.slice(line.indexOf(':') + 1).trim(),
    ]),
  );
  return { status: Number(statusLine.split(' ')[1]), headers, body: rest.join('\r\n\r\n') };
}

describe('HTTP edges: bad URLs, odd framing, CORS on streams', () => {
  let server: RunningServer;

  before(async () => {
    server = await startServer({ EARSHOT_DEFAULT_MODEL: 'tiny.en', EARSHOT_CORS_ORIGINS: ORIGIN });
  });

  after(async () => {
    assert.equal(await server.stop(), 0);
  });

  /** The answer is an OpenAI error with an x-request-id, and the server logged its one line. */
  async function assertAnswered(
    status: number,
    headers: { get(name: string): string | null | undefined },
    body: string,
    expected: { status: number; code: string | null; message: RegExp },
  ): Promise<void> {
    assert.equal(status, expected.status, body);
    assert.match(headers.get('content-type') ?? '', /^application\/json/);
    const wire = JSON.parse(body) as { error: Record<string, unknown> };
    assert.deepEqual(Object.keys(wire), ['error']);
    assert.deepEqual(Object.keys(wire.error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(wire.error.code, expected.code);
    assert.match(String(wire.error.message), expected.message);
    const id = headers.get('x-request-id');
    assert.ok(id, 'x-request-id');
    const line = await waitForLog(server, 'request done', { match: (entry) => entry.reqId === id, timeoutMs: 5000 });
    assert.equal(line.status, expected.status);
    assert.equal(server.logs.filter((entry) => entry.reqId === id && entry.msg === 'request done').length, 1);
  }

  it('answers a bad percent-escape in the path in OpenAI shape, with x-request-id and its log line', async () => {
    for (const url of ['/%ZZ', '/v1/models/%ZZ', '/v1/models/%E0%A4%A', '/v1/audio/transcriptions%']) {
      const response = await fetch(`${server.url}${url}`);
      await assertAnswered(response.status, response.headers, await response.text(), {
        status: 400,
        code: null,
        message: /^The request is not valid HTTP \(the path is not a valid URL/,
      });
    }
  });

  it('answers a model id longer than the router allows as any unknown model', async () => {
    const id = 'x'.repeat(300);
    const response = await fetch(`${server.baseURL}/models/${id}`);
    await assertAnswered(response.status, response.headers, await response.text(), {
      status: 404,
      code: 'model_not_found',
      message: /does not exist/,
    });
  });

  it('answers broken framing (Transfer-Encoding oddities) with x-request-id and its log line', async () => {
    for (const head of [
      'Transfer-Encoding: chunked\r\nContent-Length: 5',
      'Transfer-Encoding: gzip, chunked, identity',
      'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked',
    ]) {
      const answer = await raw(
        server,
        `POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\n${head}\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
      );
      await assertAnswered(answer.status, answer.headers, answer.body, {
        status: 400,
        code: null,
        message: /^The request is not valid HTTP/,
      });
    }
  });

  it('answers a bad content-type and a HEAD or trailing slash on a POST route in OpenAI shape', async () => {
    for (const contentType of ['multipart/form-data; boundary=', ';;;', 'multipart/form-data; boundary="a']) {
      const response = await fetch(`${server.baseURL}/audio/transcriptions`, {
        method: 'POST',
        headers: { 'content-type': contentType },
        body: 'x',
      });
      const body = await response.text();
      assert.equal(response.status, 400, `${contentType}: ${body}`);
      await assertAnswered(response.status, response.headers, body, {
        status: 400,
        code: null,
        message: /multipart\/form-data/,
      });
    }
    for (const [method, url] of [
      ['HEAD', '/v1/audio/transcriptions'],
      ['GET', '/v1/audio/transcriptions'],
      ['POST', '/v1/audio/transcriptions/'],
    ] as const) {
      const response = await fetch(`${server.url}${url}`, { method });
      assert.equal(response.status, 404, `${method} ${url}`);
      assert.ok(response.headers.get('x-request-id'));
    }
  });

  it('sends the CORS headers on a streamed response, as on any other', async () => {
    const form = new FormData();
    form.append('file', new Blob([await readFile(path.join(audioDir, 'jfk.flac'))]), 'jfk.flac');
    form.append('model', 'whisper-1');
    form.append('stream', 'true');
    const response = await fetch(`${server.baseURL}/audio/transcriptions`, {
      method: 'POST',
      body: form,
      headers: { origin: ORIGIN, 'x-request-id': 'stream-cors-1' },
    });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.equal(response.headers.get('access-control-allow-origin'), ORIGIN);
    assert.match(response.headers.get('access-control-expose-headers') ?? '', /x-request-id/);
    assert.equal(response.headers.get('x-request-id'), 'stream-cors-1');
    assert.equal(response.headers.get('cache-control'), 'no-cache');
    const body = await response.text();
    assert.ok(body.endsWith('data: [DONE]\n\n'), body.slice(-100));
    const line = await waitForLog(server, 'request done', { match: (entry) => entry.reqId === 'stream-cors-1' });
    assert.equal(line.status, 200);
    assert.equal(line.model, 'tiny.en');
  });
});
