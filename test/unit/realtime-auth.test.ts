// The realtime WebSocket's handshake: keys as for HTTP (the Authorization header), the
// `openai-insecure-api-key.KEY` subprotocol that browsers and the Node SDK's OpenAIRealtimeWebSocket
// send (with `realtime` selected back, or they drop the connection), and ephemeral keys: one session
// each, with the config they were minted with; expired or reused ones are refused with 401.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { ClientSecretStore } from '../../src/realtime/client-secrets.ts';
import { handshake, realtimeStub, type Handshake } from '../support/realtime-app.ts';

const disposals: (() => Promise<void>)[] = [];
after(() => Promise.all(disposals.map((dispose) => dispose())));

const KEY = 'right-key-0123456789';

async function stub(env: Record<string, string> = {}, keys: string[] = [KEY], clientSecrets?: ClientSecretStore) {
  const server = await realtimeStub(env, { apiKeys: keys, ...(clientSecrets && { clientSecrets }) });
  disposals.push(server.dispose);
  return server;
}

let shared: Promise<Awaited<ReturnType<typeof stub>>> | undefined;
/** One server for the tests that need nothing of their own (failed checks not limited: tests share it). */
const sharedStub = () => (shared ??= stub({ EARSHOT_AUTH_FAILURES_PER_MINUTE: '0' }));

async function mint(server: Awaited<ReturnType<typeof stub>>, payload: object = {}): Promise<string> {
  const response = await server.app.inject({
    method: 'POST',
    url: '/v1/realtime/client_secrets',
    headers: { authorization: `Bearer ${KEY}` },
    payload,
  });
  assert.equal(response.statusCode, 200, response.body);
  return response.json<{ value: string }>().value;
}

function opened(result: Handshake) {
  assert.ok(result.opened, result.opened ? '' : `refused ${result.status}: ${result.body.error.message}`);
  return result;
}

function refused(result: Handshake, status: number, code: string | null) {
  assert.ok(!result.opened, 'refused');
  assert.equal(result.status, status);
  assert.equal(result.body.error.code, code);
  return result.body.error;
}

describe('API keys on the realtime WebSocket', () => {
  it('takes the key in the Authorization header (the Python SDK, OpenAIRealtimeWS)', async () => {
    const server = await sharedStub();
    const result = opened(await handshake(server, { headers: { authorization: `Bearer ${KEY}` } }));
    assert.match(result.report.apiKeyId ?? '', /^[0-9a-f]{64}$/, 'the key check ran and passed');
    assert.equal(result.report.ephemeralSession, null);
  });

  it('takes the key as the openai-insecure-api-key subprotocol and selects realtime', async () => {
    const server = await sharedStub();
    const browser = opened(await handshake(server, { protocols: ['realtime', `openai-insecure-api-key.${KEY}`] }));
    assert.equal(browser.protocol, 'realtime', 'the subprotocol selected in the handshake');
    assert.match(browser.report.apiKeyId ?? '', /^[0-9a-f]{64}$/);
    // A client offering only the key still gets a subprotocol back (ws and browsers drop one that gets none).
    const keyOnly = opened(await handshake(server, { protocols: [`openai-insecure-api-key.${KEY}`] }));
    assert.equal(keyOnly.protocol, `openai-insecure-api-key.${KEY}`);
    // With the key in the header, `realtime` alone is offered (the beta dialect's subprotocol too).
    const both = opened(
      await handshake(server, {
        protocols: ['realtime', 'openai-beta.realtime-v1'],
        headers: { authorization: `Bearer ${KEY}` },
      }),
    );
    assert.equal(both.protocol, 'realtime');
  });

  it('refuses a missing or wrong key with 401 before upgrading, in OpenAI shape', async () => {
    const server = await sharedStub();
    refused(await handshake(server, { protocols: ['realtime'] }), 401, null);
    const wrong = refused(
      await handshake(server, { protocols: ['realtime', 'openai-insecure-api-key.wrong-key-0000000'] }),
      401,
      'invalid_api_key',
    );
    assert.equal(wrong.message, 'Incorrect API key provided: wro***0000.');
    refused(await handshake(server, { headers: { authorization: 'Bearer nope' } }), 401, 'invalid_api_key');
  });

  it(
    'closes the connection of a refused upgrade (it left the HTTP server, no timeout would)',
    { timeout: 10_000 },
    async () => {
      const server = await sharedStub();
      const { hostname, port } = new URL(server.url);
      const socket = net.connect(Number(port), hostname);
      socket.write(
        'GET /v1/realtime?intent=transcription HTTP/1.1\r\nHost: earshot\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
          'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
      );
      let answer = '';
      socket.setEncoding('utf8').on('data', (chunk: string) => (answer += chunk));
      // Ended by the server: the client never closes its side.
      await once(socket, 'end');
      socket.destroy();
      assert.match(answer, /^HTTP\/1\.1 401 /);
      assert.match(answer, /\r\nconnection: close\r\n/i);
    },
  );

  it('reads the subprotocol key on the realtime route only', async () => {
    const server = await sharedStub();
    const response = await server.app.inject({
      url: '/v1/models',
      headers: { 'sec-websocket-protocol': `realtime, openai-insecure-api-key.${KEY}` },
    });
    assert.equal(response.statusCode, 401);
  });

  it('counts wrong keys on the WebSocket against the address, as for HTTP', async () => {
    const server = await stub({ EARSHOT_AUTH_FAILURES_PER_MINUTE: '2' });
    refused(
      await handshake(server, { protocols: ['realtime', 'openai-insecure-api-key.guess-1'] }),
      401,
      'invalid_api_key',
    );
    refused(
      await handshake(server, { protocols: ['realtime', 'openai-insecure-api-key.ek_guess'] }),
      401,
      'invalid_client_secret',
    );
    refused(await handshake(server, { headers: { authorization: `Bearer ${KEY}` } }), 429, 'too_many_auth_failures');
  });
});

describe('ephemeral keys on the realtime WebSocket', () => {
  it('opens one session with the config the key was minted with; a reused key gets 401', async () => {
    const server = await sharedStub();
    const key = await mint(server, {
      session: {
        type: 'transcription',
        audio: { input: { transcription: { model: 'base', language: 'en' }, turn_detection: null } },
      },
    });
    const result = opened(await handshake(server, { protocols: ['realtime', `openai-insecure-api-key.${key}`] }));
    assert.equal(result.protocol, 'realtime');
    const session = result.report.ephemeralSession;
    assert.ok(session);
    assert.equal(session.dialect, 'ga');
    assert.match(session.sessionId, /^sess_/);
    assert.deepEqual(session.config, {
      inputFormat: 'audio/pcm',
      model: 'base',
      language: 'en',
      turnDetection: null,
      noiseReduction: null,
      includeLogprobs: false,
    });
    assert.equal(result.report.apiKeyId, session.mintedBy, 'the session counts against the key that minted it');

    const again = refused(
      await handshake(server, { headers: { authorization: `Bearer ${key}` } }),
      401,
      'invalid_client_secret',
    );
    assert.match(
      again.message,
      /^The ephemeral key ek_\*\*\*[0-9a-f]{4} has already opened a session; each opens one\./,
    );
  });

  it('works as a bearer token too, and carries the beta dialect when minted by transcription_sessions', async () => {
    const server = await sharedStub();
    const response = await server.app.inject({
      method: 'POST',
      url: '/v1/realtime/transcription_sessions',
      headers: { authorization: `Bearer ${KEY}` },
      payload: { input_audio_format: 'g711_ulaw' },
    });
    const key = response.json<{ client_secret: { value: string } }>().client_secret.value;
    const result = opened(await handshake(server, { headers: { authorization: `Bearer ${key}` } }));
    assert.equal(result.report.ephemeralSession?.dialect, 'beta');
    assert.equal(result.report.ephemeralSession?.config.inputFormat, 'audio/pcmu');
  });

  it('refuses an expired key with 401 saying when it expired', async () => {
    let now = Date.now();
    const server = await stub({}, [KEY], new ClientSecretStore({ now: () => now }));
    const key = await mint(server, { expires_after: { seconds: 10 } });
    now += 10_000;
    const error = refused(
      await handshake(server, { protocols: ['realtime', `openai-insecure-api-key.${key}`] }),
      401,
      'invalid_client_secret',
    );
    assert.match(
      error.message,
      /^The ephemeral key ek_\*\*\*[0-9a-f]{4} expired at \d{4}-\d\d-\d\dT[\d:.]+Z; get a new one/,
    );
  });

  it('gives the key back when the upgrade is refused after the key check (429 too_many_sessions)', async () => {
    const server = await sharedStub();
    const key = await mint(server);
    server.full.value = true;
    refused(await handshake(server, { headers: { authorization: `Bearer ${key}` } }), 429, 'too_many_sessions');
    server.full.value = false;
    opened(await handshake(server, { headers: { authorization: `Bearer ${key}` } }));
  });

  it('without API keys: a known key still brings its config and opens once; an unknown one passes like any key', async () => {
    const server = await stub({}, []);
    const response = await server.app.inject({
      method: 'POST',
      url: '/v1/realtime/client_secrets',
      payload: { session: { type: 'transcription', include: ['item.input_audio_transcription.logprobs'] } },
    });
    const key = response.json<{ value: string }>().value;
    const result = opened(await handshake(server, { headers: { authorization: `Bearer ${key}` } }));
    assert.equal(result.report.ephemeralSession?.config.includeLogprobs, true);
    assert.equal(result.report.apiKeyId, null);
    refused(await handshake(server, { headers: { authorization: `Bearer ${key}` } }), 401, 'invalid_client_secret');
    const unknown = opened(
      await handshake(server, { headers: { authorization: 'Bearer ek_00000000000000000000000000000000' } }),
    );
    assert.equal(unknown.report.ephemeralSession, null);
    opened(await handshake(server, { protocols: ['realtime'] }));
  });
});
