// What a client receives when the engine fails, with fake workers (test/support/fake-worker.mjs):
// each error code a worker reports becomes one exact OpenAI error (status, type, code, param,
// message), through the HTTP layer (app.inject); and a client that goes away frees its place.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { Engine } from '../../src/engine/index.ts';
import { engineOptions, fakeApp, FakeWorld, multipart, waitUntil } from '../support/fake-engine.ts';

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

let world: FakeWorld;
let app: FastifyInstance;
let engine: Engine;

before(async () => {
  world = new FakeWorld();
  world.model('fake-ok');
  ({ app, engine } = await fakeApp(world, 'fake-ok', engineOptions({ workersPerModel: 1 })));
});

after(async () => {
  await app.close();
  await engine.stop();
  world.remove();
});

async function post(fileText: string, fields: Record<string, string> = {}, url = '/v1/audio/transcriptions') {
  return app.inject({ method: 'POST', url, ...(await multipart({ model: 'whisper-1', ...fields }, fileText)) });
}

describe('worker errors as OpenAI errors', () => {
  const cases: {
    directives: string[];
    status: number;
    type: string;
    code: string | null;
    param: string | null;
    message: string | RegExp;
  }[] = [
    {
      directives: ['!error=invalid_audio', '!message=no audio stream'],
      status: 400,
      type: 'invalid_request_error',
      code: null,
      param: null,
      message:
        "Invalid file format: no audio stream. Supported formats: ['flac', 'm4a', 'mp3', 'mp4', 'mpeg', 'mpga', " +
        "'oga', 'ogg', 'wav', 'webm'] and any other that FFmpeg decodes",
    },
    {
      directives: ['!error=audio_too_short'],
      status: 400,
      type: 'invalid_request_error',
      code: 'audio_too_short',
      param: 'file',
      message: 'Audio file is too short. Minimum audio length is 0.1 seconds.',
    },
    {
      directives: ['!error=audio_too_long', '!message=3700 s is over the limit of 3600 s'],
      status: 400,
      type: 'invalid_request_error',
      code: 'audio_too_long',
      param: 'file',
      message: 'The audio is too long: 3700 s is over the limit of 3600 s.',
    },
    {
      directives: ['!error=invalid_options', '!message=beam_size must be at least best_of'],
      status: 400,
      type: 'invalid_request_error',
      code: 'invalid_value',
      param: null,
      message: 'beam_size must be at least best_of',
    },
    {
      directives: ['!error=model_error', '!message=CUDA out of memory'],
      status: 500,
      type: 'server_error',
      code: 'engine_error',
      param: null,
      message: 'The engine failed on this request: CUDA out of memory',
    },
    {
      directives: ['!error=bad_message', '!message=no audio path'],
      status: 500,
      type: 'server_error',
      code: 'engine_error',
      param: null,
      message: 'The engine failed on this request: no audio path',
    },
    {
      directives: ['!crash'],
      status: 500,
      type: 'server_error',
      code: 'engine_crashed',
      param: null,
      message: 'The engine worker stopped (exited with code 1) while transcribing; try again.',
    },
  ];

  for (const expected of cases) {
    it(`${expected.directives[0]} → ${expected.status} ${expected.code ?? expected.type}`, async () => {
      for (const url of ['/v1/audio/transcriptions', '/v1/audio/translations']) {
        const answer = await post(['some words', ...expected.directives].join('\n'), {}, url);
        assert.equal(answer.statusCode, expected.status, url);
        assert.match(String(answer.headers['content-type']), /^application\/json/);
        const body = answer.json<ErrorBody>();
        assert.deepEqual(Object.keys(body), ['error']);
        const { message, ...rest } = body.error;
        assert.deepEqual(rest, { type: expected.type, param: expected.param, code: expected.code }, url);
        if (typeof expected.message === 'string') assert.equal(message, expected.message);
        else assert.match(message, expected.message);
      }
      // Whatever the failure, the next request is served.
      await waitUntil(() => engine.modelStatus('fake-ok')?.workers === 1, 'the model serves');
      const next = await post('still here');
      assert.equal(next.statusCode, 200);
      assert.equal(next.json<{ text: string }>().text, 'still here');
    });
  }

  it('answers a streaming request that fails before any text with a plain JSON error', async () => {
    const answer = await post('!error=audio_too_short', { stream: 'true' });
    assert.equal(answer.statusCode, 400);
    assert.match(String(answer.headers['content-type']), /^application\/json/);
    assert.equal(answer.json<ErrorBody>().error.code, 'audio_too_short');
  });

  it('serves the transcript when nothing fails', async () => {
    const answer = await post('one line\nand another', { response_format: 'verbose_json', language: 'de' });
    assert.equal(answer.statusCode, 200);
    const body = answer.json<{ text: string; language: string; segments: unknown[] }>();
    assert.equal(body.text, 'one line and another');
    assert.equal(body.language, 'german');
    assert.equal(body.segments.length, 2);
  });
});

describe('streaming', () => {
  /** The data of each server-sent event of a body. */
  const events = (body: string) =>
    body
      .split('\n\n')
      .filter(Boolean)
      .map((event) => event.replace(/^data: /, ''));

  it('sends the text as deltas, then the whole text', async () => {
    const answer = await post('first line\nsecond line', { stream: 'true' });
    assert.equal(answer.statusCode, 200);
    assert.match(String(answer.headers['content-type']), /^text\/event-stream/);
    const data = events(answer.body);
    assert.equal(data.at(-1), '[DONE]');
    const parsed = data
      .slice(0, -1)
      .map((event) => JSON.parse(event) as { type: string; delta?: string; text?: string });
    const deltas = parsed.filter((event) => event.type === 'transcript.text.delta').map((event) => event.delta);
    assert.ok(deltas.length >= 2, 'text arrives in pieces');
    const done = parsed.at(-1);
    assert.equal(done?.type, 'transcript.text.done');
    assert.equal(done.text, 'first line second line');
    assert.equal(deltas.join(''), done.text);
  });

  it('ends a stream whose worker crashes part way with an error event and no done event', async () => {
    const answer = await post('first line\nsecond line\n!crash-after=1', { stream: 'true' });
    assert.equal(answer.statusCode, 200);
    const data = events(answer.body);
    const parsed = data.map((event) => JSON.parse(event) as { type?: string; delta?: string } & Partial<ErrorBody>);
    const error = parsed.at(-1)?.error;
    assert.deepEqual(error, {
      message: 'The engine worker stopped (exited with code 1) while transcribing; try again.',
      type: 'server_error',
      param: null,
      code: 'engine_crashed',
    });
    const deltas = parsed.filter((event) => event.type === 'transcript.text.delta').map((event) => event.delta);
    assert.equal(deltas.join(''), 'first line', 'the text decoded before the crash was sent');
    assert.ok(!parsed.some((event) => event.type === 'transcript.text.done'));
    await waitUntil(() => engine.modelStatus('fake-ok')?.workers === 1, 'the model serves again');
  });
});

describe('a client that goes away', () => {
  // app.inject cannot disconnect once the body is read, so these requests go over a real socket.
  let url: string;
  before(async () => {
    await app.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/v1/audio/transcriptions`;
  });

  const send = async (fileText: string, signal?: AbortSignal) => {
    const { payload, headers } = await multipart({ model: 'whisper-1' }, fileText);
    return fetch(url, { method: 'POST', body: payload, headers, ...(signal && { signal }) });
  };
  const status = () => engine.modelStatus('fake-ok');

  it('leaves the queue while it waits, and its job never runs', async () => {
    const gate = world.gate();
    const runsBefore = world.runs('fake-ok').length;
    const running = send(`running\n!gate=${gate.path}`);
    await waitUntil(() => status()?.running === 1, 'the first request runs');
    const controller = new AbortController();
    const waiting = send('abandoned', controller.signal);
    waiting.catch(() => undefined);
    await waitUntil(() => status()?.queued === 1, 'the second request waits');
    controller.abort();
    await assert.rejects(waiting, { name: 'AbortError' });
    await waitUntil(() => status()?.queued === 0, 'the abandoned job leaves the queue');
    assert.equal(status()?.running, 1, 'the first job still runs');

    gate.open();
    const answer = await running;
    assert.equal(answer.status, 200);
    assert.equal(((await answer.json()) as { text: string }).text, 'running');
    const after = await send('after');
    assert.equal(((await after.json()) as { text: string }).text, 'after');
    assert.deepEqual(world.runs('fake-ok').slice(runsBefore), [['running'], ['after']], 'the abandoned job never ran');
  });

  it('cancels its job on the worker while it runs, and the worker serves the next request', async () => {
    const gate = world.gate();
    const controller = new AbortController();
    const running = send(`cancelled\n!gate=${gate.path}`, controller.signal);
    running.catch(() => undefined);
    await waitUntil(() => status()?.running === 1, 'the request runs');
    const pid = world.journal('fake-ok').findLast((entry) => entry.event === 'run')?.pid;
    controller.abort();
    await assert.rejects(running, { name: 'AbortError' });
    await waitUntil(
      () => world.journal('fake-ok').some((entry) => entry.event === 'cancel'),
      'the worker is told to cancel',
    );
    await waitUntil(() => status()?.running === 0, 'the cancelled job ends');
    const next = await send('next');
    assert.equal(((await next.json()) as { text: string }).text, 'next');
    const last = world.journal('fake-ok').findLast((entry) => entry.event === 'run');
    assert.equal(last?.pid, pid, 'the same worker serves: a cancel does not cost the process');
  });
});
