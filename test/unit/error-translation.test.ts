// The one translation of what others raise into OpenAI errors (src/server/error-translation.ts):
// every EngineFailure by its facts, the foreign codes of Fastify, @fastify/multipart, Node's HTTP
// parser and the rate limiter; and, with fake workers, which jobs hear "the server is shutting down"
// (only at shutdown) and which "the model was unloaded".
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ApiError } from '../../src/api-errors.ts';
import { Engine, EngineError, type EngineFailure } from '../../src/engine/index.ts';
import { rateLimitedError, toApiError, type TranslationContext } from '../../src/server/error-translation.ts';
import { engineOptions, FakeWorld, job, testLogger, waitUntil } from '../support/fake-engine.ts';

const wire = (error: ApiError) => ({
  status: error.status,
  kind: error.kind,
  param: error.param,
  retryAfterSeconds: error.retryAfterSeconds,
  message: error.message,
});

describe('engine errors', () => {
  const cases: [EngineFailure, ReturnType<typeof wire>][] = [
    [
      { reason: 'job_failed', code: 'invalid_audio', detail: 'no audio stream' },
      {
        status: 400,
        kind: 'invalid_audio',
        param: null,
        retryAfterSeconds: undefined,
        message:
          "Invalid file format: no audio stream. Supported formats: ['flac', 'm4a', 'mp3', 'mp4', 'mpeg', 'mpga', " +
          "'oga', 'ogg', 'wav', 'webm'] and any other that FFmpeg decodes",
      },
    ],
    [
      { reason: 'job_failed', code: 'audio_too_long', detail: '3700 s is over the limit of 3600 s' },
      {
        status: 400,
        kind: 'audio_too_long',
        param: 'file',
        retryAfterSeconds: undefined,
        message: 'The audio is too long: 3700 s is over the limit of 3600 s.',
      },
    ],
    [
      { reason: 'job_incomplete' },
      {
        status: 500,
        kind: 'engine_error',
        param: null,
        retryAfterSeconds: undefined,
        message: 'The engine finished without describing the audio.',
      },
    ],
    [
      { reason: 'queue_full', model: 'base', depth: 64, retryAfterSeconds: 7 },
      {
        status: 429,
        kind: 'server_overloaded',
        param: null,
        retryAfterSeconds: 7,
        message: 'The server is overloaded: 64 jobs are waiting for model base. Retry after 7 s.',
      },
    ],
    [
      { reason: 'model_load_failed', model: 'small', cause: { kind: 'spawn_failed', detail: 'spawn python ENOENT' } },
      {
        status: 503,
        kind: 'model_load_failed',
        param: null,
        retryAfterSeconds: undefined,
        message: 'Could not start the engine worker: spawn python ENOENT',
      },
    ],
    [
      { reason: 'model_unloaded', model: 'small', unload: { by: 'idle_ttl', idleSeconds: 300 } },
      {
        status: 503,
        kind: 'model_unloaded',
        param: null,
        retryAfterSeconds: undefined,
        message: 'The model small was unloaded (idle for 300 s) before this request finished; retry to load it again.',
      },
    ],
    [
      { reason: 'engine_stopping' },
      {
        status: 503,
        kind: 'server_not_ready',
        param: null,
        retryAfterSeconds: undefined,
        message: 'The server is shutting down.',
      },
    ],
    [
      // Never sent (its client is gone); reaching the translation is earshot's fault.
      { reason: 'job_cancelled' },
      {
        status: 500,
        kind: 'internal_error',
        param: null,
        retryAfterSeconds: undefined,
        message: 'The server had an unexpected error; it has been logged.',
      },
    ],
  ];
  for (const [failure, expected] of cases) {
    it(`${failure.reason}${'code' in failure ? ` (${failure.code})` : ''} → ${expected.kind}`, () => {
      const error = new EngineError(failure);
      assert.deepEqual(wire(toApiError(error)), expected);
      // What the engine says of itself is for logs, never the client's sentence.
      assert.equal(error.name, 'EngineError');
    });
  }
});

describe('foreign error codes', () => {
  const coded = (code: string, message = 'boom', statusCode?: number) =>
    Object.assign(new Error(message), { code, ...(statusCode !== undefined && { statusCode }) });
  const cases: [Error, TranslationContext, Partial<ReturnType<typeof wire>>][] = [
    [
      coded('FST_REQ_FILE_TOO_LARGE'),
      { source: 'upload', maxUploadBytes: 100 },
      { status: 413, kind: 'file_too_large', message: 'Maximum content size limit (100) exceeded (101 bytes read)' },
    ],
    [coded('FST_FILES_LIMIT'), { source: 'upload' }, { status: 400, kind: 'invalid_request', param: 'file' }],
    [coded('FST_PARTS_LIMIT'), { source: 'upload' }, { message: 'The form has too many fields.' }],
    [coded('FST_PROTO_VIOLATION'), { source: 'upload' }, { message: 'The form has a forbidden field name.' }],
    [
      new Error('Unexpected end of form'),
      { source: 'upload' },
      { kind: 'invalid_request', message: 'The multipart/form-data body could not be read: Unexpected end of form' },
    ],
    [coded('FST_ERR_CTP_BODY_TOO_LARGE'), {}, { status: 413, message: 'The request body is over the size limit.' }],
    [coded('FST_ERR_CTP_INVALID_MEDIA_TYPE'), {}, { status: 400, kind: 'invalid_request' }],
    [coded('FST_ERR_SOMETHING', 'Bad thing', 400), {}, { kind: 'invalid_request', message: 'Bad thing' }],
    [coded('FST_ERR_SOMETHING', 'Bad thing', 500), {}, { kind: 'internal_error' }],
    [coded('HPE_HEADER_OVERFLOW'), { source: 'client' }, { status: 431, kind: 'headers_too_large' }],
    [coded('ERR_HTTP_REQUEST_TIMEOUT'), { source: 'client' }, { status: 408, kind: 'request_timeout' }],
    [
      coded('HPE_INVALID_METHOD'),
      { source: 'client' },
      { status: 400, kind: 'malformed_http', message: 'The request is not valid HTTP (HPE_INVALID_METHOD).' },
    ],
    [
      coded('FST_ERR_MAX_PARAM_LENGTH'),
      { source: 'router', method: 'GET' },
      { status: 404, kind: 'not_found', message: 'Unknown route: GET (a path segment is too long)' },
    ],
    [coded('FST_ERR_WHATEVER'), { source: 'router' }, { status: 500, kind: 'internal_error' }],
  ];
  for (const [error, context, expected] of cases) {
    it(`${(error as { code?: string }).code ?? error.message} (${context.source ?? 'request'}) → ${expected.kind ?? expected.message}`, () => {
      const answer = wire(toApiError(error, context));
      assert.deepEqual(
        Object.fromEntries(Object.keys(expected).map((key) => [key, answer[key as keyof typeof answer]])),
        expected,
      );
    });
  }

  it('rate limiting', () => {
    assert.deepEqual(wire(rateLimitedError({ max: 3, ttl: 41_200 })), {
      status: 429,
      kind: 'rate_limited',
      param: null,
      retryAfterSeconds: 42,
      message: 'Rate limit reached: 3 requests per minute. Please try again in 42s.',
    });
  });
});

describe('jobs refused by a stopping engine', () => {
  let world: FakeWorld;
  before(() => {
    world = new FakeWorld();
  });
  after(() => world.remove());

  /** A running job (held at a gate) and a waiting one on a one-worker model; what each is told. */
  async function refusals(name: string, stop: (engine: Engine) => Promise<unknown>) {
    const engine = new Engine(engineOptions({ workersPerModel: 1, unloadGraceMs: 0 }), testLogger());
    const model = world.model(name);
    await engine.load(model);
    const gate = world.gate();
    const running = engine.transcribe(model, job(world.audio('held', `!gate=${gate.path}`)));
    await waitUntil(() => world.runs(name).length === 1, 'the first job runs');
    const waiting = engine.transcribe(model, job(world.audio('waits')));
    await waitUntil(() => engine.modelStatus(name)?.queued === 1, 'the second job waits');
    const settled = Promise.allSettled([running, waiting]);
    await stop(engine);
    const outcomes = await settled;
    await engine.stop();
    return outcomes.map((outcome) => (outcome.status === 'rejected' ? toApiError(outcome.reason).message : 'served'));
  }

  it('says the server is shutting down when it is', async () => {
    assert.deepEqual(await refusals('stop-shutdown', (engine) => engine.stop()), [
      'The server is shutting down.',
      'The server is shutting down.',
    ]);
  });

  it('says the model was unloaded when it was', async () => {
    const unloaded =
      'The model stop-unload was unloaded (asked by the admin API) before this request finished; retry to load it again.';
    assert.deepEqual(await refusals('stop-unload', (engine) => engine.unload('stop-unload', { by: 'admin' })), [
      unloaded,
      unloaded,
    ]);
  });
});
