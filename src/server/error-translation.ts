// The one place where what others raise becomes the OpenAI error a client receives: the engine's
// EngineErrors (by their facts), and the coded errors of Fastify, its plugins and Node's HTTP
// parser (through one map, `foreignErrors`). The sentences are the registry's (src/api-errors.ts).
import { ApiError, type ModelLoadFailed } from '../api-errors.ts';
import { describeUnload, isEngineError, type EngineFailure, type LoadFailure } from '../engine/index.ts';

/** Where an error was caught, and what its translation may need to know there. */
export interface TranslationContext {
  /**
   * request: anywhere while serving a request (the default); upload: while a multipart body was
   * read; client: Node's HTTP parser refused the request; router: Fastify's router refused its URL.
   */
  source?: 'request' | 'upload' | 'client' | 'router';
  /** The upload limit (EARSHOT_MAX_UPLOAD_BYTES), for the upload's own errors. */
  maxUploadBytes?: number;
  method?: string;
}

/** An error that others raise, known by its `code`. */
export interface ForeignError {
  code?: string;
  statusCode?: number;
  message?: string;
}

/** Every foreign error code earshot answers in its own words, by who raises it. */
const foreignErrors: Record<string, (error: ForeignError, context: TranslationContext) => ApiError> = {
  // @fastify/multipart (busboy), while the upload is read
  FST_REQ_FILE_TOO_LARGE: (_error, { maxUploadBytes }) =>
    new ApiError('file_too_large', maxUploadBytes === undefined ? {} : { limitBytes: maxUploadBytes }),
  FST_FILES_LIMIT: () => new ApiError('invalid_request', { problem: 'one_file' }, { param: 'file' }),
  FST_FIELDS_LIMIT: () => new ApiError('invalid_request', { problem: 'too_many_fields' }),
  FST_PARTS_LIMIT: () => new ApiError('invalid_request', { problem: 'too_many_fields' }),
  FST_PROTO_VIOLATION: () => new ApiError('invalid_request', { problem: 'forbidden_field_name' }),
  // Fastify's content-type parsers
  FST_ERR_CTP_BODY_TOO_LARGE: () => new ApiError('file_too_large', {}),
  FST_ERR_CTP_INVALID_MEDIA_TYPE: () => new ApiError('invalid_request', { problem: 'not_multipart' }),
  // Fastify's router (its frameworkErrors)
  FST_ERR_BAD_URL: () => new ApiError('malformed_http', { problem: 'the path is not a valid URL: a bad %-escape' }),
  FST_ERR_MAX_PARAM_LENGTH: (_error, { method }) =>
    new ApiError('not_found', { method: method ?? 'unknown', path: '(a path segment is too long)' }),
  // Node's HTTP parser (its clientError)
  HPE_HEADER_OVERFLOW: () => new ApiError('headers_too_large'),
  ERR_HTTP_REQUEST_TIMEOUT: () => new ApiError('request_timeout', {}),
  // @fastify/rate-limit (its errorResponseBuilder, with rateLimitedError below)
  EARSHOT_RATE_LIMITED: (error) => {
    const { max, retryAfterSeconds } = error as RateLimitedError;
    return new ApiError('rate_limited', { max, retryAfterSeconds }, { retryAfterSeconds });
  },
};

interface RateLimitedError extends ForeignError {
  max: number;
  retryAfterSeconds: number;
}

/** @fastify/rate-limit's refusal (`max` requests per window, `ttlMs` until the window ends). */
export function rateLimitedError(context: { max: number; ttl: number }): ApiError {
  const refusal: RateLimitedError = {
    code: 'EARSHOT_RATE_LIMITED',
    max: context.max,
    retryAfterSeconds: Math.ceil(context.ttl / 1000),
  };
  return toApiError(refusal);
}

const internalError = () => new ApiError('internal_error');

/** What a foreign error no entry of the map knows becomes, by where it was caught. */
const unknownForeignErrors: Record<NonNullable<TranslationContext['source']>, (error: ForeignError) => ApiError> = {
  request: (error) =>
    error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500
      ? new ApiError('invalid_request', { problem: 'client_error', detail: error.message })
      : internalError(),
  upload: (error) => new ApiError('invalid_request', { problem: 'unreadable_form', detail: error.message ?? '' }),
  client: (error) => new ApiError('malformed_http', { problem: error.code ?? error.message ?? 'unknown' }),
  router: internalError,
};

function loadFailure(model: string, cause: LoadFailure): ModelLoadFailed {
  switch (cause.kind) {
    case 'start_timeout':
      return { why: 'start_timeout', model, timeoutMs: cause.timeoutMs };
    case 'fatal':
      return { why: 'worker_said', model, detail: cause.detail };
    case 'exited':
      return { why: 'worker_exited', model, exit: cause.exit };
    case 'spawn_failed':
      return { why: 'no_worker', detail: cause.detail };
  }
}

function fromEngine(failure: EngineFailure): ApiError {
  switch (failure.reason) {
    case 'job_failed':
      switch (failure.code) {
        case 'invalid_audio':
          return new ApiError('invalid_audio', { detail: failure.detail });
        case 'audio_too_long':
          return new ApiError('audio_too_long', { detail: failure.detail }, { param: 'file' });
        case 'audio_too_short':
          return new ApiError('audio_too_short', { param: 'file' });
        case 'invalid_options':
          return new ApiError('invalid_value', { detail: failure.detail });
        case 'invalid_speaker_reference':
          return new ApiError('invalid_value', { detail: failure.detail }, { param: 'known_speaker_references' });
        case 'model_error':
        case 'bad_message':
          return new ApiError('engine_error', { detail: failure.detail });
      }
      break;
    case 'job_incomplete':
      return new ApiError('engine_error', {});
    case 'worker_crashed':
      return new ApiError('engine_crashed', { exit: failure.exit });
    case 'job_timeout':
      return new ApiError('job_timeout', { timeoutMs: failure.timeoutMs });
    case 'queue_full': {
      const { model, depth, retryAfterSeconds } = failure;
      return new ApiError('server_overloaded', { model, queued: depth, retryAfterSeconds }, { retryAfterSeconds });
    }
    case 'model_load_failed':
      return new ApiError('model_load_failed', loadFailure(failure.model, failure.cause));
    case 'no_room_for_model':
      return new ApiError('model_load_failed', {
        why: 'no_room',
        loaded: failure.loaded,
        maxLoaded: failure.maxLoaded,
      });
    case 'model_unloaded':
      return new ApiError('model_unloaded', { model: failure.model, why: describeUnload(failure.unload) });
    case 'engine_stopping':
      return new ApiError('server_not_ready', { whileReceiving: false });
    case 'job_cancelled':
      // Never answered (its client is gone); reaching here is a fault of earshot's.
      break;
  }
  return internalError();
}

/** Turns anything thrown while serving a request into the ApiError the client receives. */
export function toApiError(error: unknown, context: TranslationContext = {}): ApiError {
  if (error instanceof ApiError) return error as ApiError;
  if (isEngineError(error)) return fromEngine(error.failure);
  const foreign = (typeof error === 'object' && error !== null ? error : {}) as ForeignError;
  const translate =
    foreign.code !== undefined && Object.hasOwn(foreignErrors, foreign.code) ? foreignErrors[foreign.code] : undefined;
  return translate ? translate(foreign, context) : unknownForeignErrors[context.source ?? 'request'](foreign);
}
