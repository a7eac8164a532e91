// Every error a client can receive, in one registry: its HTTP status, OpenAI error type, the
// `code` sent on the wire (null where OpenAI sends null) and its message template (what the client
// reads, from the facts given). Where OpenAI's own response is known (recorded traffic of
// api.openai.com), status, type, param, code and wording match it; README lists them. ApiError is
// built from a kind and its template's facts; ApiError.toJSON is the one place that serialises it.
// What other code raises (the engine's EngineError, Fastify's and Node's errors) becomes an ApiError
// in src/server/error-translation.ts.

// OpenAI lists its formats; the worker decodes whatever FFmpeg can, so say both.
const SUPPORTED_FORMATS =
  "Supported formats: ['flac', 'm4a', 'mp3', 'mp4', 'mpeg', 'mpga', 'oga', 'ogg', 'wav', 'webm'] and any other that FFmpeg decodes";

/** Why a body is not a valid form (kind `invalid_request`). */
export type InvalidRequest =
  | { problem: 'not_multipart' | 'one_file' | 'too_many_fields' | 'forbidden_field_name' | 'long_field_name' }
  | { problem: 'unreadable_form'; detail: string }
  | { problem: 'unexpected_file'; field: string }
  /** Another 4xx that Fastify raised, in its own words. */
  | { problem: 'client_error'; detail: string | undefined };

function invalidRequestMessage(p: InvalidRequest): string {
  switch (p.problem) {
    case 'not_multipart':
      return "Expected a multipart/form-data body with the fields 'file' and 'model'.";
    case 'one_file':
      return 'Send exactly one file, in the field "file".';
    case 'too_many_fields':
      return 'The form has too many fields.';
    case 'forbidden_field_name':
      return 'The form has a forbidden field name.';
    case 'long_field_name':
      return 'A form field name is over 100 bytes.';
    case 'unreadable_form':
      return `The multipart/form-data body could not be read: ${p.detail}`;
    case 'unexpected_file':
      return `Unexpected file in field '${p.field}'; send it as 'file'.`;
    case 'client_error':
      return p.detail ?? 'Bad request.';
  }
}

/** What a request asks that earshot does not serve (kind `unsupported_value`). */
export type Unsupported =
  | { asked: 'diarization' }
  | { asked: 'stream'; responseFormat: string }
  | { asked: 'logprobs'; responseFormat: string }
  /** A realtime client event of OpenAI's that belongs to conversation sessions (response.create, …). */
  | { asked: 'client_event'; type: string }
  /** A realtime session of type `realtime` (speech to speech); the route closes the socket after it. */
  | { asked: 'conversation_session' };

/** The client events a realtime transcription session accepts, as its error messages list them. */
const TRANSCRIPTION_SESSION_EVENTS =
  'session.update (or the beta transcription_session.update), input_audio_buffer.append, input_audio_buffer.commit and input_audio_buffer.clear';

function unsupportedMessage(p: Unsupported): string {
  switch (p.asked) {
    case 'diarization':
      return "response_format 'diarized_json' is for transcriptions: translations have no speakers.";
    case 'stream':
      return `response_format '${p.responseFormat}' is not compatible with stream=true. Use 'json' or 'text' instead.`;
    case 'logprobs':
      return `include[]=logprobs is not compatible with response_format '${p.responseFormat}'. Use 'json' instead.`;
    case 'client_event':
      return `'${p.type}' is not supported in a transcription session, which takes ${TRANSCRIPTION_SESSION_EVENTS}.`;
    case 'conversation_session':
      return "earshot serves realtime transcription sessions only (session.type 'transcription'), not 'realtime' conversation sessions. Connect to /v1/realtime?intent=transcription, or send session.update with session.type 'transcription'.";
  }
}

/** Why an ephemeral key (`ek_…`) was refused (kind `invalid_client_secret`). */
export type ClientSecretRefusal =
  | { why: 'expired'; maskedKey: string; expiredAt: string }
  | { why: 'used'; maskedKey: string }
  | { why: 'unknown'; maskedKey: string }
  /** Presented anywhere but the realtime WebSocket (minting another key included). */
  | { why: 'wrong_route' };

function clientSecretMessage(p: ClientSecretRefusal): string {
  switch (p.why) {
    case 'expired':
      return `The ephemeral key ${p.maskedKey} expired at ${p.expiredAt}; get a new one (POST /v1/realtime/client_secrets).`;
    case 'used':
      return `The ephemeral key ${p.maskedKey} has already opened a session; each opens one. Get a new one (POST /v1/realtime/client_secrets).`;
    case 'unknown':
      return `Incorrect ephemeral key provided: ${p.maskedKey}. It is not one this server issued (ephemeral keys do not survive a restart).`;
    case 'wrong_route':
      return 'An ephemeral key (ek_…) opens a realtime session at GET /v1/realtime and nothing else; this request needs an API key.';
  }
}

/** OpenAI's wording for a number out of its range (the four `*_min_value`/`*_max_value` kinds). */
function outOfRange(kind: 'integer' | 'decimal', side: 'below minimum' | 'above maximum', relation: '>=' | '<=') {
  return (p: { param: string; limit: number; value: number }) =>
    `Invalid '${p.param}': ${kind} ${side} value. Expected a value ${relation} ${p.limit}, but got ${p.value} instead.`;
}

/** Why a model could not be loaded (kind `model_load_failed`). */
export type ModelLoadFailed =
  | { why: 'start_timeout'; model: string; timeoutMs: number }
  /** The worker's own report. */
  | { why: 'worker_said'; model: string; detail: string }
  | { why: 'worker_exited'; model: string; exit: string }
  | { why: 'no_worker'; detail: string }
  /** Every loaded model is busy or pinned, and EARSHOT_MAX_LOADED_MODELS are loaded. */
  | { why: 'no_room'; loaded: number; maxLoaded: number };

function modelLoadFailedMessage(p: ModelLoadFailed): string {
  switch (p.why) {
    case 'start_timeout':
      return `Model ${p.model} did not load within ${p.timeoutMs} ms.`;
    case 'worker_said':
      return `Model ${p.model} could not be loaded: ${p.detail}`;
    case 'worker_exited':
      return `Model ${p.model} could not be loaded: the worker ${p.exit}.`;
    case 'no_worker':
      return `Could not start the engine worker: ${p.detail}`;
    case 'no_room':
      return `${p.loaded} models are loaded and busy (EARSHOT_MAX_LOADED_MODELS=${p.maxLoaded}); try again later.`;
  }
}

export const errorKinds = {
  invalid_request: {
    status: 400,
    type: 'invalid_request_error',
    code: null,
    message: (p: InvalidRequest) => invalidRequestMessage(p),
    doc: 'The body is not a valid form.',
  },
  missing_file: {
    status: 400,
    type: 'invalid_request_error',
    code: null,
    message: () => "Missing required parameter: 'file'.",
    doc: 'No `file` was uploaded.',
  },
  missing_model: {
    status: 400,
    type: 'invalid_request_error',
    code: 'missing_required_parameter',
    message: () => "Missing required parameter: 'model'.",
    doc: 'No `model` was given.',
  },
  invalid_value: {
    status: 400,
    type: 'invalid_request_error',
    code: 'invalid_value',
    message: (p: { detail: string }) => p.detail,
    doc: 'A field has a value out of its range or set (`param` names it).',
  },
  invalid_language: {
    status: 400,
    type: 'invalid_request_error',
    code: 'invalid_language_format',
    message: (p: { language: string }) =>
      `Invalid language '${p.language}'. Language parameter must be specified in ISO-639-1 format.`,
    doc: '`language` is not an ISO-639-1 code Whisper knows.',
  },
  unsupported_value: {
    status: 400,
    type: 'invalid_request_error',
    code: 'unsupported_value',
    message: (p: Unsupported) => unsupportedMessage(p),
    doc: 'A valid OpenAI value this server does not serve, or a combination it does not support.',
  },
  invalid_audio: {
    status: 400,
    type: 'invalid_request_error',
    code: null,
    message: (p: { detail: string }) => `Invalid file format: ${p.detail}. ${SUPPORTED_FORMATS}`,
    doc: 'The file could not be decoded as audio ("Invalid file format").',
  },
  audio_too_short: {
    status: 400,
    type: 'invalid_request_error',
    code: 'audio_too_short',
    message: () => 'Audio file is too short. Minimum audio length is 0.1 seconds.',
    doc: 'The audio is shorter than 0.1 seconds.',
  },
  file_too_large: {
    status: 413,
    type: 'server_error',
    code: null,
    message: (p: { limitBytes?: number }) =>
      // OpenAI's own wording; the reader stops at the limit, so it has read one byte more.
      p.limitBytes === undefined
        ? 'The request body is over the size limit.'
        : `Maximum content size limit (${p.limitBytes}) exceeded (${p.limitBytes + 1} bytes read)`,
    doc: 'The upload is over the size limit ("Maximum content size limit … exceeded").',
  },
  form_too_large: {
    status: 413,
    type: 'invalid_request_error',
    code: 'form_too_large',
    message: (p: { field: string; limitBytes: number; whole: boolean }) =>
      p.whole
        ? `The form's text fields are over ${p.limitBytes} bytes together (at the field '${p.field}').`
        : `The field '${p.field}' is over ${p.limitBytes} bytes; text fields are at most ${p.limitBytes} bytes each.`,
    doc: 'A text field is over 64 KiB, or the text fields together over 256 KiB (`param` names the field).',
  },
  model_not_found: {
    status: 404,
    type: 'invalid_request_error',
    code: 'model_not_found',
    message: (p: { model: string }) => `The model \`${p.model}\` does not exist or you do not have access to it.`,
    doc: 'No model of that name can be served.',
  },
  audio_too_long: {
    status: 400,
    type: 'invalid_request_error',
    code: 'audio_too_long',
    message: (p: { detail: string }) => `The audio is too long: ${p.detail}.`,
    doc: 'The audio is longer than EARSHOT_MAX_AUDIO_SECONDS.',
  },
  upload_timeout: {
    status: 408,
    type: 'invalid_request_error',
    code: 'upload_timeout',
    message: (p: { idleMs: number }) => `The upload stalled: no data for ${p.idleMs} ms.`,
    doc: 'The upload stalled for longer than EARSHOT_UPLOAD_IDLE_TIMEOUT_MS.',
  },
  request_timeout: {
    status: 408,
    type: 'invalid_request_error',
    code: 'request_timeout',
    message: (p: { timeoutMs?: number }) =>
      p.timeoutMs === undefined
        ? 'The request was not received in time.'
        : `The request was not received whole within ${p.timeoutMs} ms.`,
    doc: 'The request was not received whole within EARSHOT_REQUEST_TIMEOUT_MS.',
  },
  headers_too_large: {
    status: 431,
    type: 'invalid_request_error',
    code: 'headers_too_large',
    message: () => 'The request headers are too large.',
    doc: 'The request headers are over EARSHOT_MAX_HEADER_BYTES.',
  },
  malformed_http: {
    status: 400,
    type: 'invalid_request_error',
    code: null,
    message: (p: { problem: string }) => `The request is not valid HTTP (${p.problem}).`,
    doc: 'The request is not valid HTTP (bad framing, bad Content-Length, a bad %-escape in the path).',
  },
  missing_api_key: {
    status: 401,
    type: 'invalid_request_error',
    code: null,
    message: () =>
      "You didn't provide an API key. Provide it in an Authorization header using Bearer auth (Authorization: Bearer YOUR_KEY).",
    doc: 'No `Authorization: Bearer KEY` header, and keys are configured.',
  },
  invalid_api_key: {
    status: 401,
    type: 'invalid_request_error',
    code: 'invalid_api_key',
    message: (p: { maskedKey: string }) => `Incorrect API key provided: ${p.maskedKey}.`,
    doc: 'The key is not one of the configured keys.',
  },
  admin_key_required: {
    status: 403,
    type: 'invalid_request_error',
    code: 'admin_key_required',
    message: () => 'The admin API takes only the admin keys (EARSHOT_ADMIN_API_KEYS).',
    doc: 'Admin API: EARSHOT_ADMIN_API_KEYS is set and the key is not one of them.',
  },
  rate_limited: {
    status: 429,
    type: 'requests',
    code: 'rate_limit_exceeded',
    message: (p: { max: number; retryAfterSeconds: number }) =>
      `Rate limit reached: ${p.max} requests per minute. Please try again in ${p.retryAfterSeconds}s.`,
    doc: 'More requests per minute than EARSHOT_RATE_LIMIT_PER_MINUTE (`retry-after` says when to retry).',
  },
  too_many_auth_failures: {
    status: 429,
    type: 'requests',
    code: 'too_many_auth_failures',
    message: (p: { retryAfterSeconds: number }) =>
      `Too many failed API key checks from your address; please try again in ${p.retryAfterSeconds}s.`,
    doc: 'More failed API key checks from this address than EARSHOT_AUTH_FAILURES_PER_MINUTE (`retry-after` says when to retry).',
  },
  too_many_connections: {
    status: 429,
    type: 'requests',
    code: 'too_many_connections',
    message: (p: { max: number }) =>
      `Too many connections from your address (${p.max} open); close some or reuse them.`,
    doc: 'This address holds EARSHOT_MAX_CONNECTIONS_PER_ADDRESS connections open already; the new one is closed.',
  },
  server_overloaded: {
    status: 429,
    type: 'server_error',
    code: 'server_overloaded',
    message: (p: { model: string; queued: number; retryAfterSeconds: number }) =>
      `The server is overloaded: ${p.queued} jobs are waiting for model ${p.model}. Retry after ${p.retryAfterSeconds} s.`,
    doc: 'The model’s queue is full (EARSHOT_MAX_QUEUED_JOBS; `retry-after` says when to retry).',
  },
  too_many_uploads: {
    status: 429,
    type: 'server_error',
    code: 'too_many_uploads',
    message: (p: { max: number; retryAfterSeconds: number }) =>
      `Too many uploads in progress (${p.max}); please try again in ${p.retryAfterSeconds}s.`,
    doc: 'More uploads in progress than EARSHOT_MAX_CONCURRENT_UPLOADS (`retry-after` says when to retry).',
  },
  too_many_client_uploads: {
    status: 429,
    type: 'requests',
    code: 'too_many_client_uploads',
    message: (p: { uploads: number; retryAfterSeconds: number }) =>
      `You have ${p.uploads} uploads in progress, the most allowed per client; please try again in ${p.retryAfterSeconds}s.`,
    doc: 'This client has EARSHOT_MAX_CONCURRENT_UPLOADS_PER_CLIENT uploads in progress already (`retry-after` says when to retry).',
  },
  client_upload_limit: {
    status: 429,
    type: 'requests',
    code: 'client_upload_limit',
    message: (p: { held: number; max: number; retryAfterSeconds: number }) =>
      `Your uploads in progress hold ${p.held} bytes of the ${p.max} allowed per client; please try again in ${p.retryAfterSeconds}s.`,
    doc: 'This client’s uploads would hold more than EARSHOT_MAX_UPLOAD_DISK_BYTES_PER_CLIENT on disk (`retry-after`).',
  },
  upload_space_exhausted: {
    status: 503,
    type: 'server_error',
    code: 'upload_space_exhausted',
    message: (p: { retryAfterSeconds: number }) =>
      `The server's space for uploads is in use; please try again in ${p.retryAfterSeconds}s.`,
    doc: 'All uploads would hold more than EARSHOT_MAX_UPLOAD_DISK_BYTES on disk (`retry-after` says when to retry).',
  },
  unknown_parameter: {
    status: 400,
    type: 'invalid_request_error',
    code: 'unknown_parameter',
    message: (p: { param: string }) => `Unknown parameter: '${p.param}'.`,
    doc: 'Realtime: a field OpenAI does not define there (`param` names it).',
  },
  missing_parameter: {
    status: 400,
    type: 'invalid_request_error',
    code: 'missing_required_parameter',
    message: (p: { param: string }) => `Missing required parameter: '${p.param}'.`,
    doc: 'Realtime: a required field is missing (`param` names it).',
  },
  invalid_type: {
    status: 400,
    type: 'invalid_request_error',
    code: 'invalid_type',
    message: (p: { param: string; expected: string; got: string }) =>
      `Invalid type for '${p.param}': expected ${p.expected}, but got ${p.got} instead.`,
    doc: 'Realtime: a field has the wrong JSON type (`param` names it).',
  },
  integer_below_min_value: {
    status: 400,
    type: 'invalid_request_error',
    code: 'integer_below_min_value',
    message: outOfRange('integer', 'below minimum', '>='),
    doc: 'Realtime: a whole number below its range (`param` names it).',
  },
  integer_above_max_value: {
    status: 400,
    type: 'invalid_request_error',
    code: 'integer_above_max_value',
    message: outOfRange('integer', 'above maximum', '<='),
    doc: 'Realtime: a whole number above its range (`param` names it).',
  },
  decimal_below_min_value: {
    status: 400,
    type: 'invalid_request_error',
    code: 'decimal_below_min_value',
    message: outOfRange('decimal', 'below minimum', '>='),
    doc: 'Realtime: a number below its range (`param` names it).',
  },
  decimal_above_max_value: {
    status: 400,
    type: 'invalid_request_error',
    code: 'decimal_above_max_value',
    message: outOfRange('decimal', 'above maximum', '<='),
    doc: 'Realtime: a number above its range (`param` names it).',
  },
  string_above_max_length: {
    status: 400,
    type: 'invalid_request_error',
    code: 'string_above_max_length',
    message: (p: { param: string; max: number; length: number }) =>
      `Invalid '${p.param}': string too long. Expected a string with maximum length ${p.max}, but got a string with length ${p.length} instead.`,
    doc: 'Realtime: a text field is too long (`prompt`: 4096 characters).',
  },
  invalid_json: {
    status: 400,
    type: 'invalid_request_error',
    code: 'invalid_json',
    message: (p: { detail: string }) => `Invalid event: failed to parse JSON value. ${p.detail}`,
    doc: 'Realtime: a WebSocket message is not JSON.',
  },
  invalid_event: {
    status: 400,
    type: 'invalid_request_error',
    code: 'invalid_event',
    message: (p: { problem: 'binary' | 'not_object' }) =>
      p.problem === 'binary'
        ? 'Expected a text WebSocket message; binary frames are not supported.'
        : 'Invalid event: expected a JSON object with a `type`.',
    doc: 'Realtime: a binary WebSocket message, or JSON that is not an object.',
  },
  input_audio_buffer_commit_empty: {
    status: 400,
    type: 'invalid_request_error',
    code: 'input_audio_buffer_commit_empty',
    message: (p: { bufferedMs: number }) =>
      `Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, but buffer only has ${p.bufferedMs.toFixed(2)}ms of audio.`,
    doc: 'Realtime: `input_audio_buffer.commit` with less than 100 ms of audio in the buffer.',
  },
  turn_too_long: {
    status: 400,
    type: 'invalid_request_error',
    code: 'turn_too_long',
    message: (p: { maxSeconds: number }) =>
      `The input audio buffer is full: one turn holds at most ${p.maxSeconds} s of audio (EARSHOT_REALTIME_MAX_TURN_SECONDS). Commit or clear it before appending more; this audio was not added.`,
    doc: 'Realtime, turn detection off: an append would take the buffer past EARSHOT_REALTIME_MAX_TURN_SECONDS (with turn detection the turn is committed there instead).',
  },
  frame_too_large: {
    status: 413,
    type: 'invalid_request_error',
    code: 'frame_too_large',
    message: (p: { maxBytes: number }) =>
      `A WebSocket message is over ${p.maxBytes} bytes (EARSHOT_REALTIME_MAX_FRAME_BYTES); send the audio in smaller appends.`,
    doc: 'Realtime: a WebSocket message over EARSHOT_REALTIME_MAX_FRAME_BYTES; the socket is closed (1009).',
  },
  session_expired: {
    status: 400,
    type: 'invalid_request_error',
    code: 'session_expired',
    message: (p: { maxSeconds: number }) =>
      p.maxSeconds % 60 === 0
        ? `Your session hit the maximum duration of ${p.maxSeconds / 60} minutes.`
        : `Your session hit the maximum duration of ${p.maxSeconds} seconds.`,
    doc: 'Realtime: the session reached EARSHOT_REALTIME_MAX_SESSION_SECONDS (OpenAI’s wording); it is closed.',
  },
  session_idle_timeout: {
    status: 408,
    type: 'invalid_request_error',
    code: 'session_idle_timeout',
    message: (p: { idleSeconds: number }) =>
      `No client event for ${p.idleSeconds} s (EARSHOT_REALTIME_IDLE_SECONDS); the session is closed.`,
    doc: 'Realtime: no client event for EARSHOT_REALTIME_IDLE_SECONDS; the session is closed.',
  },
  too_many_sessions: {
    status: 429,
    type: 'server_error',
    code: 'too_many_sessions',
    message: (p: { max: number }) =>
      `${p.max} realtime sessions are open, the most this server takes (EARSHOT_REALTIME_MAX_SESSIONS); try again later.`,
    doc: 'Realtime: EARSHOT_REALTIME_MAX_SESSIONS sessions are open; the WebSocket upgrade is refused.',
  },
  invalid_client_secret: {
    status: 401,
    type: 'invalid_request_error',
    code: 'invalid_client_secret',
    message: (p: ClientSecretRefusal) => clientSecretMessage(p),
    doc: 'An ephemeral key that expired, has opened its session already, is unknown, or was sent anywhere but `GET /v1/realtime`.',
  },
  too_many_client_secrets: {
    status: 429,
    type: 'server_error',
    code: 'too_many_client_secrets',
    message: (p: { outstanding: number; retryAfterSeconds: number }) =>
      `${p.outstanding} ephemeral keys are waiting to be used, the most this server holds; try again in ${p.retryAfterSeconds}s.`,
    doc: 'Too many unused ephemeral keys are outstanding (`retry-after` says when one expires).',
  },
  not_found: {
    status: 404,
    type: 'invalid_request_error',
    code: null,
    message: (p: { method: string; path: string }) => `Unknown route: ${p.method} ${p.path}`,
    doc: 'No such route.',
  },
  model_not_loaded: {
    status: 404,
    type: 'invalid_request_error',
    code: 'model_not_loaded',
    message: (p: { model: string }) => `The model \`${p.model}\` is not loaded.`,
    doc: 'Admin API: the model is not loaded, so it cannot be unloaded.',
  },
  model_pinned: {
    status: 409,
    type: 'invalid_request_error',
    code: 'model_pinned',
    message: (p: { model: string }) =>
      `The model \`${p.model}\` is pinned (the default or preloaded) and stays loaded.`,
    doc: 'Admin API: the default and preloaded models stay loaded.',
  },
  model_load_failed: {
    status: 503,
    type: 'server_error',
    code: 'model_load_failed',
    message: (p: ModelLoadFailed) => modelLoadFailedMessage(p),
    doc: 'The model could not be loaded (missing files, no hub access, out of memory).',
  },
  server_not_ready: {
    status: 503,
    type: 'server_error',
    code: 'server_not_ready',
    message: (p: { whileReceiving: boolean }) =>
      p.whileReceiving
        ? 'The server is shutting down; retry on another instance or later.'
        : 'The server is shutting down.',
    doc: 'The server is shutting down.',
  },
  model_unloaded: {
    status: 503,
    type: 'server_error',
    code: 'model_unloaded',
    message: (p: { model: string; why: string }) =>
      `The model ${p.model} was unloaded (${p.why}) before this request finished; retry to load it again.`,
    doc: 'The model was unloaded (admin API, idle TTL, eviction) before the request finished; a retry loads it again.',
  },
  engine_crashed: {
    status: 500,
    type: 'server_error',
    code: 'engine_crashed',
    message: (p: { exit: string }) => `The engine worker stopped (${p.exit}) while transcribing; try again.`,
    doc: 'The engine worker died while running the request (it is restarted).',
  },
  job_timeout: {
    status: 504,
    type: 'server_error',
    code: 'job_timeout',
    message: (p: { timeoutMs: number }) => `The job took longer than ${p.timeoutMs} ms and was stopped.`,
    doc: 'The job ran past EARSHOT_JOB_TIMEOUT_MS; its worker was replaced.',
  },
  engine_error: {
    status: 500,
    type: 'server_error',
    code: 'engine_error',
    message: (p: { detail?: string }) =>
      p.detail === undefined
        ? 'The engine finished without describing the audio.'
        : `The engine failed on this request: ${p.detail}`,
    doc: 'The engine failed on this request.',
  },
  internal_error: {
    status: 500,
    type: 'server_error',
    code: 'internal_error',
    message: () => 'The server had an unexpected error; it has been logged.',
    doc: 'An unexpected fault in earshot (logged with the request id).',
  },
} as const satisfies Record<
  string,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each kind's own facts
  { status: number; type: string; code: string | null; message: (params: any) => string; doc: string }
>;

export type ErrorKind = keyof typeof errorKinds;

/** The facts a kind's message template takes (none for a fixed sentence). */
export type MessageParams<K extends ErrorKind> = Parameters<(typeof errorKinds)[K]['message']>;

export interface ApiErrorOptions {
  /** The request field the error is about (OpenAI's `param`). */
  param?: string | null;
  /** Seconds after which a retry may succeed (429s, 503s), sent as `retry-after`. */
  retryAfterSeconds?: number;
}

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export class ApiError<K extends ErrorKind = ErrorKind> extends Error {
  readonly status: number;
  readonly type: string;
  readonly code: string | null;
  readonly param: string | null;
  /** Seconds after which a retry may succeed (429s), sent as `retry-after`. */
  readonly retryAfterSeconds: number | undefined;

  constructor(
    /** earshot's own name for the error, for logs and tests; the wire carries `code`. */
    readonly kind: K,
    ...args: [...MessageParams<K>, ApiErrorOptions?]
  ) {
    const template = errorKinds[kind].message as (params?: unknown) => string;
    // A template without facts takes none: the options come first.
    const takesFacts = template.length > 0;
    const options = ((takesFacts ? args[1] : args[0]) ?? {}) as ApiErrorOptions;
    super(template(takesFacts ? args[0] : undefined));
    this.name = 'ApiError';
    this.status = errorKinds[kind].status;
    this.type = errorKinds[kind].type;
    this.code = errorKinds[kind].code;
    this.param = options.param ?? null;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }

  toJSON(): OpenAIErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}
