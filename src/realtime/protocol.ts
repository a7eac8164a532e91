// OpenAI's realtime transcription protocol, no I/O: client events parsed and validated field by field
// (GA `session.update` with `session.type: "transcription"`, and the beta `transcription_session.update`)
// into one normalised SessionConfig, and every server event a session sends, built by typed functions so
// that session code cannot get a shape wrong. The reference is the SDKs' own types (npm `openai`:
// resources/realtime, resources/beta/realtime; Python: openai/types/realtime, types/beta/realtime) and,
// where a recording of api.openai.com's traffic shows more (nulls for unset fields, the item events of a
// commit, error codes and wording), that recording. test/unit/realtime-protocol.test.ts checks the built
// events against the npm SDK's types at compile time.
import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { ApiError } from '../api-errors.ts';
import type { TokenLogprob } from '../engine/index.ts';
import { normaliseLanguage } from '../openai/languages.ts';
import type { InputAudioFormat } from './audio.ts';

// ---------------------------------------------------------------------------------------------------
// The normalised session

/** Which names and shapes a session answers in: GA (`session.*`) or beta (`transcription_session.*`). */
export type Dialect = 'ga' | 'beta';
export type Eagerness = 'low' | 'medium' | 'high' | 'auto';
export type NoiseReduction = 'near_field' | 'far_field';

export interface TurnDetectionConfig {
  /** Speech probability at or above which a chunk counts as speech (0–1). */
  threshold: number;
  /** Audio kept before the detected start of speech, in ms. */
  prefixPaddingMs: number;
  /** Silence that ends a turn, in ms. */
  silenceDurationMs: number;
  /** What the client asked for: semantic_vad is served by server VAD with a silence from its eagerness. */
  from: 'server_vad' | 'semantic_vad';
  /** semantic_vad only: the eagerness asked for (echoed back in the session object). */
  eagerness?: Eagerness;
}

export interface SessionConfig {
  inputFormat: InputAudioFormat;
  /** Transcription model as the client named it; undefined = the server's default. */
  model: string | undefined;
  /** ISO-639-1 code (normalised); undefined = detect. */
  language: string | undefined;
  prompt: string | undefined;
  /** null: turn detection off, the client commits. */
  turnDetection: TurnDetectionConfig | null;
  /** Accepted and echoed; earshot applies no noise reduction. */
  noiseReduction: NoiseReduction | null;
  includeLogprobs: boolean;
}

/**
 * OpenAI's documented server_vad defaults (the SDK types: threshold 0.5, prefix_padding_ms 300,
 * silence_duration_ms 500). api.openai.com's transcription sessions were recorded starting with a
 * 200 ms silence; earshot keeps the documented 500 ms, which does not end a turn at every short pause.
 */
export const SERVER_VAD_DEFAULTS = { threshold: 0.5, prefixPaddingMs: 300, silenceDurationMs: 500 } as const;

/**
 * semantic_vad served as server VAD: its eagerness becomes the silence that ends a turn. OpenAI says
 * low waits longer and high answers sooner, with at most 8 s, 4 s and 2 s for low, medium and high,
 * and auto is medium. A semantic model ends a finished sentence well before those bounds; a silence
 * detector cannot tell a finished sentence, so it gets a fixed silence well under them.
 */
export const SEMANTIC_VAD_SILENCE_MS: Readonly<Record<Eagerness, number>> = {
  high: 500,
  medium: 1000,
  auto: 1000,
  low: 2000,
};

export const DEFAULT_SESSION_CONFIG: Readonly<SessionConfig> = Object.freeze({
  inputFormat: 'audio/pcm',
  model: undefined,
  language: undefined,
  prompt: undefined,
  turnDetection: Object.freeze({ ...SERVER_VAD_DEFAULTS, from: 'server_vad' as const }),
  noiseReduction: null,
  includeLogprobs: false,
});

/** Whisper reads at most the last 223 tokens of a prompt; this bounds what a session holds. */
export const MAX_PROMPT_CHARACTERS = 4096;
const MS_RANGE = { min: 0, max: 10_000 };
/** OpenAI's range for an ephemeral key's lifetime. */
export const CLIENT_SECRET_SECONDS = { min: 10, max: 7200 } as const;
const LOGPROBS_INCLUDE = 'item.input_audio_transcription.logprobs';

// ---------------------------------------------------------------------------------------------------
// Field-by-field validation: every failure is an ApiError whose `param` is the field's path

type JsonObject = Record<string, unknown>;

const at = (base: string, key: string) => (base === '' ? key : `${base}.${key}`);

function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'an integer' : 'a decimal';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}

function objectAt(value: unknown, param: string): JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ApiError('invalid_type', { param, expected: 'an object', got: jsonType(value) }, { param });
  }
  return value as JsonObject;
}

function onlyKnown(object: JsonObject, base: string, known: readonly string[]): void {
  for (const key of Object.keys(object)) {
    if (!known.includes(key))
      throw new ApiError('unknown_parameter', { param: at(base, key) }, { param: at(base, key) });
  }
}

function stringAt(value: unknown, param: string): string {
  if (typeof value !== 'string') {
    throw new ApiError('invalid_type', { param, expected: 'a string', got: jsonType(value) }, { param });
  }
  return value;
}

function booleanAt(value: unknown, param: string): boolean {
  if (typeof value !== 'boolean') {
    throw new ApiError('invalid_type', { param, expected: 'a boolean', got: jsonType(value) }, { param });
  }
  return value;
}

/** "'a', 'b', and 'c'", as OpenAI lists supported values. */
function listed(values: readonly string[]): string {
  const quoted = values.map((value) => `'${value}'`);
  return quoted.length <= 2 ? quoted.join(' and ') : `${quoted.slice(0, -1).join(', ')}, and ${quoted.at(-1)}`;
}

function oneOfAt<T extends string>(value: unknown, param: string, choices: readonly T[]): T {
  const text = stringAt(value, param);
  if (!(choices as readonly string[]).includes(text)) {
    throw new ApiError(
      'invalid_value',
      { detail: `Invalid value: '${text}'. Supported values are: ${listed(choices)}.` },
      { param },
    );
  }
  return text as T;
}

function numberAt(value: unknown, param: string, kind: 'integer' | 'decimal', min: number, max: number): number {
  const valid = typeof value === 'number' && Number.isFinite(value) && (kind === 'decimal' || Number.isInteger(value));
  if (!valid) {
    throw new ApiError(
      'invalid_type',
      { param, expected: `${kind === 'integer' ? 'an' : 'a'} ${kind}`, got: jsonType(value) },
      { param },
    );
  }
  if (value < min) throw new ApiError(`${kind}_below_min_value`, { param, limit: min, value }, { param });
  if (value > max) throw new ApiError(`${kind}_above_max_value`, { param, limit: max, value }, { param });
  return value;
}

/** Fields OpenAI defines for conversation sessions that do nothing in a transcription session. */
function ignoredBoolean(object: JsonObject, base: string, key: string): void {
  if (object[key] !== undefined) booleanAt(object[key], at(base, key));
}

// ---------------------------------------------------------------------------------------------------
// Session fields, GA and beta: each nested object given replaces the old one whole (as OpenAI does:
// an update naming only the transcription model resets its language and prompt)

interface Transcription {
  model: string | undefined;
  language: string | undefined;
  prompt: string | undefined;
}

/** GA `audio.input.transcription`, beta `input_audio_transcription`; null: the server's defaults. */
function parseTranscription(value: unknown, base: string): Transcription {
  if (value === null) return { model: undefined, language: undefined, prompt: undefined };
  const object = objectAt(value, base);
  // `delay` tunes gpt-realtime-whisper's latency: accepted, nothing here to tune.
  onlyKnown(object, base, ['model', 'language', 'prompt', 'delay']);
  if (object.delay !== undefined)
    oneOfAt(object.delay, at(base, 'delay'), ['minimal', 'low', 'medium', 'high', 'xhigh']);
  const model = object.model === undefined ? '' : stringAt(object.model, at(base, 'model')).trim();
  let language: string | undefined;
  if (object.language !== undefined && object.language !== null) {
    const raw = stringAt(object.language, at(base, 'language'));
    if (raw.trim() !== '') {
      language = normaliseLanguage(raw);
      if (language === undefined) {
        throw new ApiError('invalid_language', { language: raw }, { param: at(base, 'language') });
      }
    }
  }
  let prompt: string | undefined;
  if (object.prompt !== undefined && object.prompt !== null) {
    prompt = stringAt(object.prompt, at(base, 'prompt'));
    if (prompt.length > MAX_PROMPT_CHARACTERS) {
      const param = at(base, 'prompt');
      throw new ApiError(
        'string_above_max_length',
        { param, max: MAX_PROMPT_CHARACTERS, length: prompt.length },
        { param },
      );
    }
  }
  return { model: model || undefined, language, prompt: prompt || undefined };
}

/**
 * GA `audio.input.turn_detection`, beta `turn_detection`. GA requires `type`; the beta types leave it
 * optional (server_vad). Fields of the other mode are refused; OpenAI's fields for conversation
 * sessions (create_response, interrupt_response, idle_timeout_ms) are checked and ignored.
 */
function parseTurnDetection(value: unknown, base: string, typeRequired: boolean): TurnDetectionConfig | null {
  if (value === null) return null;
  const object = objectAt(value, base);
  if (object.type === undefined && typeRequired) {
    throw new ApiError('missing_parameter', { param: at(base, 'type') }, { param: at(base, 'type') });
  }
  const type =
    object.type === undefined ? 'server_vad' : oneOfAt(object.type, at(base, 'type'), ['server_vad', 'semantic_vad']);
  ignoredBoolean(object, base, 'create_response');
  ignoredBoolean(object, base, 'interrupt_response');
  if (type === 'semantic_vad') {
    onlyKnown(object, base, ['type', 'eagerness', 'create_response', 'interrupt_response']);
    const eagerness =
      object.eagerness === undefined
        ? 'auto'
        : oneOfAt(object.eagerness, at(base, 'eagerness'), ['low', 'medium', 'high', 'auto']);
    return {
      threshold: SERVER_VAD_DEFAULTS.threshold,
      prefixPaddingMs: SERVER_VAD_DEFAULTS.prefixPaddingMs,
      silenceDurationMs: SEMANTIC_VAD_SILENCE_MS[eagerness],
      from: 'semantic_vad',
      eagerness,
    };
  }
  onlyKnown(object, base, [
    'type',
    'threshold',
    'prefix_padding_ms',
    'silence_duration_ms',
    'create_response',
    'interrupt_response',
    'idle_timeout_ms',
  ]);
  if (object.idle_timeout_ms !== undefined && object.idle_timeout_ms !== null) {
    numberAt(object.idle_timeout_ms, at(base, 'idle_timeout_ms'), 'integer', 0, Number.MAX_SAFE_INTEGER);
  }
  const field = (key: string, kind: 'integer' | 'decimal', min: number, max: number, fallback: number) =>
    object[key] === undefined ? fallback : numberAt(object[key], at(base, key), kind, min, max);
  return {
    threshold: field('threshold', 'decimal', 0, 1, SERVER_VAD_DEFAULTS.threshold),
    prefixPaddingMs: field(
      'prefix_padding_ms',
      'integer',
      MS_RANGE.min,
      MS_RANGE.max,
      SERVER_VAD_DEFAULTS.prefixPaddingMs,
    ),
    silenceDurationMs: field(
      'silence_duration_ms',
      'integer',
      MS_RANGE.min,
      MS_RANGE.max,
      SERVER_VAD_DEFAULTS.silenceDurationMs,
    ),
    from: 'server_vad',
  };
}

/** `{type?}` or null. An object without a type asks for noise reduction: the near-field kind. */
function parseNoiseReduction(value: unknown, base: string): NoiseReduction | null {
  if (value === null) return null;
  const object = objectAt(value, base);
  onlyKnown(object, base, ['type']);
  return object.type === undefined
    ? 'near_field'
    : oneOfAt<NoiseReduction>(object.type, at(base, 'type'), ['near_field', 'far_field']);
}

function parseInclude(value: unknown, base: string): boolean {
  if (value === null) return false;
  if (!Array.isArray(value)) {
    throw new ApiError('invalid_type', { param: base, expected: 'an array', got: jsonType(value) }, { param: base });
  }
  value.forEach((item, index) => oneOfAt(item, `${base}[${index}]`, [LOGPROBS_INCLUDE]));
  return value.length > 0;
}

/** GA `audio.input.format`: `{type: 'audio/pcm', rate: 24000}` (either may be left out), pcmu, pcma. */
function parseGaFormat(value: unknown, base: string): InputAudioFormat {
  const object = objectAt(value, base);
  const type =
    object.type === undefined
      ? 'audio/pcm'
      : oneOfAt(object.type, at(base, 'type'), ['audio/pcm', 'audio/pcmu', 'audio/pcma']);
  onlyKnown(object, base, type === 'audio/pcm' ? ['type', 'rate'] : ['type']);
  // OpenAI takes 24 kHz PCM only, and says so with its range codes (recorded: 16000 → "Expected a
  // value >= 24000"): a client sending 16 kHz audio must hear of it, not be transcribed at 1.5x speed.
  if (object.rate !== undefined) numberAt(object.rate, at(base, 'rate'), 'integer', 24_000, 24_000);
  return type;
}

const BETA_FORMATS = { pcm16: 'audio/pcm', g711_ulaw: 'audio/pcmu', g711_alaw: 'audio/pcma' } as const;
type BetaFormat = keyof typeof BETA_FORMATS;

function applyGaSession(current: SessionConfig, value: unknown, base: string): SessionConfig {
  const session = objectAt(value, base);
  if (session.type === undefined)
    throw new ApiError('missing_parameter', { param: at(base, 'type') }, { param: at(base, 'type') });
  const type = oneOfAt(session.type, at(base, 'type'), ['realtime', 'transcription']);
  if (type === 'realtime') {
    throw new ApiError('unsupported_value', { asked: 'conversation_session' }, { param: at(base, 'type') });
  }
  onlyKnown(session, base, ['type', 'audio', 'include']);
  const next: SessionConfig = { ...current };
  if (session.include !== undefined) next.includeLogprobs = parseInclude(session.include, at(base, 'include'));
  if (session.audio === undefined) return next;
  const audioBase = at(base, 'audio');
  const audio = objectAt(session.audio, audioBase);
  onlyKnown(audio, audioBase, ['input']);
  if (audio.input === undefined) return next;
  const inputBase = at(audioBase, 'input');
  const input = objectAt(audio.input, inputBase);
  onlyKnown(input, inputBase, ['format', 'transcription', 'turn_detection', 'noise_reduction']);
  if (input.format !== undefined) next.inputFormat = parseGaFormat(input.format, at(inputBase, 'format'));
  if (input.transcription !== undefined)
    Object.assign(next, parseTranscription(input.transcription, at(inputBase, 'transcription')));
  if (input.turn_detection !== undefined)
    next.turnDetection = parseTurnDetection(input.turn_detection, at(inputBase, 'turn_detection'), true);
  if (input.noise_reduction !== undefined)
    next.noiseReduction = parseNoiseReduction(input.noise_reduction, at(inputBase, 'noise_reduction'));
  return next;
}

const BETA_SESSION_FIELDS = [
  'input_audio_format',
  'input_audio_transcription',
  'turn_detection',
  'input_audio_noise_reduction',
  'include',
  'modalities',
  'client_secret',
] as const;

/** The beta flat session (the WebSocket's `transcription_session.update` and the REST body alike). */
function applyBetaSession(current: SessionConfig, session: JsonObject, base: string): SessionConfig {
  onlyKnown(session, base, BETA_SESSION_FIELDS);
  const next: SessionConfig = { ...current };
  if (session.input_audio_format !== undefined) {
    const format = oneOfAt<BetaFormat>(session.input_audio_format, at(base, 'input_audio_format'), [
      'pcm16',
      'g711_ulaw',
      'g711_alaw',
    ]);
    next.inputFormat = BETA_FORMATS[format];
  }
  if (session.input_audio_transcription !== undefined) {
    Object.assign(next, parseTranscription(session.input_audio_transcription, at(base, 'input_audio_transcription')));
  }
  if (session.turn_detection !== undefined)
    next.turnDetection = parseTurnDetection(session.turn_detection, at(base, 'turn_detection'), false);
  if (session.input_audio_noise_reduction !== undefined) {
    next.noiseReduction = parseNoiseReduction(
      session.input_audio_noise_reduction,
      at(base, 'input_audio_noise_reduction'),
    );
  }
  if (session.include !== undefined) next.includeLogprobs = parseInclude(session.include, at(base, 'include'));
  // What a session answers is text: modalities are checked and ignored.
  if (session.modalities !== undefined && session.modalities !== null) {
    const param = at(base, 'modalities');
    if (!Array.isArray(session.modalities)) {
      throw new ApiError('invalid_type', { param, expected: 'an array', got: jsonType(session.modalities) }, { param });
    }
    session.modalities.forEach((item, index) => oneOfAt(item, `${param}[${index}]`, ['text', 'audio']));
  }
  return next;
}

/** `{anchor?: 'created_at', seconds?}` (GA `expires_after`, beta `client_secret.expires_at`). */
function parseExpiry(value: unknown, base: string): number | undefined {
  const object = objectAt(value, base);
  onlyKnown(object, base, ['anchor', 'seconds']);
  if (object.anchor !== undefined) oneOfAt(object.anchor, at(base, 'anchor'), ['created_at']);
  return object.seconds === undefined
    ? undefined
    : numberAt(object.seconds, at(base, 'seconds'), 'integer', CLIENT_SECRET_SECONDS.min, CLIENT_SECRET_SECONDS.max);
}

// ---------------------------------------------------------------------------------------------------
// Client events

export type ClientEvent =
  /** GA or beta update, already applied to the session's config: `config` is the whole new config. */
  | { type: 'session.update'; eventId: string | undefined; dialect: Dialect; config: SessionConfig }
  | { type: 'input_audio_buffer.append'; eventId: string | undefined; audio: string }
  | { type: 'input_audio_buffer.commit'; eventId: string | undefined }
  | { type: 'input_audio_buffer.clear'; eventId: string | undefined };

export type ClientEventResult =
  | { ok: true; event: ClientEvent }
  | {
      ok: false;
      error: ApiError;
      /** The client event's own event_id, echoed in the error event. */
      eventId: string | undefined;
      /** The session cannot go on (a conversation session was asked for): send the error, then close. */
      closeSession: boolean;
    };

const SUPPORTED_EVENTS = [
  'session.update',
  'transcription_session.update',
  'input_audio_buffer.append',
  'input_audio_buffer.commit',
  'input_audio_buffer.clear',
] as const;

/** OpenAI's other client events: they are for conversation (and translation) sessions. */
const CONVERSATION_EVENTS: ReadonlySet<string> = new Set([
  'conversation.item.create',
  'conversation.item.delete',
  'conversation.item.retrieve',
  'conversation.item.truncate',
  'response.create',
  'response.cancel',
  'output_audio_buffer.clear',
  'session.close',
  'session.input_audio_buffer.append',
]);

/**
 * One text WebSocket message of a session whose config is `current`. A refused session.update leaves
 * the config as it was: the result carries a new config only when the whole update is valid.
 */
export function parseClientEvent(text: string, current: SessionConfig): ClientEventResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return refused(new ApiError('invalid_json', { detail: (error as Error).message }), undefined);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return refused(new ApiError('invalid_event', { problem: 'not_object' }), undefined);
  }
  const event = value as JsonObject;
  const eventId = typeof event.event_id === 'string' ? event.event_id : undefined;
  try {
    return { ok: true, event: clientEvent(event, eventId, current) };
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    const apiError = error as ApiError;
    const closeSession = apiError.kind === 'unsupported_value' && apiError.param === 'session.type';
    return refused(apiError, eventId, closeSession);
  }
}

function refused(error: ApiError, eventId: string | undefined, closeSession = false): ClientEventResult {
  return { ok: false, error, eventId, closeSession };
}

/** A binary WebSocket message: every client event is JSON text. */
export function binaryFrameError(): ApiError {
  return new ApiError('invalid_event', { problem: 'binary' });
}

function clientEvent(event: JsonObject, eventId: string | undefined, current: SessionConfig): ClientEvent {
  if (event.type === undefined) throw new ApiError('missing_parameter', { param: 'type' }, { param: 'type' });
  const type = stringAt(event.type, 'type');
  if (event.event_id !== undefined) stringAt(event.event_id, 'event_id');
  if (CONVERSATION_EVENTS.has(type)) {
    throw new ApiError('unsupported_value', { asked: 'client_event', type }, { param: 'type' });
  }
  switch (oneOfAt(type, 'type', SUPPORTED_EVENTS)) {
    case 'session.update':
      onlyKnown(event, '', ['type', 'event_id', 'session']);
      if (event.session === undefined)
        throw new ApiError('missing_parameter', { param: 'session' }, { param: 'session' });
      return {
        type: 'session.update',
        eventId,
        dialect: 'ga',
        config: applyGaSession(current, event.session, 'session'),
      };
    case 'transcription_session.update': {
      onlyKnown(event, '', ['type', 'event_id', 'session']);
      if (event.session === undefined)
        throw new ApiError('missing_parameter', { param: 'session' }, { param: 'session' });
      const session = objectAt(event.session, 'session');
      return {
        type: 'session.update',
        eventId,
        dialect: 'beta',
        config: applyBetaSession(current, session, 'session'),
      };
    }
    case 'input_audio_buffer.append':
      onlyKnown(event, '', ['type', 'event_id', 'audio']);
      if (event.audio === undefined) throw new ApiError('missing_parameter', { param: 'audio' }, { param: 'audio' });
      return { type: 'input_audio_buffer.append', eventId, audio: stringAt(event.audio, 'audio') };
    case 'input_audio_buffer.commit':
    case 'input_audio_buffer.clear':
      onlyKnown(event, '', ['type', 'event_id']);
      return { type: type as 'input_audio_buffer.commit' | 'input_audio_buffer.clear', eventId };
  }
}

// ---------------------------------------------------------------------------------------------------
// REST bodies that mint an ephemeral key (the session the key opens starts with their config)

export interface ClientSecretRequest {
  config: SessionConfig;
  /** The dialect the minting route speaks; a hint for the session the key opens. */
  dialect: Dialect;
  /** The key's lifetime asked for (10–7200 s); undefined: the server's default. */
  expiresAfterSeconds: number | undefined;
}

/** GA `POST /v1/realtime/client_secrets`: `{expires_after?, session?}` (a missing body is `{}`). */
export function parseClientSecretRequest(body: unknown): ClientSecretRequest {
  const object = body === undefined || body === null ? {} : objectAt(body, 'body');
  onlyKnown(object, '', ['expires_after', 'session']);
  return {
    config:
      object.session === undefined
        ? { ...DEFAULT_SESSION_CONFIG }
        : applyGaSession({ ...DEFAULT_SESSION_CONFIG }, object.session, 'session'),
    dialect: 'ga',
    expiresAfterSeconds:
      object.expires_after === undefined ? undefined : parseExpiry(object.expires_after, 'expires_after'),
  };
}

/** Beta `POST /v1/realtime/transcription_sessions`: the flat session, `client_secret.expires_at` for the key. */
export function parseTranscriptionSessionRequest(body: unknown): ClientSecretRequest {
  const object = body === undefined || body === null ? {} : objectAt(body, 'body');
  const config = applyBetaSession({ ...DEFAULT_SESSION_CONFIG }, object, '');
  let expiresAfterSeconds: number | undefined;
  if (object.client_secret !== undefined && object.client_secret !== null) {
    const secret = objectAt(object.client_secret, 'client_secret');
    onlyKnown(secret, 'client_secret', ['expires_at']);
    if (secret.expires_at !== undefined)
      expiresAfterSeconds = parseExpiry(secret.expires_at, 'client_secret.expires_at');
  }
  return { config, dialect: 'beta', expiresAfterSeconds };
}

// ---------------------------------------------------------------------------------------------------
// The WebSocket handshake: subprotocols and dialect

/** The subprotocol that carries an API key (browsers cannot set headers): `openai-insecure-api-key.KEY`. */
const API_KEY_SUBPROTOCOL = 'openai-insecure-api-key.';
const BETA_SUBPROTOCOL = 'openai-beta.realtime-v1';

/** The subprotocols a client offers in `Sec-WebSocket-Protocol`, in order. */
export function offeredSubprotocols(header: string | string[] | undefined): string[] {
  const joined = Array.isArray(header) ? header.join(',') : (header ?? '');
  return joined
    .split(',')
    .map((protocol) => protocol.trim())
    .filter(Boolean);
}

/** The API key (or ephemeral key) a client sends as the `openai-insecure-api-key.KEY` subprotocol. */
export function subprotocolApiKey(header: string | string[] | undefined): string | undefined {
  const offered = offeredSubprotocols(header).find((protocol) => protocol.startsWith(API_KEY_SUBPROTOCOL));
  return offered?.slice(API_KEY_SUBPROTOCOL.length) || undefined;
}

/**
 * ws's `handleProtocols` for the realtime route: `realtime` when offered (OpenAI's browser client and
 * the Node SDK's OpenAIRealtimeWebSocket offer it next to the key), else the first protocol that carries
 * no key, else the first offered. A client that offers subprotocols and gets none back is dropped by
 * `ws` and by browsers, so one is always chosen when any is offered; the key subprotocol goes back
 * only to the client that sent it, on its own connection.
 */
export function selectSubprotocol(offered: ReadonlySet<string>): string | false {
  if (offered.has('realtime')) return 'realtime';
  const protocols = [...offered];
  return protocols.find((protocol) => !protocol.startsWith(API_KEY_SUBPROTOCOL)) ?? protocols[0] ?? false;
}

/** The dialect an upgrade asks for: beta with `OpenAI-Beta: realtime=v1` or that subprotocol, else GA. */
export function upgradeDialect(headers: IncomingHttpHeaders): Dialect {
  const beta = headers['openai-beta'];
  const betaHeader = (Array.isArray(beta) ? beta.join(',') : (beta ?? ''))
    .split(',')
    .some((value) => value.trim() === 'realtime=v1');
  return betaHeader || offeredSubprotocols(headers['sec-websocket-protocol']).includes(BETA_SUBPROTOCOL)
    ? 'beta'
    : 'ga';
}

// ---------------------------------------------------------------------------------------------------
// Ids: OpenAI's shape (`event_` / `item_` / `sess_` and 21 letters or digits)

const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function randomId(prefix: string): string {
  // 256 % 62 leaves a slight bias towards the first letters: harmless in an id.
  return prefix + [...randomBytes(21)].map((byte) => ID_ALPHABET[byte % ID_ALPHABET.length]).join('');
}

export const newEventId = () => randomId('event_');
export const newItemId = () => randomId('item_');
export const newSessionId = () => randomId('sess_');

// ---------------------------------------------------------------------------------------------------
// Session objects

/** What a session object says besides its config. */
export interface SessionFacts {
  /** `sess_…` (newSessionId, or the one minted with the ephemeral key that opened the session). */
  id: string;
  /** When the session ends at the latest, in seconds since the epoch (0: not started yet). */
  expiresAt: number;
  /** The model name shown when the client named none (the server's default model). */
  defaultModel: string;
}

type GaAudioFormat = { type: 'audio/pcm'; rate: 24000 } | { type: 'audio/pcmu' } | { type: 'audio/pcma' };
type LogprobsInclude = ['item.input_audio_transcription.logprobs'];

interface TranscriptionObject {
  model: string;
  language: string | null;
  prompt: string | null;
}

export type GaTurnDetection =
  | { type: 'server_vad'; threshold: number; prefix_padding_ms: number; silence_duration_ms: number }
  | { type: 'semantic_vad'; eagerness: Eagerness };

/** GA transcription session object (as api.openai.com sends it: unset fields are null). */
export interface GaSessionObject {
  type: 'transcription';
  object: 'realtime.transcription_session';
  id: string;
  expires_at: number;
  audio: {
    input: {
      format: GaAudioFormat;
      transcription: TranscriptionObject;
      noise_reduction: { type: NoiseReduction } | null;
      turn_detection: GaTurnDetection | null;
    };
  };
  include: LogprobsInclude | null;
}

/** Beta transcription session object (`client_secret` is null but in the REST answer). */
export interface BetaSessionObject {
  id: string;
  object: 'realtime.transcription_session';
  expires_at: number;
  input_audio_format: BetaFormat;
  input_audio_transcription: TranscriptionObject;
  turn_detection: GaTurnDetection | null;
  input_audio_noise_reduction: { type: NoiseReduction } | null;
  include: LogprobsInclude | null;
  client_secret: null;
}

function transcriptionObject(config: SessionConfig, facts: SessionFacts): TranscriptionObject {
  return {
    model: config.model ?? facts.defaultModel,
    language: config.language ?? null,
    prompt: config.prompt ?? null,
  };
}

function turnDetectionObject(turn: TurnDetectionConfig | null): GaTurnDetection | null {
  if (turn === null) return null;
  if (turn.from === 'semantic_vad') return { type: 'semantic_vad', eagerness: turn.eagerness ?? 'auto' };
  return {
    type: 'server_vad',
    threshold: turn.threshold,
    prefix_padding_ms: turn.prefixPaddingMs,
    silence_duration_ms: turn.silenceDurationMs,
  };
}

const includeObject = (config: SessionConfig): LogprobsInclude | null =>
  config.includeLogprobs ? [LOGPROBS_INCLUDE] : null;

export function gaSessionObject(config: SessionConfig, facts: SessionFacts): GaSessionObject {
  const format: GaAudioFormat =
    config.inputFormat === 'audio/pcm' ? { type: 'audio/pcm', rate: 24000 } : { type: config.inputFormat };
  return {
    type: 'transcription',
    object: 'realtime.transcription_session',
    id: facts.id,
    expires_at: facts.expiresAt,
    audio: {
      input: {
        format,
        transcription: transcriptionObject(config, facts),
        noise_reduction: config.noiseReduction === null ? null : { type: config.noiseReduction },
        turn_detection: turnDetectionObject(config.turnDetection),
      },
    },
    include: includeObject(config),
  };
}

export function betaSessionObject(config: SessionConfig, facts: SessionFacts): BetaSessionObject {
  const format =
    (Object.keys(BETA_FORMATS) as BetaFormat[]).find((name) => BETA_FORMATS[name] === config.inputFormat) ?? 'pcm16';
  return {
    id: facts.id,
    object: 'realtime.transcription_session',
    expires_at: facts.expiresAt,
    input_audio_format: format,
    input_audio_transcription: transcriptionObject(config, facts),
    turn_detection: turnDetectionObject(config.turnDetection),
    input_audio_noise_reduction: config.noiseReduction === null ? null : { type: config.noiseReduction },
    include: includeObject(config),
    client_secret: null,
  };
}

// ---------------------------------------------------------------------------------------------------
// Server events: every one has a fresh event_id

export interface GaSessionEvent<T extends 'session.created' | 'session.updated'> {
  type: T;
  event_id: string;
  session: GaSessionObject;
}
export interface BetaSessionEvent<T extends 'transcription_session.created' | 'transcription_session.updated'> {
  type: T;
  event_id: string;
  session: BetaSessionObject;
}
export type SessionEvent =
  | GaSessionEvent<'session.created' | 'session.updated'>
  | BetaSessionEvent<'transcription_session.created' | 'transcription_session.updated'>;

/** The user message item a committed turn becomes (as api.openai.com sends it: no transcript yet). */
export interface UserAudioItem {
  id: string;
  object?: 'realtime.item';
  type: 'message';
  status: 'completed';
  role: 'user';
  content: [{ type: 'input_audio'; transcript: null }];
}

export interface ItemEvent<
  T extends 'conversation.item.added' | 'conversation.item.done' | 'conversation.item.created',
> {
  type: T;
  event_id: string;
  previous_item_id: string | null;
  item: UserAudioItem;
}
export type GaItemEvents = [ItemEvent<'conversation.item.added'>, ItemEvent<'conversation.item.done'>];
export type BetaItemEvents = [ItemEvent<'conversation.item.created'>];

export interface SpeechStartedEvent {
  type: 'input_audio_buffer.speech_started';
  event_id: string;
  audio_start_ms: number;
  item_id: string;
}
export interface SpeechStoppedEvent {
  type: 'input_audio_buffer.speech_stopped';
  event_id: string;
  audio_end_ms: number;
  item_id: string;
}
export interface CommittedEvent {
  type: 'input_audio_buffer.committed';
  event_id: string;
  previous_item_id: string | null;
  item_id: string;
}
export interface ClearedEvent {
  type: 'input_audio_buffer.cleared';
  event_id: string;
}
export interface TranscriptionDeltaEvent {
  type: 'conversation.item.input_audio_transcription.delta';
  event_id: string;
  item_id: string;
  content_index: 0;
  delta: string;
  logprobs?: TokenLogprob[];
}
export interface TranscriptionCompletedEvent {
  type: 'conversation.item.input_audio_transcription.completed';
  event_id: string;
  item_id: string;
  content_index: 0;
  transcript: string;
  usage: { type: 'duration'; seconds: number };
  logprobs?: TokenLogprob[];
}
export interface ErrorDetail {
  type: string;
  code: string | null;
  message: string;
  param: string | null;
}
export interface TranscriptionFailedEvent {
  type: 'conversation.item.input_audio_transcription.failed';
  event_id: string;
  item_id: string;
  content_index: 0;
  error: ErrorDetail;
}
export interface ErrorEvent {
  type: 'error';
  event_id: string;
  error: ErrorDetail & { event_id: string | null };
}

export type ServerEvent =
  | SessionEvent
  | ItemEvent<'conversation.item.added' | 'conversation.item.done' | 'conversation.item.created'>
  | SpeechStartedEvent
  | SpeechStoppedEvent
  | CommittedEvent
  | ClearedEvent
  | TranscriptionDeltaEvent
  | TranscriptionCompletedEvent
  | TranscriptionFailedEvent
  | ErrorEvent;

/** The session event of a kind in a dialect (both events when the dialect is not known statically). */
export type SessionEventOf<K extends 'created' | 'updated', D extends Dialect> = D extends 'ga'
  ? GaSessionEvent<`session.${K}`>
  : BetaSessionEvent<`transcription_session.${K}`>;

/**
 * `created`: the first event of a session (GA `session.created`, beta `transcription_session.created`);
 * `updated`: the answer to a valid update, with the whole effective config, in the dialect of that update.
 */
export function sessionEvent<K extends 'created' | 'updated', D extends Dialect>(
  kind: K,
  dialect: D,
  config: SessionConfig,
  facts: SessionFacts,
): SessionEventOf<K, D> {
  const event: SessionEvent =
    dialect === 'ga'
      ? { type: `session.${kind}`, event_id: newEventId(), session: gaSessionObject(config, facts) }
      : { type: `transcription_session.${kind}`, event_id: newEventId(), session: betaSessionObject(config, facts) };
  // The type follows from `kind` and `dialect`, which TypeScript does not narrow generics by.
  return event as SessionEventOf<K, D>;
}

/** `audioStartMs`: ms of session audio where the turn's audio starts, its prefix padding included. */
export function speechStartedEvent(turn: { itemId: string; audioStartMs: number }): SpeechStartedEvent {
  return {
    type: 'input_audio_buffer.speech_started',
    event_id: newEventId(),
    audio_start_ms: Math.round(turn.audioStartMs),
    item_id: turn.itemId,
  };
}

/** `audioEndMs`: ms of session audio where the silence that ended the turn began. */
export function speechStoppedEvent(turn: { itemId: string; audioEndMs: number }): SpeechStoppedEvent {
  return {
    type: 'input_audio_buffer.speech_stopped',
    event_id: newEventId(),
    audio_end_ms: Math.round(turn.audioEndMs),
    item_id: turn.itemId,
  };
}

/** `previousItemId`: the item of the session's previous committed turn (null for the first). */
export function committedEvent(turn: { itemId: string; previousItemId: string | null }): CommittedEvent {
  return {
    type: 'input_audio_buffer.committed',
    event_id: newEventId(),
    previous_item_id: turn.previousItemId,
    item_id: turn.itemId,
  };
}

export function clearedEvent(): ClearedEvent {
  return { type: 'input_audio_buffer.cleared', event_id: newEventId() };
}

/**
 * The conversation item events that follow `committed`: GA `conversation.item.added` then
 * `conversation.item.done` (recorded from api.openai.com: both at once, before any transcript),
 * beta `conversation.item.created`.
 */
export function committedItemEvents(
  dialect: 'ga',
  turn: { itemId: string; previousItemId: string | null },
): GaItemEvents;
export function committedItemEvents(
  dialect: 'beta',
  turn: { itemId: string; previousItemId: string | null },
): BetaItemEvents;
export function committedItemEvents(
  dialect: Dialect,
  turn: { itemId: string; previousItemId: string | null },
): GaItemEvents | BetaItemEvents;
export function committedItemEvents(
  dialect: Dialect,
  turn: { itemId: string; previousItemId: string | null },
): GaItemEvents | BetaItemEvents {
  const event = <T extends 'conversation.item.added' | 'conversation.item.done' | 'conversation.item.created'>(
    type: T,
  ): ItemEvent<T> => ({
    type,
    event_id: newEventId(),
    previous_item_id: turn.previousItemId,
    item: {
      id: turn.itemId,
      ...(dialect === 'beta' && { object: 'realtime.item' as const }),
      type: 'message',
      status: 'completed',
      role: 'user',
      content: [{ type: 'input_audio', transcript: null }],
    },
  });
  return dialect === 'ga'
    ? [event('conversation.item.added'), event('conversation.item.done')]
    : [event('conversation.item.created')];
}

/** `logprobs`: give them only when the session includes them (`config.includeLogprobs`). */
export function transcriptionDeltaEvent(part: {
  itemId: string;
  delta: string;
  logprobs?: readonly TokenLogprob[] | undefined;
}): TranscriptionDeltaEvent {
  return {
    type: 'conversation.item.input_audio_transcription.delta',
    event_id: newEventId(),
    item_id: part.itemId,
    content_index: 0,
    delta: part.delta,
    ...(part.logprobs && { logprobs: [...part.logprobs] }),
  };
}

/**
 * The turn's whole transcript (all its deltas joined). Usage is OpenAI's duration usage of the turn's
 * audio, rounded up to whole seconds as for HTTP transcriptions (OpenAI bills whole seconds).
 */
export function transcriptionCompletedEvent(turn: {
  itemId: string;
  transcript: string;
  audioSeconds: number;
  logprobs?: readonly TokenLogprob[] | undefined;
}): TranscriptionCompletedEvent {
  return {
    type: 'conversation.item.input_audio_transcription.completed',
    event_id: newEventId(),
    item_id: turn.itemId,
    content_index: 0,
    transcript: turn.transcript,
    usage: { type: 'duration', seconds: Math.ceil(turn.audioSeconds) },
    ...(turn.logprobs && { logprobs: [...turn.logprobs] }),
  };
}

function errorDetail(error: ApiError): ErrorDetail {
  return { type: error.type, code: error.code, message: error.message, param: error.param };
}

/** A turn whose transcription failed (the engine's error, as the registry words it). */
export function transcriptionFailedEvent(turn: { itemId: string; error: ApiError }): TranscriptionFailedEvent {
  return {
    type: 'conversation.item.input_audio_transcription.failed',
    event_id: newEventId(),
    item_id: turn.itemId,
    content_index: 0,
    error: errorDetail(turn.error),
  };
}

/** OpenAI's `error` event; `clientEventId` is the event_id of the client event that caused it, if any. */
export function errorEvent(error: ApiError, clientEventId?: string): ErrorEvent {
  return { type: 'error', event_id: newEventId(), error: { ...errorDetail(error), event_id: clientEventId ?? null } };
}

// ---------------------------------------------------------------------------------------------------
// Closing

/**
 * WebSocket close codes. api.openai.com closes with 3000 after an authentication error and 4000 after
 * a request it cannot serve (recorded), with the reason `<error type>.<code>`.
 */
export const CLOSE_CODES = {
  normal: 1000,
  /** Server shutting down (SIGTERM). */
  goingAway: 1001,
  /** A message over EARSHOT_REALTIME_MAX_FRAME_BYTES (ws sends it itself past maxPayload). */
  messageTooBig: 1009,
  /** The session cannot go on: a conversation session was asked for, it expired, it was idle. */
  invalidRequest: 4000,
} as const;

/** A close reason the way OpenAI writes it (`invalid_request_error.session_expired`), within 123 bytes. */
export function closeReason(error: ApiError): string {
  const reason = `${error.type}.${error.code ?? 'error'}`;
  return Buffer.byteLength(reason) <= 123 ? reason : Buffer.from(reason).subarray(0, 123).toString('utf8');
}
