// The upload limits of the gateway, on the Fastify app with a stub engine (no worker): text field
// sizes, uploads at once, temporary disk space in total and per client. Each refusal is OpenAI's
// error shape, and no temporary file is left behind.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../../src/config.ts';
import type { Engine, ModelRegistry, Transcript } from '../../src/engine/index.ts';
import { buildApp } from '../../src/server/app.ts';
import {
  MAX_FIELD_BYTES,
  MAX_FORM_FIELD_BYTES,
  MAX_SPEAKER_REFERENCE_BYTES,
  UploadBudget,
} from '../../src/server/uploads.ts';

const BOUNDARY = 'earshot-unit-boundary';

function multipart(fields: [string, string][], file: Buffer | undefined = Buffer.from('RIFF....WAVE')): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of fields) {
    parts.push(Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
  }
  if (file) {
    parts.push(
      Buffer.from(
        `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n` +
          'Content-Type: application/octet-stream\r\n\r\n',
      ),
      file,
      Buffer.from('\r\n'),
    );
  }
  parts.push(Buffer.from(`--${BOUNDARY}--\r\n`));
  return Buffer.concat(parts);
}

const TRANSCRIPT: Transcript = {
  task: 'transcribe',
  info: { language: 'en', language_probability: 1, duration: 1, duration_after_vad: 1 },
  segments: [],
};

describe('upload limits (app with a stub engine)', () => {
  let app: FastifyInstance;
  let tmpDir: string;

  before(async () => {
    tmpDir = await mkdtemp(path.join(os.tmpdir(), 'earshot-unit-uploads-'));
    const config = loadConfig([], { EARSHOT_TMP_DIR: tmpDir, EARSHOT_LOG_LEVEL: 'silent' });
    const engine = { transcribe: async () => TRANSCRIPT } as unknown as Engine;
    const registry = {
      resolve: (name: string) => ({ id: name, source: { kind: 'bundled' } }),
    } as unknown as ModelRegistry;
    app = await buildApp({ config, engine, registry });
  });

  after(async () => {
    await app.close();
    await rm(tmpDir, { recursive: true, force: true });
  });

  const post = (body: Buffer) =>
    app.inject({
      method: 'POST',
      url: '/v1/audio/transcriptions',
      headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` },
      payload: body,
    });

  async function uploadsLeft(): Promise<string[]> {
    const [directory] = await readdir(tmpDir);
    assert.ok(directory?.startsWith('earshot-uploads-'));
    return readdir(path.join(tmpDir, directory ?? ''));
  }

  it('serves a form whose fields are within the limits', async () => {
    const response = await post(
      multipart([
        ['model', 'whisper-1'],
        ['prompt', 'p'.repeat(MAX_FIELD_BYTES)],
        ['hotwords', 'h'.repeat(1000)],
      ]),
    );
    assert.equal(response.statusCode, 200, response.body);
    assert.deepEqual(await uploadsLeft(), []);
  });

  it('refuses a field over 64 KiB with 413 form_too_large naming the field', async () => {
    const response = await post(
      multipart([
        ['model', 'whisper-1'],
        ['prompt', 'p'.repeat(MAX_FIELD_BYTES + 1)],
      ]),
    );
    assert.equal(response.statusCode, 413);
    assert.deepEqual(response.json(), {
      error: {
        message: `The field 'prompt' is over ${MAX_FIELD_BYTES} bytes; text fields are at most ${MAX_FIELD_BYTES} bytes each.`,
        type: 'invalid_request_error',
        param: 'prompt',
        code: 'form_too_large',
      },
    });
    assert.deepEqual(await uploadsLeft(), []);
  });

  it('refuses fields over 256 KiB together with 413 form_too_large naming the field that crossed it', async () => {
    const big = 'x'.repeat(60 * 1024);
    const fields: [string, string][] = [['model', 'whisper-1']];
    for (let i = 0; i < 10; i++) fields.push([`extra_${i}`, big]);
    const response = await post(multipart(fields));
    assert.equal(response.statusCode, 413);
    const crossing = `extra_${Math.floor(MAX_FORM_FIELD_BYTES / big.length)}`;
    assert.deepEqual(response.json(), {
      error: {
        message: `The form's text fields are over ${MAX_FORM_FIELD_BYTES} bytes together (at the field '${crossing}').`,
        type: 'invalid_request_error',
        param: crossing,
        code: 'form_too_large',
      },
    });
    assert.equal(response.headers.connection, 'close');
    assert.deepEqual(await uploadsLeft(), []);
  });

  it('reads a part sent as application/json as its JSON text, and never crashes on it', async () => {
    const body = Buffer.concat([
      Buffer.from(
        `--${BOUNDARY}\r\nContent-Disposition: form-data; name="vad_parameters"\r\nContent-Type: application/json\r\n\r\n` +
          '{"toString":1}\r\n',
      ),
      multipart([['model', 'whisper-1']]),
    ]);
    const response = await post(body);
    assert.equal(response.statusCode, 400, response.body);
    const { error } = response.json<{ error: { param: string; code: string } }>();
    assert.equal(error.param, 'vad_parameters');
    assert.equal(error.code, 'invalid_value');
  });
});

describe('the upload budget', () => {
  const limits = { maxConcurrent: 3, maxConcurrentPerClient: 3, maxDiskBytes: 250, maxDiskBytesPerClient: 150 };

  it('refuses uploads past the cap on uploads at once with 429 too_many_uploads and retry-after', () => {
    const budget = new UploadBudget(limits);
    const held = [budget.admit('a', 1), budget.admit('b', 1), budget.admit('c', 1)];
    assert.throws(
      () => budget.admit('d', 1),
      (error: unknown) =>
        error instanceof Error &&
        'kind' in error &&
        error.kind === 'too_many_uploads' &&
        (error as unknown as { status: number }).status === 429 &&
        (error as unknown as { retryAfterSeconds: number }).retryAfterSeconds > 0,
    );
    held[0]?.doneReading();
    const next = budget.admit('d', 1);
    for (const reservation of [...held, next]) reservation.release();
    assert.equal(budget.uploading, 0);
    assert.equal(budget.diskBytes, 0);
  });

  it('refuses a client over its disk share with 429 and everyone over the total with 503; an upload alone always fits', () => {
    const budget = new UploadBudget(limits);
    const first = budget.admit('a', 100);
    first.doneReading();
    assert.throws(() => budget.admit('a', 100), { kind: 'client_upload_limit', status: 429 });
    const second = budget.admit('b', 100);
    second.doneReading();
    assert.throws(() => budget.admit('c', 100), { kind: 'upload_space_exhausted', status: 503 });
    // The file turned out small: only its size stays reserved.
    first.resize(10);
    const third = budget.admit('a', 100);
    for (const reservation of [first, second, third]) reservation.release();
    first.release();
    assert.equal(budget.diskBytes, 0);
    const alone = new UploadBudget({ ...limits, maxDiskBytes: 10, maxDiskBytesPerClient: 10 });
    alone.admit('a', 100).release();
  });

  it('refuses a client past its own cap on uploads at once with 429 too_many_client_uploads; others still get slots', () => {
    const budget = new UploadBudget({ ...limits, maxConcurrent: 4, maxConcurrentPerClient: 2 });
    const held = [budget.admit('a', 1), budget.admit('a', 1)];
    assert.throws(() => budget.admit('a', 1), { kind: 'too_many_client_uploads', status: 429, retryAfterSeconds: 5 });
    const other = budget.admit('b', 1);
    held[0]?.doneReading();
    held[0]?.doneReading();
    const again = budget.admit('a', 1);
    for (const reservation of [...held, other, again]) reservation.release();
    assert.equal(budget.uploading, 0);
    assert.deepEqual(budget.admit('a', 1).client, 'a', 'every slot is given back');
  });
});

describe('one client sending slowly (real sockets, stub engine)', () => {
  it('holds at most EARSHOT_MAX_CONCURRENT_UPLOADS_PER_CLIENT slots; another key still uploads', async () => {
    const tmpDir = await mkdtemp(path.join(os.tmpdir(), 'earshot-unit-slots-'));
    const config = loadConfig([], {
      EARSHOT_TMP_DIR: tmpDir,
      EARSHOT_LOG_LEVEL: 'silent',
      EARSHOT_MAX_CONCURRENT_UPLOADS: '8',
      EARSHOT_MAX_CONCURRENT_UPLOADS_PER_CLIENT: '3',
    });
    const engine = { transcribe: async () => TRANSCRIPT } as unknown as Engine;
    const registry = {
      resolve: (name: string) => ({ id: name, source: { kind: 'bundled' } }),
    } as unknown as ModelRegistry;
    const app = await buildApp({ config, engine, registry, apiKeys: ['slow-key', 'other-key'] });
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = new URL(address);
    const sockets: net.Socket[] = [];
    // A body announced at 100 bytes of which only the start is sent: the upload holds its slot.
    const holdSlot = async (key: string) => {
      const socket = net.connect(Number(port), '127.0.0.1');
      sockets.push(socket);
      let answer = '';
      socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
      await new Promise((resolve) => socket.once('connect', resolve));
      socket.write(
        `POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\n` +
          `Content-Type: multipart/form-data; boundary=${BOUNDARY}\r\nContent-Length: 100\r\n\r\n--${BOUNDARY}\r\n`,
      );
      return () => answer;
    };
    try {
      const held = [];
      for (let i = 0; i < 3; i++) held.push(await holdSlot('slow-key'));
      await new Promise((resolve) => setTimeout(resolve, 200));
      const refused = await app.inject({
        method: 'POST',
        url: '/v1/audio/transcriptions',
        headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, authorization: 'Bearer slow-key' },
        payload: multipart([['model', 'whisper-1']]),
      });
      assert.equal(refused.statusCode, 429, refused.body);
      assert.equal(refused.json<{ error: { code: string } }>().error.code, 'too_many_client_uploads');
      assert.equal(refused.headers['retry-after'], '5');
      const other = await app.inject({
        method: 'POST',
        url: '/v1/audio/transcriptions',
        headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, authorization: 'Bearer other-key' },
        payload: multipart([['model', 'whisper-1']]),
      });
      assert.equal(other.statusCode, 200, other.body);
      for (const answer of held) assert.equal(answer(), '', 'the slow uploads are still being received');

      // Clients that hang up part way give their slots back: ten rounds of three, then one that is served.
      for (let round = 0; round < 10; round++) {
        for (const socket of sockets.splice(0)) socket.destroy();
        await new Promise((resolve) => setTimeout(resolve, 50));
        for (let i = 0; i < 3; i++) await holdSlot('slow-key');
      }
      for (const socket of sockets.splice(0)) socket.destroy();
      await new Promise((resolve) => setTimeout(resolve, 100));
      const served = await app.inject({
        method: 'POST',
        url: '/v1/audio/transcriptions',
        headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, authorization: 'Bearer slow-key' },
        payload: multipart([['model', 'whisper-1']]),
      });
      assert.equal(served.statusCode, 200, served.body);
    } finally {
      for (const socket of sockets) socket.destroy();
      await app.close();
      await rm(tmpDir, { recursive: true, force: true });
    }
  });
});

describe('speaker reference clips (app with a stub engine)', () => {
  const dataUrl = (bytes: Buffer) => `data:audio/wav;base64,${bytes.toString('base64')}`;
  type KnownSpeakers = { name: string; audio: string }[];
  type EngineJob = { options: { diarize?: { known_speakers?: KnownSpeakers } } };

  async function referenceApp(
    env: Record<string, string>,
    transcribe: (model: unknown, job: EngineJob) => Promise<Transcript>,
  ) {
    const tmpDir = await mkdtemp(path.join(os.tmpdir(), 'earshot-unit-references-'));
    const config = loadConfig([], { EARSHOT_TMP_DIR: tmpDir, EARSHOT_LOG_LEVEL: 'silent', ...env });
    const registry = {
      resolve: (name: string) => ({ id: name, source: { kind: 'bundled' } }),
    } as unknown as ModelRegistry;
    const app = await buildApp({ config, engine: { transcribe } as unknown as Engine, registry });
    const send = (fields: [string, string][]) =>
      app.inject({
        method: 'POST',
        url: '/v1/audio/transcriptions',
        headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` },
        payload: multipart(fields),
      });
    const files = async () => {
      const [directory] = await readdir(tmpDir);
      return readdir(path.join(tmpDir, directory ?? ''));
    };
    const close = async () => {
      await app.close();
      await rm(tmpDir, { recursive: true, force: true });
    };
    return { send, files, close };
  }

  it('writes each clip next to the upload for the worker, keeps it reserved with the file and removes both', async () => {
    const seen: { name: string; bytes: Buffer }[] = [];
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    let jobs = 0;
    // One client's disk share of 3 MiB: its first job holds the file and two 1 MiB clips (2.7 MiB of base64).
    const server = await referenceApp({ EARSHOT_MAX_UPLOAD_DISK_BYTES_PER_CLIENT: '3MiB' }, async (_model, job) => {
      for (const known of job.options.diarize?.known_speakers ?? []) {
        seen.push({ name: known.name, bytes: await readFile(known.audio) });
      }
      jobs++;
      if (jobs === 1) await held;
      return TRANSCRIPT;
    });
    try {
      const ada = Buffer.alloc(1024 * 1024, 1);
      const bo = Buffer.alloc(1024 * 1024, 2);
      // inject() sends when awaited: the first request runs meanwhile.
      const first = Promise.resolve(
        server.send([
          ['model', 'whisper-1'],
          ['response_format', 'diarized_json'],
          ['known_speaker_names[]', 'ada'],
          ['known_speaker_names[]', 'bo'],
          ['known_speaker_references[]', dataUrl(ada)],
          ['known_speaker_references[]', dataUrl(bo)],
        ]),
      );
      while (jobs === 0) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.deepEqual(
        seen.map(({ name, bytes }) => [name, bytes.equals(name === 'ada' ? ada : bo)]),
        [
          ['ada', true],
          ['bo', true],
        ],
      );
      assert.equal((await server.files()).length, 3, 'the file and the two clips');
      // While the first job runs its clips count against the client's share: 1.2 MiB more does not fit.
      const refused = await server.send([
        ['model', 'whisper-1'],
        ['response_format', 'diarized_json'],
        ['known_speaker_names[]', 'cy'],
        ['known_speaker_references[]', dataUrl(Buffer.alloc(900 * 1024, 3))],
      ]);
      assert.equal(refused.statusCode, 429, refused.body);
      assert.equal(refused.json<{ error: { code: string } }>().error.code, 'client_upload_limit');
      release();
      assert.equal((await first).statusCode, 200);
      assert.deepEqual(await server.files(), [], 'the clips are removed with the file');
    } finally {
      release();
      await server.close();
    }
  });

  it('refuses a reference over 1.5 MiB with 413 and a fifth one with 400, naming the field; no file is left', async () => {
    const server = await referenceApp({}, async () => TRANSCRIPT);
    try {
      const tooLong = await server.send([
        ['model', 'whisper-1'],
        ['response_format', 'diarized_json'],
        ['known_speaker_names[]', 'ada'],
        ['known_speaker_references[]', `data:audio/wav;base64,${'A'.repeat(MAX_SPEAKER_REFERENCE_BYTES)}`],
      ]);
      assert.equal(tooLong.statusCode, 413, tooLong.body);
      assert.equal(tooLong.json<{ error: { param: string } }>().error.param, 'known_speaker_references');
      const clip = dataUrl(Buffer.alloc(3000, 1));
      const fields: [string, string][] = [
        ['model', 'whisper-1'],
        ['response_format', 'diarized_json'],
      ];
      for (let i = 0; i < 5; i++) fields.push(['known_speaker_names[]', `s${i}`], ['known_speaker_references[]', clip]);
      const fifth = await server.send(fields);
      assert.equal(fifth.statusCode, 400, fifth.body);
      assert.equal(fifth.json<{ error: { param: string } }>().error.param, 'known_speaker_references');
      // A field other than the references keeps its 64 KiB limit.
      const prompt = await server.send([
        ['model', 'whisper-1'],
        ['prompt', 'p'.repeat(MAX_FIELD_BYTES + 1)],
      ]);
      assert.equal(prompt.statusCode, 413);
      assert.equal(prompt.json<{ error: { param: string } }>().error.param, 'prompt');
      assert.deepEqual(await server.files(), []);
    } finally {
      await server.close();
    }
  });
});
