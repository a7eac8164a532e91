// What slow or greedy uploads may hold, against the real server: form data in memory (field
// sizes, uploads at once), temporary disk space (in total and per client) and time (the request
// deadline, on time, with the temporary file removed as the answer goes out). Overload is refused
// with OpenAI-shaped errors, never fatal: a normal request is served afterwards.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { audioDir, startServer, type RunningServer } from '../support/server.ts';

const BOUNDARY = 'earshot-upload-limits';
const MiB = 1024 * 1024;

interface Answer {
  status: number;
  headers: Map<string, string>;
  body: string;
  /** When the whole answer had arrived (performance.now()). */
  at: number;
}

/**
 * A raw HTTP client that sends a head, then whatever `send` trickles, and reads the answer. It
 * keeps its side of the socket open until told to close, as a slow client would.
 */
class SlowClient {
  readonly socket: net.Socket;
  readonly answer: Promise<Answer>;
  readonly closedByServer: Promise<number>;
  readonly startedAt = performance.now();
  private timer: NodeJS.Timeout | undefined;
  private received = Buffer.alloc(0);

  constructor(server: RunningServer, head: string) {
    const { hostname, port } = new URL(server.url);
    this.socket = net.connect({ host: hostname, port: Number(port), allowHalfOpen: true });
    this.socket.on('error', () => undefined); // writes after the server closed: expected
    this.socket.write(head);
    this.answer = new Promise((resolve) => {
      this.socket.on('data', (chunk: Buffer) => {
        this.received = Buffer.concat([this.received, chunk]);
        const answer = this.parse();
        if (answer) resolve(answer);
      });
    });
    this.closedByServer = new Promise((resolve) => this.socket.on('end', () => resolve(performance.now())));
    this.closedByServer.catch(() => undefined);
  }

  private parse(): Answer | undefined {
    const text = this.received.toString('latin1');
    const end = text.indexOf('\r\n\r\n');
    if (end < 0) return undefined;
    const [statusLine = '', ...lines] = text.slice(0, end).split('\r\n');
    const headers = new Map(
      lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
    );
    const body = text.slice(end + 4);
    if (body.length < Number(headers.get('content-length') ?? 0)) return undefined;
    return { status: Number(statusLine.split(' ')[1]), headers, body, at: performance.now() };
  }

  /** Writes `next()` every `everyMs` until the server answers or closes. */
  trickle(everyMs: number, next: () => string | Buffer | undefined): void {
    this.timer = setInterval(() => {
      if (this.socket.writableLength > 2 * MiB) return; // the server is not reading: wait, as a client would
      const chunk = next();
      if (chunk === undefined || this.socket.destroyed || !this.socket.writable) return this.stop();
      this.socket.write(chunk);
    }, everyMs);
    void this.answer.then(() => this.stop());
  }

  stop(): void {
    clearInterval(this.timer);
  }

  close(): void {
    this.stop();
    this.socket.destroy();
  }
}

function head(contentLength: number, extra = ''): string {
  return (
    `POST /v1/audio/transcriptions HTTP/1.1\r\nHost: earshot\r\n` +
    `Content-Type: multipart/form-data; boundary=${BOUNDARY}\r\nContent-Length: ${contentLength}\r\n${extra}\r\n`
  );
}

const fieldHead = (name: string) => `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n`;
const fileHead = `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\nContent-Type: application/octet-stream\r\n\r\n`;

function errorOf(answer: Answer): { message: string; type: string; param: string | null; code: string | null } {
  assert.match(answer.headers.get('content-type') ?? '', /^application\/json/);
  assert.ok(answer.headers.get('x-request-id'), 'x-request-id');
  const wire = JSON.parse(answer.body) as {
    error: { message: string; type: string; param: string | null; code: string | null };
  };
  assert.deepEqual(Object.keys(wire.error).sort(), ['code', 'message', 'param', 'type']);
  return wire.error;
}

async function transcribeJfk(server: RunningServer, apiKey?: string): Promise<Response> {
  const form = new FormData();
  form.append('file', new Blob([readFileSync(path.join(audioDir, 'jfk.flac'))]), 'jfk.flac');
  form.append('model', 'whisper-1');
  return fetch(`${server.baseURL}/audio/transcriptions`, {
    method: 'POST',
    body: form,
    ...(apiKey && { headers: { authorization: `Bearer ${apiKey}` } }),
  });
}

function rssBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB$/m);
  return Number(line?.[1] ?? 0) * 1024;
}

function uploadFiles(tmpDir: string): string[] {
  const [directory] = readdirSync(tmpDir);
  assert.ok(directory?.startsWith('earshot-uploads-'), String(directory));
  return readdirSync(path.join(tmpDir, directory ?? ''));
}

describe('many slow uploads trickling big form fields (EARSHOT_MAX_CONCURRENT_UPLOADS=20)', () => {
  let server: RunningServer;
  let tmpDir: string;

  before(async () => {
    tmpDir = mkdtempSync(path.join(os.tmpdir(), 'earshot-upload-limits-'));
    server = await startServer({
      EARSHOT_DEFAULT_MODEL: 'tiny.en',
      EARSHOT_TMP_DIR: tmpDir,
      EARSHOT_MAX_CONCURRENT_UPLOADS: '20',
      // All the clients here share one address: the cap under test is the server-wide one.
      EARSHOT_MAX_CONCURRENT_UPLOADS_PER_CLIENT: '1000',
      // Only the limits on form data are under test here.
      EARSHOT_MAX_UPLOAD_DISK_BYTES: '1000GiB',
      EARSHOT_MAX_UPLOAD_DISK_BYTES_PER_CLIENT: '1000GiB',
    });
  });

  after(async () => {
    try {
      assert.equal(await server.stop(), 0);
      assert.deepEqual(readdirSync(tmpDir), [], 'the upload directory is removed');
    } finally {
      rmSync(tmpDir, { recursive: true, force: true });
    }
  });

  it('refuses uploads past the cap with 429, cuts each at 256 KiB of fields with 413, and stays up', async () => {
    const pid = server.process.pid ?? 0;
    const rssBefore = rssBytes(pid);
    // As in the report: 99 fields of 1 MiB announced, sent slowly (4 KiB every 50 ms) as fields of
    // 60 KiB, each under the per-field limit, so that only the per-form total stops them.
    const clients = Array.from({ length: 40 }, () => {
      const client = new SlowClient(server, head(99 * (MiB + 100)));
      let field = 0;
      let sentInField = 0;
      client.trickle(50, () => {
        if (sentInField === 0) {
          sentInField = 1;
          return fieldHead(`field_${field}`);
        }
        if (sentInField > 60 * 1024) {
          sentInField = 0;
          field++;
          return '\r\n';
        }
        sentInField += 4096;
        return 'x'.repeat(4096);
      });
      return client;
    });
    try {
      // Those past the cap are refused at once; the others are still trickling.
      const refused = await Promise.all(clients.slice(20).map((client) => client.answer));
      for (const answer of refused) {
        assert.equal(answer.status, 429);
        assert.ok(Number(answer.headers.get('retry-after')) >= 1);
        assert.deepEqual(
          { ...errorOf(answer), message: undefined },
          { message: undefined, type: 'server_error', param: null, code: 'too_many_uploads' },
        );
      }
      // While the slots are held, a normal request is refused the same way, and nothing else breaks.
      const during = await transcribeJfk(server);
      assert.equal(during.status, 429);
      assert.equal(((await during.json()) as { error: { code: string } }).error.code, 'too_many_uploads');
      assert.equal((await fetch(`${server.url}/health`)).status, 200);

      const cut = await Promise.all(clients.slice(0, 20).map((client) => client.answer));
      for (const answer of cut) {
        assert.equal(answer.status, 413, answer.body);
        const error = errorOf(answer);
        assert.equal(error.code, 'form_too_large');
        assert.match(error.param ?? '', /^field_4$/, 'the field that crossed 256 KiB (the fifth of 60 KiB)');
        assert.equal(answer.headers.get('connection'), 'close');
      }
    } finally {
      for (const client of clients) client.close();
    }

    const after = await transcribeJfk(server);
    assert.equal(after.status, 200, await after.clone().text());
    assert.match(((await after.json()) as { text: string }).text, /fellow Americans/);
    assert.equal(server.process.exitCode, null, 'the gateway is alive');
    const grown = rssBytes(pid) - rssBefore;
    assert.ok(grown < 150 * MiB, `the gateway grew by ${Math.round(grown / MiB)} MiB`);
    assert.deepEqual(uploadFiles(tmpDir), []);
  });

  it('cuts 1 MiB fields sent at full speed at 64 KiB, naming the field', async () => {
    // Fewer than the cap, so that every one is read; a field ends (and is refused) at the next boundary.
    const clients = Array.from({ length: 15 }, () => {
      const client = new SlowClient(server, head(99 * (MiB + 100)));
      let field = 0;
      client.trickle(50, () => (field < 99 ? `${fieldHead(`prompt_${field++}`)}${'p'.repeat(MiB)}\r\n` : undefined));
      return client;
    });
    try {
      for (const answer of await Promise.all(clients.map((client) => client.answer))) {
        assert.equal(answer.status, 413, answer.body);
        assert.deepEqual(errorOf(answer), {
          message: "The field 'prompt_0' is over 65536 bytes; text fields are at most 65536 bytes each.",
          type: 'invalid_request_error',
          param: 'prompt_0',
          code: 'form_too_large',
        });
      }
    } finally {
      for (const client of clients) client.close();
    }
    assert.equal((await transcribeJfk(server)).status, 200);
  });
});

describe('uploads holding disk and time (EARSHOT_REQUEST_TIMEOUT_MS=4000, 30 MiB of upload space, 20 MiB per key)', () => {
  const TIMEOUT_MS = 4000;
  let server: RunningServer;
  let tmpDir: string;

  before(async () => {
    tmpDir = mkdtempSync(path.join(os.tmpdir(), 'earshot-upload-limits-'));
    server = await startServer({
      EARSHOT_DEFAULT_MODEL: 'tiny.en',
      EARSHOT_TMP_DIR: tmpDir,
      EARSHOT_REQUEST_TIMEOUT_MS: String(TIMEOUT_MS),
      EARSHOT_MAX_UPLOAD_DISK_BYTES: '30MiB',
      EARSHOT_MAX_UPLOAD_DISK_BYTES_PER_CLIENT: '20MiB',
      EARSHOT_API_KEYS: 'key-a,key-b,key-c',
    });
  });

  after(async () => {
    try {
      assert.equal(await server.stop(), 0);
      assert.deepEqual(readdirSync(tmpDir), [], 'the upload directory is removed');
    } finally {
      rmSync(tmpDir, { recursive: true, force: true });
    }
  });

  /** An upload of `size` announced bytes whose file part starts, then trickles a byte every 500 ms. */
  function tricklingUpload(key: string, size: number): SlowClient {
    const client = new SlowClient(server, head(size, `Authorization: Bearer ${key}\r\n`));
    client.socket.write(`${fieldHead('model')}whisper-1\r\n${fileHead}${'a'.repeat(64 * 1024)}`);
    client.trickle(500, () => 'a');
    return client;
  }

  it('answers a trickling upload 408 at its deadline, with its file removed while the client still holds on', async () => {
    const client = tricklingUpload('key-a', 10 * MiB);
    try {
      const deadline = performance.now() + 3000;
      while (uploadFiles(tmpDir).length === 0 && performance.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      assert.equal(uploadFiles(tmpDir).length, 1, 'the file part reached the upload directory');

      const answer = await client.answer;
      const elapsed = answer.at - client.startedAt;
      assert.deepEqual(uploadFiles(tmpDir), [], 'the file is gone when the answer arrives');
      assert.ok(
        elapsed >= TIMEOUT_MS - 100 && elapsed <= TIMEOUT_MS + 1000,
        `answered after ${Math.round(elapsed)} ms`,
      );
      assert.equal(answer.status, 408);
      assert.deepEqual(errorOf(answer), {
        message: `The request was not received whole within ${TIMEOUT_MS} ms.`,
        type: 'invalid_request_error',
        param: null,
        code: 'request_timeout',
      });
      assert.equal(answer.headers.get('connection'), 'close');
      // The client never closed: the server does, at once.
      const closedAt = await Promise.race([
        client.closedByServer,
        new Promise<number>((r) => setTimeout(() => r(-1), 2000)),
      ]);
      assert.ok(closedAt > 0 && closedAt - answer.at < 1000, 'the server closes the connection');
    } finally {
      client.close();
    }
  });

  it('answers headers that trickle in 408 at the deadline too, with an x-request-id', async () => {
    const client = new SlowClient(server, 'POST /v1/audio/transcriptions HTTP/1.1\r\nHost: earshot\r\n');
    let line = 0;
    client.trickle(500, () => `X-Slow-${line++}: 1\r\n`);
    try {
      const answer = await client.answer;
      const elapsed = answer.at - client.startedAt;
      assert.ok(
        elapsed >= TIMEOUT_MS - 100 && elapsed <= TIMEOUT_MS + 1100,
        `answered after ${Math.round(elapsed)} ms`,
      );
      assert.equal(answer.status, 408);
      assert.equal(errorOf(answer).code, 'request_timeout');
    } finally {
      client.close();
    }
  });

  it('refuses uploads over the disk budget: 429 for a client over its share, 503 for all, before reading them', async () => {
    const first = tricklingUpload('key-a', 15 * MiB);
    const second = tricklingUpload('key-b', 15 * MiB);
    try {
      await new Promise((r) => setTimeout(r, 300));
      const sameClient = new SlowClient(server, head(10 * MiB, 'Authorization: Bearer key-a\r\n'));
      const overShare = await sameClient.answer;
      sameClient.close();
      assert.equal(overShare.status, 429);
      assert.ok(Number(overShare.headers.get('retry-after')) >= 1);
      assert.deepEqual(
        { ...errorOf(overShare), message: undefined },
        { message: undefined, type: 'requests', param: null, code: 'client_upload_limit' },
      );

      const third = await transcribeJfk(server, 'key-c');
      assert.equal(third.status, 503);
      assert.ok(Number(third.headers.get('retry-after')) >= 1);
      const error = ((await third.json()) as { error: Record<string, unknown> }).error;
      assert.deepEqual(
        { ...error, message: undefined },
        { message: undefined, type: 'server_error', param: null, code: 'upload_space_exhausted' },
      );
    } finally {
      first.close();
      second.close();
    }
    // The holders hung up: their space is free again, and their files are gone.
    const deadline = performance.now() + 3000;
    while (uploadFiles(tmpDir).length > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(uploadFiles(tmpDir), []);
    const served = await transcribeJfk(server, 'key-c');
    assert.equal(served.status, 200, await served.clone().text());
  });
});
