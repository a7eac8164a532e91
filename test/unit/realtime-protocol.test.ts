// The realtime protocol: client events parsed and validated field by field (GA and beta), the session
// config they make, and every server event, checked against the npm SDK's own types at compile time
// (a wrong shape fails `npm run typecheck`) and against their expected values here.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type * as GA from 'openai/resources/realtime/realtime';
import type * as Beta from 'openai/resources/beta/realtime/realtime';
import type { ClientSecretCreateResponse } from 'openai/resources/realtime/client-secrets';
import { ApiError } from '../../src/api-errors.ts';
import {
  betaSessionObject,
  binaryFrameError,
  clearedEvent,
  closeReason,
  committedEvent,
  committedItemEvents,
  DEFAULT_SESSION_CONFIG,
  errorEvent,
  gaSessionObject,
  newItemId,
  offeredSubprotocols,
  parseClientEvent,
  parseClientSecretRequest,
  parseTranscriptionSessionRequest,
  selectSubprotocol,
  SEMANTIC_VAD_SILENCE_MS,
  sessionEvent,
  speechStartedEvent,
  speechStoppedEvent,
  subprotocolApiKey,
  transcriptionCompletedEvent,
  transcriptionDeltaEvent,
  transcriptionFailedEvent,
  upgradeDialect,
  type ClientEvent,
  type SessionConfig,
  type SessionFacts,
} from '../../src/realtime/protocol.ts';

/**
 * An SDK type as api.openai.com fills it: an optional field may also be null (unset). The recorded
 * traffic sends `language: null`, `noise_reduction: null`, `include: null`, `transcript: null`, which
 * the SDK types (generated without those nulls) would otherwise refuse.
 */
type OnTheWire<T> = T extends readonly (infer U)[]
  ? OnTheWire<U>[]
  : T extends object
    ? {
        [K in keyof T]: undefined extends T[K]
          ? OnTheWire<Exclude<T[K], undefined>> | null | undefined
          : OnTheWire<T[K]>;
      }
    : T;

/** The beta session object over the WebSocket: the SDK's, without the REST answer's client_secret. */
type BetaWireSession = OnTheWire<Omit<GA.TranscriptionSessionUpdatedEvent.Session, 'client_secret'>> & {
  client_secret: null;
};

const FACTS: SessionFacts = { id: 'sess_test', expiresAt: 1_800_000_000, defaultModel: 'base' };

function accepted(frame: unknown, current: SessionConfig = DEFAULT_SESSION_CONFIG): ClientEvent {
  const result = parseClientEvent(typeof frame === 'string' ? frame : JSON.stringify(frame), current);
  assert.ok(result.ok, result.ok ? '' : `refused: ${result.error.message}`);
  return result.event;
}

function updated(session: unknown, current: SessionConfig = DEFAULT_SESSION_CONFIG): SessionConfig {
  const event = accepted(
    { type: 'session.update', session: { type: 'transcription', ...(session as object) } },
    current,
  );
  assert.equal(event.type, 'session.update');
  return event.config;
}

function refusal(frame: unknown, current: SessionConfig = DEFAULT_SESSION_CONFIG) {
  const result = parseClientEvent(typeof frame === 'string' ? frame : JSON.stringify(frame), current);
  assert.ok(!result.ok, 'refused');
  return result;
}

/** The error event a refused frame gets, as the client reads it. */
function refusedWith(frame: unknown, current: SessionConfig = DEFAULT_SESSION_CONFIG) {
  const result = refusal(frame, current);
  return errorEvent(result.error, result.eventId).error;
}

describe('realtime client events', () => {
  it('answers frames that are not events with error events in OpenAI shape', () => {
    const notJson = refusal('not json');
    const event = errorEvent(notJson.error, notJson.eventId);
    assert.match(event.event_id, /^event_[A-Za-z0-9]{21}$/);
    assert.equal(event.type, 'error');
    assert.equal(event.error.type, 'invalid_request_error');
    assert.equal(event.error.code, 'invalid_json');
    assert.match(event.error.message, /^Invalid event: failed to parse JSON value\./);
    assert.equal(event.error.param, null);
    assert.equal(event.error.event_id, null);
    assert.equal(refusedWith('[1,2]').code, 'invalid_event');
    assert.equal(refusedWith('"text"').code, 'invalid_event');
    assert.deepEqual(refusedWith({ event_id: 'c1' }), {
      type: 'invalid_request_error',
      code: 'missing_required_parameter',
      message: "Missing required parameter: 'type'.",
      param: 'type',
      event_id: 'c1',
    });
    assert.equal(binaryFrameError().code, 'invalid_event');
    assert.match(binaryFrameError().message, /binary frames are not supported/);
  });

  it('names an unknown event type and lists the supported ones, echoing the event_id', () => {
    const error = refusedWith({ type: 'nope', event_id: 'evt_7' });
    assert.equal(error.code, 'invalid_value');
    assert.equal(error.param, 'type');
    assert.equal(error.event_id, 'evt_7');
    assert.equal(
      error.message,
      "Invalid value: 'nope'. Supported values are: 'session.update', 'transcription_session.update', 'input_audio_buffer.append', 'input_audio_buffer.commit', and 'input_audio_buffer.clear'.",
    );
  });

  it('refuses OpenAI conversation events by name, the session staying open', () => {
    for (const type of [
      'response.create',
      'conversation.item.create',
      'response.cancel',
      'output_audio_buffer.clear',
    ]) {
      const result = refusal({ type, event_id: 'x' });
      assert.equal(result.error.code, 'unsupported_value', type);
      assert.equal(result.error.param, 'type');
      assert.ok(result.error.message.startsWith(`'${type}' is not supported in a transcription session`), type);
      assert.equal(result.closeSession, false);
    }
  });

  it('refuses a conversation session (session.type realtime) and tells the route to close', () => {
    const result = refusal({
      type: 'session.update',
      event_id: 'u1',
      session: { type: 'realtime', instructions: 'hi' },
    });
    assert.equal(result.closeSession, true);
    assert.equal(result.error.code, 'unsupported_value');
    assert.equal(result.error.param, 'session.type');
    assert.match(result.error.message, /transcription sessions only/);
    assert.equal(closeReason(result.error), 'invalid_request_error.unsupported_value');
  });

  it('takes input_audio_buffer events, and nothing more in them', () => {
    assert.deepEqual(accepted({ type: 'input_audio_buffer.append', audio: 'AAAA', event_id: 'a' }), {
      type: 'input_audio_buffer.append',
      eventId: 'a',
      audio: 'AAAA',
    });
    assert.deepEqual(accepted({ type: 'input_audio_buffer.commit' }), {
      type: 'input_audio_buffer.commit',
      eventId: undefined,
    });
    assert.deepEqual(accepted({ type: 'input_audio_buffer.clear' }), {
      type: 'input_audio_buffer.clear',
      eventId: undefined,
    });
    assert.equal(refusedWith({ type: 'input_audio_buffer.append' }).param, 'audio');
    assert.equal(refusedWith({ type: 'input_audio_buffer.append', audio: 12 }).code, 'invalid_type');
    const extra = refusedWith({ type: 'input_audio_buffer.commit', item_id: 'x' });
    assert.deepEqual(
      [extra.code, extra.param, extra.message],
      ['unknown_parameter', 'item_id', "Unknown parameter: 'item_id'."],
    );
    assert.equal(refusedWith({ type: 'input_audio_buffer.clear', event_id: 5 }).param, 'event_id');
  });
});

describe('GA session.update', () => {
  it('normalises every field of a transcription session', () => {
    const config = updated({
      audio: {
        input: {
          format: { type: 'audio/pcm', rate: 24000 },
          transcription: { model: 'gpt-4o-transcribe', language: 'en', prompt: 'Kennedy' },
          turn_detection: { type: 'server_vad', threshold: 0.6, prefix_padding_ms: 200, silence_duration_ms: 700 },
          noise_reduction: { type: 'far_field' },
        },
      },
      include: ['item.input_audio_transcription.logprobs'],
    });
    assert.deepEqual(config, {
      inputFormat: 'audio/pcm',
      model: 'gpt-4o-transcribe',
      language: 'en',
      prompt: 'Kennedy',
      turnDetection: { threshold: 0.6, prefixPaddingMs: 200, silenceDurationMs: 700, from: 'server_vad' },
      noiseReduction: 'far_field',
      includeLogprobs: true,
    });
    assert.equal(updated({ audio: { input: { format: { type: 'audio/pcmu' } } } }).inputFormat, 'audio/pcmu');
    assert.equal(updated({ audio: { input: { format: { type: 'audio/pcma' } } } }).inputFormat, 'audio/pcma');
    assert.equal(updated({ audio: { input: { format: { rate: 24000 } } } }).inputFormat, 'audio/pcm');
    assert.equal(updated({ audio: { input: { transcription: { language: 'English' } } } }).language, 'en');
  });

  it("starts with OpenAI's documented defaults; turn detection null means the client commits", () => {
    assert.deepEqual(DEFAULT_SESSION_CONFIG.turnDetection, {
      threshold: 0.5,
      prefixPaddingMs: 300,
      silenceDurationMs: 500,
      from: 'server_vad',
    });
    assert.equal(DEFAULT_SESSION_CONFIG.inputFormat, 'audio/pcm');
    assert.equal(updated({ audio: { input: { turn_detection: null } } }).turnDetection, null);
    assert.deepEqual(
      updated({ audio: { input: { turn_detection: { type: 'server_vad', threshold: 0.7 } } } }).turnDetection,
      {
        threshold: 0.7,
        prefixPaddingMs: 300,
        silenceDurationMs: 500,
        from: 'server_vad',
      },
    );
  });

  it('updates only the fields present; an object given replaces the old one whole', () => {
    const first = updated({
      audio: {
        input: {
          transcription: { model: 'small', language: 'fr', prompt: 'p' },
          noise_reduction: { type: 'near_field' },
        },
      },
    });
    const second = updated({ include: ['item.input_audio_transcription.logprobs'] }, first);
    assert.deepEqual(second, { ...first, includeLogprobs: true });
    const third = updated({ audio: { input: { transcription: { model: 'tiny.en' } } } }, second);
    assert.deepEqual(
      [third.model, third.language, third.prompt, third.noiseReduction],
      ['tiny.en', undefined, undefined, 'near_field'],
    );
    assert.deepEqual(updated({ audio: { input: { transcription: null } } }, first).model, undefined);
  });

  it('maps semantic_vad to server VAD by eagerness: low waits longest, high ends soonest', () => {
    assert.deepEqual(SEMANTIC_VAD_SILENCE_MS, { high: 500, medium: 1000, auto: 1000, low: 2000 });
    for (const eagerness of ['low', 'medium', 'high', 'auto'] as const) {
      const turn = updated({ audio: { input: { turn_detection: { type: 'semantic_vad', eagerness } } } }).turnDetection;
      assert.deepEqual(turn, {
        threshold: 0.5,
        prefixPaddingMs: 300,
        silenceDurationMs: SEMANTIC_VAD_SILENCE_MS[eagerness],
        from: 'semantic_vad',
        eagerness,
      });
    }
    assert.equal(
      updated({ audio: { input: { turn_detection: { type: 'semantic_vad' } } } }).turnDetection?.eagerness,
      'auto',
    );
  });

  it("accepts and ignores OpenAI's conversation-only turn fields, after checking their types", () => {
    const turn = updated({
      audio: {
        input: {
          turn_detection: {
            type: 'server_vad',
            create_response: true,
            interrupt_response: false,
            idle_timeout_ms: null,
          },
          transcription: { model: 'whisper-1', delay: 'low' },
        },
      },
    }).turnDetection;
    assert.deepEqual(turn, { ...DEFAULT_SESSION_CONFIG.turnDetection });
    updated({ audio: { input: { turn_detection: { type: 'server_vad', idle_timeout_ms: 6000 } } } });
    updated({
      audio: { input: { turn_detection: { type: 'semantic_vad', create_response: false, interrupt_response: true } } },
    });
    const error = refusedWith({
      type: 'session.update',
      session: {
        type: 'transcription',
        audio: { input: { turn_detection: { type: 'server_vad', create_response: 'yes' } } },
      },
    });
    assert.deepEqual([error.code, error.param], ['invalid_type', 'session.audio.input.turn_detection.create_response']);
  });

  it('refuses each bad field with its param path, code and OpenAI wording', () => {
    const input = (fields: object) => ({
      type: 'session.update',
      event_id: 'u',
      session: { type: 'transcription', audio: { input: fields } },
    });
    const cases: [unknown, string, string, RegExp?][] = [
      [
        input({ turn_detection: { type: 'server_vad', threshold: 2 } }),
        'decimal_above_max_value',
        'session.audio.input.turn_detection.threshold',
        /^Invalid 'session\.audio\.input\.turn_detection\.threshold': decimal above maximum value\. Expected a value <= 1, but got 2 instead\.$/,
      ],
      [
        input({ turn_detection: { type: 'server_vad', threshold: -0.1 } }),
        'decimal_below_min_value',
        'session.audio.input.turn_detection.threshold',
      ],
      [
        input({ turn_detection: { type: 'server_vad', threshold: 'high' } }),
        'invalid_type',
        'session.audio.input.turn_detection.threshold',
        /expected a decimal, but got a string instead\.$/,
      ],
      [
        input({ turn_detection: { type: 'server_vad', silence_duration_ms: 200.5 } }),
        'invalid_type',
        'session.audio.input.turn_detection.silence_duration_ms',
        /expected an integer, but got a decimal instead/,
      ],
      [
        input({ turn_detection: { type: 'server_vad', prefix_padding_ms: -1 } }),
        'integer_below_min_value',
        'session.audio.input.turn_detection.prefix_padding_ms',
      ],
      [
        input({ turn_detection: { type: 'server_vad', silence_duration_ms: 60_000 } }),
        'integer_above_max_value',
        'session.audio.input.turn_detection.silence_duration_ms',
      ],
      [
        input({ turn_detection: { threshold: 0.5 } }),
        'missing_required_parameter',
        'session.audio.input.turn_detection.type',
      ],
      [input({ turn_detection: { type: 'client_vad' } }), 'invalid_value', 'session.audio.input.turn_detection.type'],
      [
        input({ turn_detection: { type: 'semantic_vad', threshold: 0.5 } }),
        'unknown_parameter',
        'session.audio.input.turn_detection.threshold',
      ],
      [
        input({ turn_detection: { type: 'semantic_vad', eagerness: 'eager' } }),
        'invalid_value',
        'session.audio.input.turn_detection.eagerness',
      ],
      [
        input({ turn_detection: 'server_vad' }),
        'invalid_type',
        'session.audio.input.turn_detection',
        /expected an object, but got a string/,
      ],
      [
        input({ format: { type: 'audio/pcm', rate: 16000 } }),
        'integer_below_min_value',
        'session.audio.input.format.rate',
        /Expected a value >= 24000, but got 16000 instead/,
      ],
      [
        input({ format: { type: 'audio/pcm', rate: 48000 } }),
        'integer_above_max_value',
        'session.audio.input.format.rate',
      ],
      [input({ format: { type: 'audio/pcmu', rate: 8000 } }), 'unknown_parameter', 'session.audio.input.format.rate'],
      [
        input({ format: { type: 'audio/opus' } }),
        'invalid_value',
        'session.audio.input.format.type',
        /Supported values are: 'audio\/pcm', 'audio\/pcmu', and 'audio\/pcma'\./,
      ],
      [input({ transcription: { model: 7 } }), 'invalid_type', 'session.audio.input.transcription.model'],
      [
        input({ transcription: { language: 'xx' } }),
        'invalid_language_format',
        'session.audio.input.transcription.language',
      ],
      [
        input({ transcription: { prompt: 'x'.repeat(4097) } }),
        'string_above_max_length',
        'session.audio.input.transcription.prompt',
        /Expected a string with maximum length 4096, but got a string with length 4097 instead\.$/,
      ],
      [
        input({ transcription: { keywords: ['a'] } }),
        'unknown_parameter',
        'session.audio.input.transcription.keywords',
      ],
      [input({ noise_reduction: { type: 'studio' } }), 'invalid_value', 'session.audio.input.noise_reduction.type'],
      [
        input({ bogus: 1 }),
        'unknown_parameter',
        'session.audio.input.bogus',
        /^Unknown parameter: 'session\.audio\.input\.bogus'\.$/,
      ],
      [
        { type: 'session.update', session: { type: 'transcription', audio: { output: {} } } },
        'unknown_parameter',
        'session.audio.output',
      ],
      [
        { type: 'session.update', session: { type: 'transcription', model: 'gpt-4o-transcribe' } },
        'unknown_parameter',
        'session.model',
      ],
      [
        { type: 'session.update', session: { type: 'transcription', include: ['logprobs'] } },
        'invalid_value',
        'session.include[0]',
      ],
      [
        { type: 'session.update', session: { type: 'transcription', include: 'all' } },
        'invalid_type',
        'session.include',
      ],
      [{ type: 'session.update', session: { audio: {} } }, 'missing_required_parameter', 'session.type'],
      [{ type: 'session.update', session: { type: 'translation' } }, 'invalid_value', 'session.type'],
      [{ type: 'session.update' }, 'missing_required_parameter', 'session'],
      [{ type: 'session.update', session: [] }, 'invalid_type', 'session'],
      [{ type: 'session.update', session: { type: 'transcription' }, extra: true }, 'unknown_parameter', 'extra'],
    ];
    for (const [frame, code, param, message] of cases) {
      const error = refusedWith(frame);
      assert.deepEqual([error.code, error.param], [code, param], JSON.stringify(frame));
      assert.equal(error.type, 'invalid_request_error');
      if (message) assert.match(error.message, message);
    }
  });

  it('leaves the session config as it was when an update is refused', () => {
    const current = updated({ audio: { input: { transcription: { model: 'small' } } } });
    const before = structuredClone(current);
    const result = refusal(
      {
        type: 'session.update',
        session: {
          type: 'transcription',
          include: ['item.input_audio_transcription.logprobs'],
          audio: { input: { format: { type: 'audio/pcmu' }, turn_detection: { type: 'server_vad', threshold: 9 } } },
        },
      },
      current,
    );
    assert.equal(result.error.param, 'session.audio.input.turn_detection.threshold');
    assert.deepEqual(current, before, 'nothing of the refused update was applied');
  });
});

describe('beta transcription_session.update', () => {
  it('normalises the flat beta fields into the same config', () => {
    const event = accepted({
      type: 'transcription_session.update',
      event_id: 'b1',
      session: {
        input_audio_format: 'g711_ulaw',
        input_audio_transcription: { model: 'whisper-1', language: 'de', prompt: '' },
        turn_detection: { threshold: 0.4, silence_duration_ms: 800 },
        input_audio_noise_reduction: { type: 'near_field' },
        include: ['item.input_audio_transcription.logprobs'],
        modalities: ['text'],
        client_secret: { expires_at: { anchor: 'created_at', seconds: 60 } },
      },
    });
    assert.equal(event.type, 'session.update');
    assert.equal(event.dialect, 'beta');
    assert.equal(event.eventId, 'b1');
    assert.deepEqual(event.config, {
      inputFormat: 'audio/pcmu',
      model: 'whisper-1',
      language: 'de',
      prompt: undefined,
      turnDetection: { threshold: 0.4, prefixPaddingMs: 300, silenceDurationMs: 800, from: 'server_vad' },
      noiseReduction: 'near_field',
      includeLogprobs: true,
    });
    const alaw = accepted({
      type: 'transcription_session.update',
      session: { input_audio_format: 'g711_alaw', turn_detection: null },
    });
    assert.equal(alaw.type === 'session.update' && alaw.config.inputFormat, 'audio/pcma');
    assert.equal(alaw.type === 'session.update' && alaw.config.turnDetection, null);
    const pcm = accepted({ type: 'transcription_session.update', session: { input_audio_format: 'pcm16' } });
    assert.equal(pcm.type === 'session.update' && pcm.config.inputFormat, 'audio/pcm');
  });

  it('refuses bad beta fields by their flat param paths', () => {
    const cases: [object, string, string][] = [
      [{ input_audio_format: 'pcm24' }, 'invalid_value', 'session.input_audio_format'],
      [{ audio: {} }, 'unknown_parameter', 'session.audio'],
      [
        { turn_detection: { type: 'server_vad', threshold: 1.5 } },
        'decimal_above_max_value',
        'session.turn_detection.threshold',
      ],
      [{ input_audio_noise_reduction: { type: 'x' } }, 'invalid_value', 'session.input_audio_noise_reduction.type'],
      [{ modalities: ['video'] }, 'invalid_value', 'session.modalities[0]'],
    ];
    for (const [session, code, param] of cases) {
      const error = refusedWith({ type: 'transcription_session.update', session });
      assert.deepEqual([error.code, error.param], [code, param], JSON.stringify(session));
    }
  });
});

describe('requests that mint an ephemeral key', () => {
  it('GA client_secrets: an empty body is a default transcription session; expires_after is 10 to 7200 s', () => {
    assert.deepEqual(parseClientSecretRequest(undefined), {
      config: { ...DEFAULT_SESSION_CONFIG },
      dialect: 'ga',
      expiresAfterSeconds: undefined,
    });
    const request = parseClientSecretRequest({
      expires_after: { anchor: 'created_at', seconds: 120 },
      session: { type: 'transcription', audio: { input: { turn_detection: null } } },
    });
    assert.equal(request.expiresAfterSeconds, 120);
    assert.equal(request.config.turnDetection, null);
    const failures: [unknown, string, string][] = [
      [{ expires_after: { seconds: 5 } }, 'integer_below_min_value', 'expires_after.seconds'],
      [{ expires_after: { seconds: 7201 } }, 'integer_above_max_value', 'expires_after.seconds'],
      [{ expires_after: { anchor: 'now' } }, 'invalid_value', 'expires_after.anchor'],
      [{ session: { type: 'realtime' } }, 'unsupported_value', 'session.type'],
      [
        { session: { type: 'transcription', audio: { input: { bogus: 1 } } } },
        'unknown_parameter',
        'session.audio.input.bogus',
      ],
      [{ model: 'x' }, 'unknown_parameter', 'model'],
      ['text', 'invalid_type', 'body'],
    ];
    for (const [body, code, param] of failures) {
      assert.throws(
        () => parseClientSecretRequest(body),
        (error: ApiError) => error.code === code && error.param === param && error.status === 400,
        JSON.stringify(body),
      );
    }
  });

  it('beta transcription_sessions: the flat body, client_secret.expires_at for the key', () => {
    const request = parseTranscriptionSessionRequest({
      input_audio_format: 'g711_alaw',
      client_secret: { expires_at: { anchor: 'created_at', seconds: 30 } },
    });
    assert.deepEqual(
      [request.dialect, request.expiresAfterSeconds, request.config.inputFormat],
      ['beta', 30, 'audio/pcma'],
    );
    assert.throws(
      () => parseTranscriptionSessionRequest({ client_secret: { expires_at: { seconds: 1 } } }),
      (error: ApiError) => error.param === 'client_secret.expires_at.seconds',
    );
    assert.throws(
      () => parseTranscriptionSessionRequest({ client_secret: { value: 'x' } }),
      (error: ApiError) => error.param === 'client_secret.value',
    );
    assert.throws(
      () => parseTranscriptionSessionRequest({ voice: 'alloy' }),
      (error: ApiError) => error.param === 'voice',
    );
  });
});

describe('realtime server events', () => {
  const config: SessionConfig = {
    ...DEFAULT_SESSION_CONFIG,
    model: 'gpt-4o-transcribe',
    language: 'en',
    includeLogprobs: true,
  };

  it('GA session.created / session.updated carry the transcription session object', () => {
    const created = sessionEvent(
      'created',
      'ga',
      DEFAULT_SESSION_CONFIG,
      FACTS,
    ) satisfies OnTheWire<GA.SessionCreatedEvent>;
    assert.deepEqual(created, {
      type: 'session.created',
      event_id: created.event_id,
      session: {
        type: 'transcription',
        object: 'realtime.transcription_session',
        id: 'sess_test',
        expires_at: 1_800_000_000,
        audio: {
          input: {
            format: { type: 'audio/pcm', rate: 24000 },
            transcription: { model: 'base', language: null, prompt: null },
            noise_reduction: null,
            turn_detection: { type: 'server_vad', threshold: 0.5, prefix_padding_ms: 300, silence_duration_ms: 500 },
          },
        },
        include: null,
      },
    });
    const semantic: SessionConfig = {
      ...config,
      inputFormat: 'audio/pcmu',
      noiseReduction: 'far_field',
      turnDetection: {
        threshold: 0.5,
        prefixPaddingMs: 300,
        silenceDurationMs: 2000,
        from: 'semantic_vad',
        eagerness: 'low',
      },
    };
    const updatedEvent = sessionEvent('updated', 'ga', semantic, FACTS) satisfies OnTheWire<GA.SessionUpdatedEvent>;
    assert.equal(updatedEvent.type, 'session.updated');
    assert.deepEqual(updatedEvent.session.audio.input, {
      format: { type: 'audio/pcmu' },
      transcription: { model: 'gpt-4o-transcribe', language: 'en', prompt: null },
      noise_reduction: { type: 'far_field' },
      turn_detection: { type: 'semantic_vad', eagerness: 'low' },
    });
    assert.deepEqual(updatedEvent.session.include, ['item.input_audio_transcription.logprobs']);
    assert.equal(
      sessionEvent('updated', 'ga', { ...config, turnDetection: null }, FACTS).session.audio.input.turn_detection,
      null,
    );
  });

  it('beta transcription_session.created / .updated carry the flat session object', () => {
    const updatedEvent = sessionEvent(
      'updated',
      'beta',
      { ...config, inputFormat: 'audio/pcma' },
      FACTS,
    ) satisfies OnTheWire<Omit<GA.TranscriptionSessionUpdatedEvent, 'session'>> & { session: BetaWireSession };
    assert.deepEqual(updatedEvent, {
      type: 'transcription_session.updated',
      event_id: updatedEvent.event_id,
      session: {
        id: 'sess_test',
        object: 'realtime.transcription_session',
        expires_at: 1_800_000_000,
        input_audio_format: 'g711_alaw',
        input_audio_transcription: { model: 'gpt-4o-transcribe', language: 'en', prompt: null },
        turn_detection: { type: 'server_vad', threshold: 0.5, prefix_padding_ms: 300, silence_duration_ms: 500 },
        input_audio_noise_reduction: null,
        include: ['item.input_audio_transcription.logprobs'],
        client_secret: null,
      },
    });
    const created = sessionEvent('created', 'beta', DEFAULT_SESSION_CONFIG, FACTS);
    created.session satisfies BetaWireSession;
    assert.equal(created.type, 'transcription_session.created');
    assert.equal(created.session.input_audio_format, 'pcm16');
  });

  it('speech, commit and clear events', () => {
    const itemId = newItemId();
    assert.match(itemId, /^item_[A-Za-z0-9]{21}$/);
    const started = speechStartedEvent({
      itemId,
      audioStartMs: 1236.4,
    }) satisfies GA.InputAudioBufferSpeechStartedEvent;
    assert.deepEqual(started, {
      type: 'input_audio_buffer.speech_started',
      event_id: started.event_id,
      audio_start_ms: 1236,
      item_id: itemId,
    });
    const stopped = speechStoppedEvent({ itemId, audioEndMs: 3808 }) satisfies GA.InputAudioBufferSpeechStoppedEvent;
    assert.deepEqual(stopped, {
      type: 'input_audio_buffer.speech_stopped',
      event_id: stopped.event_id,
      audio_end_ms: 3808,
      item_id: itemId,
    });
    const committed = committedEvent({ itemId, previousItemId: null }) satisfies GA.InputAudioBufferCommittedEvent;
    assert.deepEqual(committed, {
      type: 'input_audio_buffer.committed',
      event_id: committed.event_id,
      previous_item_id: null,
      item_id: itemId,
    });
    assert.equal(committedEvent({ itemId, previousItemId: 'item_prev' }).previous_item_id, 'item_prev');
    const cleared = clearedEvent() satisfies GA.InputAudioBufferClearedEvent & Beta.InputAudioBufferClearedEvent;
    assert.deepEqual(Object.keys(cleared), ['type', 'event_id']);
  });

  it('a committed turn becomes a user audio item: GA added + done, beta created', () => {
    const turn = { itemId: 'item_1', previousItemId: 'item_0' };
    const [added, done] = committedItemEvents('ga', turn);
    added satisfies OnTheWire<GA.ConversationItemAdded>;
    done satisfies OnTheWire<GA.ConversationItemDone>;
    const item = {
      id: 'item_1',
      type: 'message',
      status: 'completed',
      role: 'user',
      content: [{ type: 'input_audio', transcript: null }],
    };
    assert.deepEqual(added, {
      type: 'conversation.item.added',
      event_id: added.event_id,
      previous_item_id: 'item_0',
      item,
    });
    assert.deepEqual(done, {
      type: 'conversation.item.done',
      event_id: done.event_id,
      previous_item_id: 'item_0',
      item,
    });
    const beta = committedItemEvents('beta', turn);
    assert.equal(beta.length, 1);
    const [createdEvent] = beta;
    createdEvent satisfies OnTheWire<Beta.ConversationItemCreatedEvent>;
    assert.deepEqual(createdEvent, {
      type: 'conversation.item.created',
      event_id: createdEvent.event_id,
      previous_item_id: 'item_0',
      item: { ...item, object: 'realtime.item' },
    });
  });

  it('transcription delta, completed (with duration usage) and failed', () => {
    const logprobs = [{ token: ' And', logprob: -0.1, bytes: [32, 65, 110, 100] }];
    const delta = transcriptionDeltaEvent({
      itemId: 'item_1',
      delta: ' And so',
      logprobs,
    }) satisfies GA.ConversationItemInputAudioTranscriptionDeltaEvent &
      Beta.ConversationItemInputAudioTranscriptionDeltaEvent;
    assert.deepEqual(delta, {
      type: 'conversation.item.input_audio_transcription.delta',
      event_id: delta.event_id,
      item_id: 'item_1',
      content_index: 0,
      delta: ' And so',
      logprobs,
    });
    assert.equal('logprobs' in transcriptionDeltaEvent({ itemId: 'item_1', delta: 'x' }), false);

    const completed = transcriptionCompletedEvent({
      itemId: 'item_1',
      transcript: ' And so my fellow',
      audioSeconds: 3.2,
    }) satisfies GA.ConversationItemInputAudioTranscriptionCompletedEvent &
      Beta.ConversationItemInputAudioTranscriptionCompletedEvent;
    assert.deepEqual(completed, {
      type: 'conversation.item.input_audio_transcription.completed',
      event_id: completed.event_id,
      item_id: 'item_1',
      content_index: 0,
      transcript: ' And so my fellow',
      usage: { type: 'duration', seconds: 4 },
    });
    assert.deepEqual(
      transcriptionCompletedEvent({ itemId: 'i', transcript: '', audioSeconds: 1, logprobs }).logprobs,
      logprobs,
    );

    const failed = transcriptionFailedEvent({
      itemId: 'item_1',
      error: new ApiError('engine_crashed', { exit: 'exited with code 1' }),
    }) satisfies OnTheWire<GA.ConversationItemInputAudioTranscriptionFailedEvent>;
    assert.deepEqual(failed, {
      type: 'conversation.item.input_audio_transcription.failed',
      event_id: failed.event_id,
      item_id: 'item_1',
      content_index: 0,
      error: {
        type: 'server_error',
        code: 'engine_crashed',
        message: 'The engine worker stopped (exited with code 1) while transcribing; try again.',
        param: null,
      },
    });
  });

  it('error events echo the client event id, and every event has its own id', () => {
    const error = errorEvent(
      new ApiError('input_audio_buffer_commit_empty', { bufferedMs: 0 }),
      'commit_1',
    ) satisfies GA.RealtimeErrorEvent & Beta.ErrorEvent;
    assert.deepEqual(error, {
      type: 'error',
      event_id: error.event_id,
      error: {
        type: 'invalid_request_error',
        code: 'input_audio_buffer_commit_empty',
        message:
          'Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, but buffer only has 0.00ms of audio.',
        param: null,
        event_id: 'commit_1',
      },
    });
    const ids = new Set(Array.from({ length: 1000 }, () => clearedEvent().event_id));
    assert.equal(ids.size, 1000);
  });

  it('session objects of the minting routes satisfy the SDK answers', () => {
    const ga = {
      value: 'ek_x',
      expires_at: 1,
      session: gaSessionObject(config, FACTS),
    } satisfies OnTheWire<ClientSecretCreateResponse>;
    assert.equal(ga.session.type, 'transcription');
    const beta = {
      ...betaSessionObject(config, FACTS),
      client_secret: { value: 'ek_x', expires_at: 1 },
    } satisfies OnTheWire<GA.TranscriptionSessionUpdatedEvent.Session>;
    assert.equal(beta.client_secret.value, 'ek_x');
  });
});

describe('the realtime WebSocket handshake', () => {
  it('selects realtime when offered, else a protocol that carries no key, else the first', () => {
    assert.equal(selectSubprotocol(new Set(['realtime', 'openai-insecure-api-key.sk-1'])), 'realtime');
    assert.equal(
      selectSubprotocol(new Set(['openai-insecure-api-key.sk-1', 'openai-beta.realtime-v1'])),
      'openai-beta.realtime-v1',
    );
    assert.equal(selectSubprotocol(new Set(['openai-insecure-api-key.sk-1'])), 'openai-insecure-api-key.sk-1');
    assert.equal(selectSubprotocol(new Set()), false);
  });

  it('reads the key of the openai-insecure-api-key subprotocol and the dialect asked for', () => {
    assert.deepEqual(offeredSubprotocols('realtime, openai-insecure-api-key.sk-abc'), [
      'realtime',
      'openai-insecure-api-key.sk-abc',
    ]);
    assert.equal(subprotocolApiKey('realtime, openai-insecure-api-key.ek_123'), 'ek_123');
    assert.equal(subprotocolApiKey('realtime'), undefined);
    assert.equal(subprotocolApiKey(undefined), undefined);
    assert.equal(upgradeDialect({}), 'ga');
    assert.equal(upgradeDialect({ 'openai-beta': 'realtime=v1' }), 'beta');
    assert.equal(upgradeDialect({ 'sec-websocket-protocol': 'realtime, openai-beta.realtime-v1' }), 'beta');
  });
});
