// The API's description (GET /openapi.json, the page at /docs): the schemas each route declares for
// its request and answers, and the parts they share. @fastify/swagger assembles the document from the
// routes. Requests are validated by hand (openai/, realtime/), so that errors keep OpenAI's shape and
// wording, and answers are sent as built: these schemas describe, they never validate or serialize
// (app.ts). The audio routes' form fields come from the table their parser reads (formFieldSchemas),
// the error codes from the errors registry, so neither can drift from what the code does.
import { errorKinds, type ErrorKind } from '../api-errors.ts';
import type { PoolState } from '../engine/index.ts';
import { AUDIO_DURATION_HEADER } from '../openai/stream-events.ts';
import { formFieldSchemas, REQUIRED_FIELDS, type JsonSchema, type Task } from '../openai/transcription-request.ts';

/** A shared schema, by the id it is added to the app with (app.addSchema) and appears under in components. */
const ref = (id: string): JsonSchema => ({ $ref: `${id}#` });

const nullable = (type: string): JsonSchema => ({ type: [type, 'null'] });

const codes = [...new Set(Object.values(errorKinds).map((kind) => kind.code))];

const logprob: JsonSchema = {
  type: 'object',
  properties: {
    token: { type: 'string' },
    logprob: { type: 'number' },
    bytes: { type: 'array', items: { type: 'integer' } },
  },
  required: ['token', 'logprob', 'bytes'],
};

const usage: JsonSchema = {
  type: 'object',
  description: 'The audio, in whole seconds rounded up. Transcriptions only, as OpenAI.',
  properties: { type: { type: 'string', enum: ['duration'] }, seconds: { type: 'number' } },
  required: ['type', 'seconds'],
};

const word: JsonSchema = {
  type: 'object',
  properties: { word: { type: 'string' }, start: { type: 'number' }, end: { type: 'number' } },
  required: ['word', 'start', 'end'],
};

/** Every state a model's pool can be in: a new one fails to compile until it is described here. */
const POOL_STATES: Record<PoolState, string> = {
  loading: 'its workers are starting',
  ready: 'serving',
  failed: 'it could not be loaded (lastError says why)',
};

const poolStatus: JsonSchema = {
  type: 'object',
  description: 'A loaded model: its worker processes and their queue.',
  properties: {
    model: { type: 'string' },
    state: {
      type: 'string',
      enum: Object.keys(POOL_STATES),
      description: Object.entries(POOL_STATES)
        .map(([state, meaning]) => `${state}: ${meaning}`)
        .join('; '),
    },
    pinned: { type: 'boolean', description: 'The default or a preloaded model: never unloaded.' },
    idleSeconds: { type: 'number' },
    workers: { type: 'integer', description: 'Workers ready to serve.' },
    size: { type: 'integer', description: 'Workers configured (EARSHOT_WORKERS_PER_MODEL).' },
    queued: { type: 'integer' },
    running: { type: 'integer' },
    restarts: { type: 'integer' },
    maxQueued: { type: 'integer' },
    lastError: { type: 'string' },
  },
  required: ['model', 'state', 'pinned', 'workers', 'size', 'queued', 'running'],
};

/** The schemas the routes share, each with its `$id`: app.ts adds them before the routes. */
export const sharedSchemas: readonly JsonSchema[] = [
  {
    $id: 'ErrorResponse',
    description:
      "Every error, in OpenAI's shape. `code` is one of the codes below (null for some, as OpenAI sends); README's Errors table says when each is sent.",
    type: 'object',
    properties: {
      error: {
        type: 'object',
        properties: {
          message: { type: 'string' },
          type: { type: 'string', enum: [...new Set(Object.values(errorKinds).map((kind) => kind.type))] },
          param: { ...nullable('string'), description: 'The request field the error is about.' },
          code: { type: ['string', 'null'], enum: codes },
        },
        required: ['message', 'type', 'param', 'code'],
      },
    },
    required: ['error'],
  },
  {
    $id: 'Transcription',
    description: 'response_format json: the text, and the usage (transcriptions) and logprobs (include[]=logprobs).',
    type: 'object',
    properties: { text: { type: 'string' }, logprobs: { type: 'array', items: logprob }, usage },
    required: ['text'],
  },
  {
    $id: 'TranscriptionVerbose',
    description: 'response_format verbose_json.',
    type: 'object',
    properties: {
      task: { type: 'string', enum: ['transcribe', 'translate'] },
      language: { type: 'string', description: "The language's English name (english for translations)." },
      duration: { type: 'number', description: 'The audio, in seconds.' },
      text: { type: 'string' },
      segments: {
        type: 'array',
        description: 'With segment granularity (the default).',
        items: {
          type: 'object',
          properties: {
            id: { type: 'integer' },
            seek: { type: 'integer' },
            start: { type: 'number' },
            end: { type: 'number' },
            text: { type: 'string' },
            tokens: { type: 'array', items: { type: 'integer' } },
            temperature: { type: 'number' },
            avg_logprob: { type: 'number' },
            compression_ratio: { type: 'number' },
            no_speech_prob: { type: 'number' },
          },
          required: [
            'id',
            'seek',
            'start',
            'end',
            'text',
            'tokens',
            'temperature',
            'avg_logprob',
            'compression_ratio',
            'no_speech_prob',
          ],
        },
      },
      words: { type: 'array', description: 'With word granularity.', items: word },
      usage,
    },
    required: ['task', 'language', 'duration', 'text'],
  },
  {
    $id: 'TranscriptionDiarized',
    description:
      'response_format diarized_json: the text, and its segments split where the speaker changes, each with its speaker.',
    type: 'object',
    properties: {
      task: { type: 'string', enum: ['transcribe'] },
      duration: { type: 'number', description: 'The audio, in seconds.' },
      text: { type: 'string' },
      segments: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            type: { type: 'string', enum: ['transcript.text.segment'] },
            text: { type: 'string' },
            speaker: {
              type: 'string',
              description: 'A, B, … in order of first appearance, or a known speaker’s name.',
            },
            start: { type: 'number' },
            end: { type: 'number' },
            id: { type: 'string', description: 'seg_N, from 0.' },
          },
          required: ['type', 'text', 'speaker', 'start', 'end', 'id'],
        },
      },
      usage,
    },
    required: ['task', 'duration', 'text', 'segments'],
  },
  {
    $id: 'TranscriptTextDeltaEvent',
    description: 'A stream event: the next word of the text. Put together, the deltas are the done event’s text.',
    type: 'object',
    properties: {
      type: { type: 'string', enum: ['transcript.text.delta'] },
      delta: { type: 'string' },
      logprobs: { type: 'array', items: logprob },
    },
    required: ['type', 'delta'],
  },
  {
    $id: 'TranscriptTextSegmentEvent',
    description:
      "A stream event of diarized_json streams, instead of deltas: a speaker's part of a segment, as OpenAI's. Also of verbose_json streams (earshot extension): a decoded segment, after its deltas, without speaker. Its end, out of the x-audio-duration header, is how much of the audio is decoded.",
    type: 'object',
    properties: {
      type: { type: 'string', enum: ['transcript.text.segment'] },
      id: { type: 'string', description: 'seg_N, N as the diarized_json or verbose_json answer numbers the segment.' },
      start: { type: 'number' },
      end: { type: 'number' },
      text: { type: 'string' },
      speaker: { type: 'string', description: 'diarized_json streams only: A, B, … or a known speaker’s name.' },
      words: { type: 'array', items: word, description: 'verbose_json streams with word granularity.' },
    },
    required: ['type', 'id', 'start', 'end', 'text'],
  },
  {
    $id: 'TranscriptTextDoneEvent',
    description:
      'The last stream event, before `data: [DONE]`: the whole text and usage (a translation has none), logprobs if asked. In a verbose_json stream, the whole verbose_json answer (TranscriptionVerbose) with this type.',
    type: 'object',
    properties: {
      type: { type: 'string', enum: ['transcript.text.done'] },
      text: { type: 'string' },
      logprobs: { type: 'array', items: logprob },
      usage,
    },
    required: ['type', 'text'],
  },
  {
    $id: 'Model',
    type: 'object',
    properties: {
      id: { type: 'string' },
      object: { type: 'string', enum: ['model'] },
      created: { type: 'integer' },
      owned_by: { type: 'string' },
      state: {
        type: 'string',
        enum: ['loaded', 'loading', 'available', 'downloadable'],
        description:
          'earshot extension: loaded, loading, available (loads on first use), downloadable (from the hub, on first use).',
      },
    },
    required: ['id', 'object', 'created', 'owned_by'],
  },
  {
    $id: 'ModelList',
    type: 'object',
    properties: { object: { type: 'string', enum: ['list'] }, data: { type: 'array', items: ref('Model') } },
    required: ['object', 'data'],
  },
  { $id: 'ModelStatus', ...poolStatus },
];

/**
 * Error answers, by status, each listing the errors (kind, wire code, when) that route may send with
 * it. Every route may also get the errors of any request (malformed HTTP, overload, shutdown).
 */
export function errorResponses(kinds: readonly ErrorKind[]): Record<string, JsonSchema> {
  const byStatus = new Map<number, ErrorKind[]>();
  for (const kind of new Set<ErrorKind>([...kinds, ...ANY_REQUEST_ERRORS])) {
    const status = errorKinds[kind].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), kind]);
  }
  return Object.fromEntries(
    [...byStatus.entries()]
      .sort(([a], [b]) => a - b)
      .map(([status, ofStatus]) => [
        String(status),
        {
          description: ofStatus
            .map(
              (kind) =>
                `\`${errorKinds[kind].code ?? kind}\`${errorKinds[kind].code ? '' : ' (code null)'}: ${errorKinds[kind].doc}`,
            )
            .join('\n\n'),
          content: { 'application/json': { schema: ref('ErrorResponse') } },
        },
      ]),
  );
}

/** What any request may be answered with, whatever its route. */
const ANY_REQUEST_ERRORS: readonly ErrorKind[] = [
  'malformed_http',
  'headers_too_large',
  'request_timeout',
  'too_many_connections',
  'server_not_ready',
  'internal_error',
];

/** The errors of a route behind the API keys. */
export const KEY_ERRORS: readonly ErrorKind[] = [
  'missing_api_key',
  'invalid_api_key',
  'too_many_auth_failures',
  'rate_limited',
  'invalid_client_secret',
];

/** The security requirement of a route behind the keys (when keys are configured). */
export const BEARER = [{ bearerAuth: [] }];

const AUDIO_ERRORS: readonly ErrorKind[] = [
  ...KEY_ERRORS,
  'invalid_request',
  'missing_file',
  'missing_model',
  'invalid_value',
  'unsupported_value',
  'invalid_audio',
  'audio_too_short',
  'audio_too_long',
  'file_too_large',
  'form_too_large',
  'model_not_found',
  'upload_timeout',
  'server_overloaded',
  'too_many_uploads',
  'too_many_client_uploads',
  'client_upload_limit',
  'upload_space_exhausted',
  'model_load_failed',
  'model_unloaded',
  'engine_crashed',
  'job_timeout',
  'engine_error',
];

const STREAM_DESCRIPTION = [
  'With stream=true: server-sent events, one `data:` line each, then `data: [DONE]`.',
  '`transcript.text.delta` (TranscriptTextDeltaEvent) word by word as segments are decoded;',
  'in verbose_json streams also `transcript.text.segment` (TranscriptTextSegmentEvent) after each segment’s deltas;',
  'in diarized_json streams `transcript.text.segment` events with their speaker instead of deltas;',
  'then `transcript.text.done` (TranscriptTextDoneEvent). A failure after the stream began is sent as `data: {"error": …}` (ErrorResponse).',
].join(' ');

/** POST /v1/audio/transcriptions and /v1/audio/translations. */
export function audioRouteSchema(task: Task): JsonSchema {
  const translate = task === 'translate';
  return {
    tags: ['audio'],
    operationId: translate ? 'createTranslation' : 'createTranscription',
    summary: translate ? 'Speech in any language to English text' : 'Speech to text in its own language',
    description: translate
      ? "OpenAI's translations: the audio's speech, translated to English. earshot also streams them (stream=true)."
      : "OpenAI's transcriptions. Fields beyond OpenAI's are faster-whisper's knobs; unknown fields are accepted and logged.",
    security: BEARER,
    consumes: ['multipart/form-data'],
    body: {
      type: 'object',
      properties: formFieldSchemas(task),
      required: REQUIRED_FIELDS,
    },
    response: {
      200: {
        description: 'The transcript, in the response_format asked for.',
        headers: {
          [AUDIO_DURATION_HEADER]: {
            description:
              'Streams only (earshot extension): the audio’s duration in seconds, known as the stream starts.',
            schema: { type: 'number' },
          },
        },
        content: {
          'application/json': {
            schema: {
              oneOf: [
                ref('Transcription'),
                ref('TranscriptionVerbose'),
                ...(translate ? [] : [ref('TranscriptionDiarized')]),
              ],
            },
          },
          'text/plain': { schema: { type: 'string', description: 'text, srt or vtt, with a trailing newline.' } },
          'text/event-stream': { schema: { type: 'string', description: STREAM_DESCRIPTION } },
        },
      },
      ...errorResponses(translate ? AUDIO_ERRORS : [...AUDIO_ERRORS, 'invalid_language']),
    },
  };
}

const json = (schema: JsonSchema) => ({ 'application/json': { schema } });

/** The wildcard that holds a model name (OWNER/NAME has a "/": sent as is, or as %2F); the document names it `model`. */
export const MODEL_PARAM: JsonSchema = {
  type: 'object',
  properties: {
    '*': { type: 'string', description: 'A model name: an alias, a bundled name, a size name, OWNER/NAME.' },
  },
  required: ['*'],
};

/** GET /v1/models and GET /v1/models/{model}. */
export const modelSchemas = {
  list: {
    tags: ['models'],
    operationId: 'listModels',
    summary: 'The models this server serves without a download',
    security: BEARER,
    response: {
      200: { description: "OpenAI's model list, each with earshot's state.", content: json(ref('ModelList')) },
      ...errorResponses(KEY_ERRORS),
    },
  },
  retrieve: {
    tags: ['models'],
    operationId: 'retrieveModel',
    summary: 'One model, by any name a transcription accepts',
    security: BEARER,
    params: MODEL_PARAM,
    response: {
      200: { description: 'The model.', content: json(ref('Model')) },
      ...errorResponses([...KEY_ERRORS, 'model_not_found']),
    },
  },
};

const ADMIN_ERRORS: readonly ErrorKind[] = [...KEY_ERRORS, 'admin_key_required'];

/** The admin API: GET /api/ps, POST and DELETE /api/ps/{model}. */
export const adminSchemas = {
  list: {
    tags: ['admin'],
    operationId: 'listLoadedModels',
    summary: 'The loaded models and their workers',
    security: BEARER,
    response: {
      200: {
        description: 'Every loaded model.',
        content: json({
          type: 'object',
          properties: {
            object: { type: 'string', enum: ['list'] },
            data: { type: 'array', items: ref('ModelStatus') },
          },
          required: ['object', 'data'],
        }),
      },
      ...errorResponses(ADMIN_ERRORS),
    },
  },
  load: {
    tags: ['admin'],
    operationId: 'loadModel',
    summary: 'Load a model now',
    description:
      'Answers once the model has loaded. It stays until unloaded, idle past EARSHOT_MODEL_TTL_SECONDS, or evicted.',
    security: BEARER,
    params: MODEL_PARAM,
    response: {
      200: { description: 'It was loaded already.', content: json(ref('ModelStatus')) },
      201: { description: 'Loaded.', content: json(ref('ModelStatus')) },
      ...errorResponses([...ADMIN_ERRORS, 'model_not_found', 'model_load_failed']),
    },
  },
  unload: {
    tags: ['admin'],
    operationId: 'unloadModel',
    summary: 'Unload a model',
    description: "Waits while the model's running and waiting jobs finish (up to EARSHOT_SHUTDOWN_GRACE_MS).",
    security: BEARER,
    params: MODEL_PARAM,
    response: {
      200: {
        description: 'Unloaded: how its jobs ended.',
        content: json({
          type: 'object',
          properties: {
            model: { type: 'string' },
            unloaded: { type: 'boolean', enum: [true] },
            finished: { type: 'integer' },
            refused: { type: 'integer' },
            interrupted: { type: 'integer' },
          },
          required: ['model', 'unloaded'],
        }),
      },
      ...errorResponses([...ADMIN_ERRORS, 'model_not_found', 'model_not_loaded', 'model_pinned']),
    },
  },
};

const health: JsonSchema = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['ok', 'loading'] },
    defaultModel: { type: 'string' },
    reason: { type: 'string', description: 'Why it cannot serve yet.' },
    models: { type: 'array', items: ref('ModelStatus') },
  },
  required: ['status', 'defaultModel', 'models'],
};
const ready: JsonSchema = {
  type: 'object',
  properties: { status: { type: 'string', enum: ['ready', 'not ready'] }, reason: { type: 'string' } },
  required: ['status'],
};

/** GET /health, /ready, /metrics: public or behind the keys, as configured (EARSHOT_PUBLIC_*). */
export const operationSchemas = {
  health: {
    tags: ['operations'],
    operationId: 'health',
    summary: 'Alive, and the default model can serve',
    response: {
      200: { description: 'The default model serves.', content: json(health) },
      503: { description: 'Loading (or reloading): `reason` says why it cannot serve yet.', content: json(health) },
    },
  },
  ready: {
    tags: ['operations'],
    operationId: 'ready',
    summary: 'For load balancers: the default model serves and its queue has room',
    response: {
      200: { description: 'Send requests here.', content: json(ready) },
      503: { description: 'Not now: `reason` says why.', content: json(ready) },
    },
  },
  metrics: {
    tags: ['operations'],
    operationId: 'metrics',
    summary: 'Prometheus metrics',
    security: BEARER,
    response: {
      200: { description: 'The Prometheus text format.', content: { 'text/plain': { schema: { type: 'string' } } } },
      ...errorResponses(KEY_ERRORS),
    },
  },
};

const REALTIME_VALIDATION_ERRORS: readonly ErrorKind[] = [
  'invalid_request',
  'unknown_parameter',
  'missing_parameter',
  'invalid_type',
  'invalid_value',
  'unsupported_value',
  'integer_below_min_value',
  'integer_above_max_value',
  'decimal_below_min_value',
  'decimal_above_max_value',
  'string_above_max_length',
];

const SECRET_ERRORS: readonly ErrorKind[] = [
  ...KEY_ERRORS,
  ...REALTIME_VALIDATION_ERRORS,
  'model_not_found',
  'too_many_client_secrets',
];

const session: JsonSchema = {
  type: 'object',
  description:
    "A transcription session's configuration, as a session.update sets it (README, Live transcription): audio input format, transcription model, language and prompt, turn detection, noise reduction, include.",
  additionalProperties: true,
};

/** POST /v1/realtime/client_secrets (GA) and /v1/realtime/transcription_sessions (beta). */
export const realtimeSecretSchemas = {
  clientSecrets: {
    tags: ['realtime'],
    operationId: 'createRealtimeClientSecret',
    summary: 'A short-lived key that opens one transcription session (GA)',
    security: BEARER,
    body: {
      type: 'object',
      properties: {
        expires_after: {
          type: 'object',
          properties: {
            anchor: { type: 'string', enum: ['created_at'] },
            seconds: { type: 'integer', minimum: 10, maximum: 7200 },
          },
        },
        session,
      },
      additionalProperties: false,
    },
    response: {
      200: {
        description: 'The key (`ek_…`) and the session it opens.',
        content: json({
          type: 'object',
          properties: { value: { type: 'string' }, expires_at: { type: 'integer' }, session },
          required: ['value', 'expires_at', 'session'],
        }),
      },
      ...errorResponses(SECRET_ERRORS),
    },
  },
  transcriptionSessions: {
    tags: ['realtime'],
    operationId: 'createRealtimeTranscriptionSession',
    summary: 'A short-lived key that opens one transcription session (beta)',
    security: BEARER,
    body: {
      ...session,
      description: "The beta's flat session; `client_secret.expires_at` asks for the key's lifetime.",
    },
    response: {
      200: {
        description: 'The session, with the key as `client_secret: {value, expires_at}`.',
        content: json({
          type: 'object',
          properties: {
            client_secret: {
              type: 'object',
              properties: { value: { type: 'string' }, expires_at: { type: 'integer' } },
              required: ['value', 'expires_at'],
            },
          },
          required: ['client_secret'],
          additionalProperties: true,
        }),
      },
      ...errorResponses(SECRET_ERRORS),
    },
  },
};

/** GET /v1/realtime: a WebSocket upgrade, which OpenAPI can only describe as its handshake. */
export const realtimeSchema: JsonSchema = {
  tags: ['realtime'],
  operationId: 'realtimeTranscriptionSession',
  summary: 'Live transcription: a WebSocket (OpenAI’s Realtime API, transcription sessions)',
  description: [
    'Upgrade to a WebSocket (`Connection: Upgrade`, `Upgrade: websocket`). Then JSON events both ways, as OpenAI’s Realtime API for transcription sessions:',
    'the client sends `session.update` (or the beta `transcription_session.update`), `input_audio_buffer.append` (base64 audio), `input_audio_buffer.commit` and `input_audio_buffer.clear`;',
    'the server sends `session.created`/`session.updated`, `input_audio_buffer.speech_started`/`speech_stopped`/`committed`/`cleared`, `conversation.item.added`/`done`,',
    '`conversation.item.input_audio_transcription.delta` (words while the speaker talks) and `.completed` (each turn), and `error` events in OpenAI’s shape (ErrorResponse’s `error`, with `event_id`).',
    'A key comes as `Authorization: Bearer KEY`, or in the subprotocol `openai-insecure-api-key.KEY` (browsers), or as an ephemeral `ek_…` key from POST /v1/realtime/client_secrets. README, "Live transcription", has the details.',
  ].join(' '),
  security: BEARER,
  querystring: {
    type: 'object',
    properties: {
      intent: {
        type: 'string',
        enum: ['transcription'],
        description: 'Any other intent is refused: earshot serves transcription sessions only.',
      },
      model: { type: 'string', description: 'The transcription model, when the session does not name one.' },
    },
  },
  headers: {
    type: 'object',
    properties: {
      'sec-websocket-protocol': {
        type: 'string',
        description: '`realtime`, `openai-insecure-api-key.KEY`, `openai-beta.realtime-v1` (the beta events).',
      },
    },
  },
  response: {
    101: { description: 'Switching Protocols: the session is open, and the server sends `session.created`.' },
    ...errorResponses([...KEY_ERRORS, 'too_many_sessions']),
  },
};
