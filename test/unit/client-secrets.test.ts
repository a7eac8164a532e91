// Ephemeral keys: the store (single use, expiry, bounds), the routes that mint them in OpenAI's GA
// and beta shapes, and what they are good for (one realtime session, nothing else).
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ClientSecretStore, type EphemeralSession } from '../../src/realtime/client-secrets.ts';
import { DEFAULT_SESSION_CONFIG } from '../../src/realtime/protocol.ts';
import { stubApp } from '../support/stub-app.ts';

const disposals: (() => Promise<void>)[] = [];
after(() => Promise.all(disposals.map((dispose) => dispose())));

const KEY = 'right-key-0123456789';
const auth = { authorization: `Bearer ${KEY}` };

const session = (sessionId = 'sess_1'): EphemeralSession => ({
  config: { ...DEFAULT_SESSION_CONFIG, model: 'small' },
  dialect: 'ga',
  sessionId,
  mintedBy: 'key-id',
});

describe('the ephemeral key store', () => {
  it('issues ek_ keys that open one session before they expire', () => {
    let now = 1_700_000_000_500;
    const store = new ClientSecretStore({ now: () => now });
    const { value, expiresAt } = store.issue(session(), 60);
    assert.match(value, /^ek_[0-9a-f]{32}$/);
    assert.equal(expiresAt, 1_700_000_060);
    assert.equal(store.outstanding, 1);
    const first = store.redeem(value);
    assert.ok(first.ok);
    assert.deepEqual(first.session, session());
    assert.deepEqual(store.redeem(value), { ok: false, why: 'used' });
    assert.equal(store.outstanding, 0);
    assert.deepEqual(store.redeem('ek_00000000000000000000000000000000'), { ok: false, why: 'unknown' });

    const late = store.issue(session(), 10);
    now += 10_000;
    assert.deepEqual(store.redeem(late.value), {
      ok: false,
      why: 'expired',
      expiredAt: new Date(late.expiresAt * 1000),
    });
    assert.equal(store.redeem(late.value).ok, false, 'and stays so');
  });

  it('gives a key back when the session it was taken for did not open', () => {
    const store = new ClientSecretStore();
    const { value } = store.issue(session(), 60);
    const taken = store.redeem(value);
    assert.ok(taken.ok);
    taken.release();
    const again = store.redeem(value);
    assert.ok(again.ok, 'usable again');
    assert.equal(again.session.sessionId, 'sess_1');
    assert.equal(store.redeem(value).ok, false);
  });

  it('holds a bounded number of unused keys; the refusal says when one expires', () => {
    let now = 0;
    const store = new ClientSecretStore({ now: () => now, maxOutstanding: 2 });
    store.issue(session(), 30);
    store.issue(session(), 60);
    assert.throws(
      () => store.issue(session(), 60),
      (error: { kind: string; retryAfterSeconds: number; status: number }) =>
        error.kind === 'too_many_client_secrets' && error.status === 429 && error.retryAfterSeconds === 30,
    );
    now += 30_000;
    store.issue(session(), 60);
  });

  it('forgets used and expired keys past a bound, oldest first (they then read as unknown)', () => {
    let now = 0;
    const store = new ClientSecretStore({ now: () => now, maxRemembered: 2 });
    const keys = [1, 2, 3].map(() => store.issue(session(), 600).value);
    for (const key of keys) assert.ok(store.redeem(key).ok);
    store.issue(session(), 600);
    assert.deepEqual(
      keys.map((key) => store.redeem(key)),
      [
        { ok: false, why: 'unknown' },
        { ok: false, why: 'used' },
        { ok: false, why: 'used' },
      ],
    );
    now += 600_000 + 10 * 60_000;
    store.issue(session(), 600);
    assert.deepEqual(store.redeem(keys[2] ?? ''), { ok: false, why: 'unknown' }, 'forgotten 10 min after expiry');
  });
});

async function app(env: Record<string, string> = {}, keys: string[] = [KEY]) {
  const stub = await stubApp(env, { apiKeys: keys });
  disposals.push(stub.dispose);
  return stub.app;
}

describe('POST /v1/realtime/client_secrets', () => {
  it("mints a key in OpenAI's shape: the value, its expiry, the validated session", async () => {
    const server = await app({ EARSHOT_DEFAULT_MODEL: 'base' });
    const before = Math.floor(Date.now() / 1000);
    const response = await server.inject({
      method: 'POST',
      url: '/v1/realtime/client_secrets',
      headers: auth,
      payload: {
        expires_after: { anchor: 'created_at', seconds: 120 },
        session: {
          type: 'transcription',
          audio: {
            input: { format: { type: 'audio/pcmu' }, turn_detection: { type: 'semantic_vad', eagerness: 'high' } },
          },
        },
      },
    });
    assert.equal(response.statusCode, 200, response.body);
    const body = response.json<{ value: string; expires_at: number; session: Record<string, unknown> }>();
    assert.match(body.value, /^ek_[0-9a-f]{32}$/);
    assert.ok(body.expires_at >= before + 120 && body.expires_at <= before + 121, String(body.expires_at));
    assert.match(String(body.session.id), /^sess_[A-Za-z0-9]{21}$/);
    assert.deepEqual(body.session, {
      type: 'transcription',
      object: 'realtime.transcription_session',
      id: body.session.id,
      expires_at: 0,
      audio: {
        input: {
          format: { type: 'audio/pcmu' },
          transcription: { model: 'base', language: null, prompt: null },
          noise_reduction: null,
          turn_detection: { type: 'semantic_vad', eagerness: 'high' },
        },
      },
      include: null,
    });

    const byDefault = await server.inject({
      method: 'POST',
      url: '/v1/realtime/client_secrets',
      headers: auth,
      payload: {},
    });
    const expiresAt = byDefault.json<{ expires_at: number }>().expires_at;
    assert.ok(expiresAt >= before + 600 && expiresAt <= before + 601, 'EARSHOT_REALTIME_CLIENT_SECRET_SECONDS, 600');
  });

  it('refuses a bad session with the param, as a session.update would be', async () => {
    const server = await app();
    const cases: [object, number, string, string][] = [
      [{ session: { type: 'realtime' } }, 400, 'unsupported_value', 'session.type'],
      [
        {
          session: {
            type: 'transcription',
            audio: { input: { turn_detection: { type: 'server_vad', threshold: 3 } } },
          },
        },
        400,
        'decimal_above_max_value',
        'session.audio.input.turn_detection.threshold',
      ],
      [{ expires_after: { seconds: 9000 } }, 400, 'integer_above_max_value', 'expires_after.seconds'],
      [
        { session: { type: 'transcription', audio: { input: { transcription: { model: 'no-such-model' } } } } },
        404,
        'model_not_found',
        'session.audio.input.transcription.model',
      ],
    ];
    for (const [payload, status, code, param] of cases) {
      const response = await server.inject({
        method: 'POST',
        url: '/v1/realtime/client_secrets',
        headers: auth,
        payload,
      });
      assert.equal(response.statusCode, status, response.body);
      const { error } = response.json<{ error: { code: string; param: string; type: string } }>();
      assert.deepEqual([error.code, error.param, error.type], [code, param, 'invalid_request_error']);
    }
  });

  it('needs an API key: no key, and an ephemeral key (which cannot mint another), are refused', async () => {
    const server = await app();
    const none = await server.inject({ method: 'POST', url: '/v1/realtime/client_secrets', payload: {} });
    assert.equal(none.statusCode, 401);
    const minted = await server.inject({
      method: 'POST',
      url: '/v1/realtime/client_secrets',
      headers: auth,
      payload: {},
    });
    const ephemeral = { authorization: `Bearer ${minted.json<{ value: string }>().value}` };
    for (const [method, url] of [
      ['POST', '/v1/realtime/client_secrets'],
      ['POST', '/v1/realtime/transcription_sessions'],
      ['GET', '/v1/models'],
    ] as const) {
      const response = await server.inject({
        method,
        url,
        headers: ephemeral,
        ...(method === 'POST' && { payload: {} }),
      });
      assert.equal(response.statusCode, 401, url);
      const { error } = response.json<{ error: { code: string; message: string } }>();
      assert.equal(error.code, 'invalid_client_secret');
      assert.match(error.message, /opens a realtime session at GET \/v1\/realtime and nothing else/);
    }
  });
});

describe('POST /v1/realtime/transcription_sessions (beta)', () => {
  it('mints a key inside the beta session object', async () => {
    const server = await app();
    const before = Math.floor(Date.now() / 1000);
    const response = await server.inject({
      method: 'POST',
      url: '/v1/realtime/transcription_sessions',
      headers: auth,
      payload: {
        input_audio_format: 'g711_alaw',
        input_audio_transcription: { model: 'base', language: 'en' },
        turn_detection: null,
        include: ['item.input_audio_transcription.logprobs'],
        client_secret: { expires_at: { anchor: 'created_at', seconds: 30 } },
      },
    });
    assert.equal(response.statusCode, 200, response.body);
    const body = response.json<Record<string, unknown> & { client_secret: { value: string; expires_at: number } }>();
    assert.match(body.client_secret.value, /^ek_[0-9a-f]{32}$/);
    assert.ok(body.client_secret.expires_at >= before + 30 && body.client_secret.expires_at <= before + 31);
    assert.deepEqual(body, {
      id: body.id,
      object: 'realtime.transcription_session',
      expires_at: 0,
      input_audio_format: 'g711_alaw',
      input_audio_transcription: { model: 'base', language: 'en', prompt: null },
      turn_detection: null,
      input_audio_noise_reduction: null,
      include: ['item.input_audio_transcription.logprobs'],
      client_secret: body.client_secret,
    });
    const bad = await server.inject({
      method: 'POST',
      url: '/v1/realtime/transcription_sessions',
      headers: auth,
      payload: { input_audio_format: 'mp3' },
    });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json<{ error: { param: string } }>().error.param, 'input_audio_format');
  });
});
