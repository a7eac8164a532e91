// Every error a client can receive, in one registry: its HTTP status, OpenAI error type and the
// `code` sent on the wire (null where OpenAI sends null). Where OpenAI's own response is known
// (recorded traffic of api.openai.com), status, type, param and code match it; README lists them.
// ApiError is the one class that carries them; ApiError.toJSON is the one place that serialises them.

export const errorKinds = {
  invalid_request: { status: 400, type: 'invalid_request_error', code: null, doc: 'The body is not a valid form.' },
  missing_file: { status: 400, type: 'invalid_request_error', code: null, doc: 'No `file` was uploaded.' },
  missing_model: {
    status: 400,
    type: 'invalid_request_error',
    code: 'missing_required_parameter',
    doc: 'No `model` was given.',
  },
  invalid_value: {
    status: 400,
    type: 'invalid_request_error',
    code: 'invalid_value',
    doc: 'A field has a value out of its range or set (`param` names it).',
  },
  invalid_language: {
    status: 400,
    type: 'invalid_request_error',
    code: 'invalid_language_format',
    doc: '`language` is not an ISO-639-1 code Whisper knows.',
  },
  unsupported_value: {
    status: 400,
    type: 'invalid_request_error',
    code: 'unsupported_value',
    doc: 'A valid OpenAI value this server does not serve, or a combination it does not support.',
  },
  invalid_audio: {
    status: 400,
    type: 'invalid_request_error',
    code: null,
    doc: 'The file could not be decoded as audio ("Invalid file format").',
  },
  audio_too_short: {
    status: 400,
    type: 'invalid_request_error',
    code: 'audio_too_short',
    doc: 'The audio is shorter than 0.1 seconds.',
  },
  file_too_large: {
    status: 413,
    type: 'server_error',
    code: null,
    doc: 'The upload is over the size limit ("Maximum content size limit … exceeded").',
  },
  form_too_large: {
    status: 413,
    type: 'invalid_request_error',
    code: 'form_too_large',
    doc: 'A text field is over 64 KiB, or the text fields together over 256 KiB (`param` names the field).',
  },
  model_not_found: {
    status: 404,
    type: 'invalid_request_error',
    code: 'model_not_found',
    doc: 'No model of that name can be served.',
  },
  audio_too_long: {
    status: 400,
    type: 'invalid_request_error',
    code: 'audio_too_long',
    doc: 'The audio is longer than EARSHOT_MAX_AUDIO_SECONDS.',
  },
  upload_timeout: {
    status: 408,
    type: 'invalid_request_error',
    code: 'upload_timeout',
    doc: 'The upload stalled for longer than EARSHOT_UPLOAD_IDLE_TIMEOUT_MS.',
  },
  request_timeout: {
    status: 408,
    type: 'invalid_request_error',
    code: 'request_timeout',
    doc: 'The request was not received whole within EARSHOT_REQUEST_TIMEOUT_MS.',
  },
  headers_too_large: {
    status: 431,
    type: 'invalid_request_error',
    code: 'headers_too_large',
    doc: 'The request headers are over EARSHOT_MAX_HEADER_BYTES.',
  },
  malformed_http: {
    status: 400,
    type: 'invalid_request_error',
    code: null,
    doc: 'The request is not valid HTTP (bad framing, bad Content-Length, a bad %-escape in the path).',
  },
  missing_api_key: {
    status: 401,
    type: 'invalid_request_error',
    code: null,
    doc: 'No `Authorization: Bearer KEY` header, and keys are configured.',
  },
  invalid_api_key: {
    status: 401,
    type: 'invalid_request_error',
    code: 'invalid_api_key',
    doc: 'The key is not one of the configured keys.',
  },
  admin_key_required: {
    status: 403,
    type: 'invalid_request_error',
    code: 'admin_key_required',
    doc: 'Admin API: EARSHOT_ADMIN_API_KEYS is set and the key is not one of them.',
  },
  rate_limited: {
    status: 429,
    type: 'requests',
    code: 'rate_limit_exceeded',
    doc: 'More requests per minute than EARSHOT_RATE_LIMIT_PER_MINUTE (`retry-after` says when to retry).',
  },
  too_many_auth_failures: {
    status: 429,
    type: 'requests',
    code: 'too_many_auth_failures',
    doc: 'More failed API key checks from this address than EARSHOT_AUTH_FAILURES_PER_MINUTE (`retry-after` says when to retry).',
  },
  too_many_connections: {
    status: 429,
    type: 'requests',
    code: 'too_many_connections',
    doc: 'This address holds EARSHOT_MAX_CONNECTIONS_PER_ADDRESS connections open already; the new one is closed.',
  },
  server_overloaded: {
    status: 429,
    type: 'server_error',
    code: 'server_overloaded',
    doc: 'The model’s queue is full (EARSHOT_MAX_QUEUED_JOBS; `retry-after` says when to retry).',
  },
  too_many_uploads: {
    status: 429,
    type: 'server_error',
    code: 'too_many_uploads',
    doc: 'More uploads in progress than EARSHOT_MAX_CONCURRENT_UPLOADS (`retry-after` says when to retry).',
  },
  too_many_client_uploads: {
    status: 429,
    type: 'requests',
    code: 'too_many_client_uploads',
    doc: 'This client has EARSHOT_MAX_CONCURRENT_UPLOADS_PER_CLIENT uploads in progress already (`retry-after` says when to retry).',
  },
  client_upload_limit: {
    status: 429,
    type: 'requests',
    code: 'client_upload_limit',
    doc: 'This client’s uploads would hold more than EARSHOT_MAX_UPLOAD_DISK_BYTES_PER_CLIENT on disk (`retry-after`).',
  },
  upload_space_exhausted: {
    status: 503,
    type: 'server_error',
    code: 'upload_space_exhausted',
    doc: 'All uploads would hold more than EARSHOT_MAX_UPLOAD_DISK_BYTES on disk (`retry-after` says when to retry).',
  },
  not_found: { status: 404, type: 'invalid_request_error', code: null, doc: 'No such route.' },
  model_not_loaded: {
    status: 404,
    type: 'invalid_request_error',
    code: 'model_not_loaded',
    doc: 'Admin API: the model is not loaded, so it cannot be unloaded.',
  },
  model_pinned: {
    status: 409,
    type: 'invalid_request_error',
    code: 'model_pinned',
    doc: 'Admin API: the default and preloaded models stay loaded.',
  },
  model_load_failed: {
    status: 503,
    type: 'server_error',
    code: 'model_load_failed',
    doc: 'The model could not be loaded (missing files, no hub access, out of memory).',
  },
  server_not_ready: {
    status: 503,
    type: 'server_error',
    code: 'server_not_ready',
    doc: 'The server is shutting down.',
  },
  model_unloaded: {
    status: 503,
    type: 'server_error',
    code: 'model_unloaded',
    doc: 'The model was unloaded (admin API, idle TTL, eviction) before the request finished; a retry loads it again.',
  },
  engine_crashed: {
    status: 500,
    type: 'server_error',
    code: 'engine_crashed',
    doc: 'The engine worker died while running the request (it is restarted).',
  },
  job_timeout: {
    status: 504,
    type: 'server_error',
    code: 'job_timeout',
    doc: 'The job ran past EARSHOT_JOB_TIMEOUT_MS; its worker was replaced.',
  },
  engine_error: { status: 500, type: 'server_error', code: 'engine_error', doc: 'The engine failed on this request.' },
  internal_error: {
    status: 500,
    type: 'server_error',
    code: 'internal_error',
    doc: 'An unexpected fault in earshot (logged with the request id).',
  },
} as const satisfies Record<string, { status: number; type: string; code: string | null; doc: string }>;

export type ErrorKind = keyof typeof errorKinds;

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export class ApiError extends Error {
  readonly status: number;
  readonly type: string;
  readonly code: string | null;

  constructor(
    /** earshot's own name for the error, for logs and tests; the wire carries `code`. */
    readonly kind: ErrorKind,
    message: string,
    readonly param: string | null = null,
    /** Seconds after which a retry may succeed (429s), sent as `retry-after`. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = errorKinds[kind].status;
    this.type = errorKinds[kind].type;
    this.code = errorKinds[kind].code;
  }

  toJSON(): OpenAIErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** A job that stopped because its client went away; never sent to anyone. */
export class JobCancelledError extends Error {
  constructor() {
    super('the job was cancelled');
    this.name = 'JobCancelledError';
  }
}
