// Every error a client can receive, in one registry: its stable code, HTTP status and OpenAI error
// type. ApiError is the one class that carries them; the server's error handler is the one place
// that serialises it as OpenAI does: {"error": {"message", "type", "param", "code"}}.

export const errorCodes = {
  invalid_request: { status: 400, type: 'invalid_request_error', doc: 'The request body is not a valid form.' },
  missing_required_parameter: { status: 400, type: 'invalid_request_error', doc: 'A required field is missing.' },
  invalid_value: { status: 400, type: 'invalid_request_error', doc: 'A field has a value out of its range or set.' },
  unsupported_value: {
    status: 400,
    type: 'invalid_request_error',
    doc: 'A valid OpenAI value that earshot does not serve yet.',
  },
  invalid_audio: {
    status: 400,
    type: 'invalid_request_error',
    doc: 'The uploaded file could not be decoded as audio.',
  },
  file_too_large: { status: 413, type: 'invalid_request_error', doc: 'The upload is over the size limit.' },
  model_not_found: { status: 404, type: 'invalid_request_error', doc: 'No model of that name can be served.' },
  not_found: { status: 404, type: 'invalid_request_error', doc: 'No such route.' },
  model_load_failed: {
    status: 503,
    type: 'server_error',
    doc: 'The model could not be loaded (missing files, no hub access, out of memory).',
  },
  server_not_ready: { status: 503, type: 'server_error', doc: 'The server is starting or shutting down.' },
  engine_crashed: { status: 500, type: 'server_error', doc: 'The engine worker died while running the request.' },
  engine_error: { status: 500, type: 'server_error', doc: 'The engine failed on this request.' },
  internal_error: { status: 500, type: 'server_error', doc: 'An unexpected fault in earshot.' },
} as const satisfies Record<string, { status: number; type: string; doc: string }>;

export type ErrorCode = keyof typeof errorCodes;

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export class ApiError extends Error {
  readonly status: number;
  readonly type: string;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly param: string | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = errorCodes[code].status;
    this.type = errorCodes[code].type;
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
