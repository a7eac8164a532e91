// HTTPS and WSS served by earshot itself (EARSHOT_TLS_CERT, EARSHOT_TLS_KEY): the Node SDK's realtime
// client always connects with wss://. A self-signed certificate made for the test stands in for a real one.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { handshake, realtimeStub } from '../support/realtime-app.ts';
import { httpsGet, selfSignedCertificate } from '../support/tls.ts';

const disposals: (() => Promise<void>)[] = [];
after(() => Promise.all(disposals.map((dispose) => dispose())));

describe('TLS', () => {
  it('serves HTTPS and WSS with the configured certificate', async () => {
    const certificate = await selfSignedCertificate();
    const server = await realtimeStub({}, { apiKeys: ['right-key-0123456789'], tls: certificate });
    disposals.push(server.dispose);
    assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);

    const models = await httpsGet(`${server.url}/v1/models`, certificate.cert, {
      authorization: 'Bearer right-key-0123456789',
    });
    assert.equal(models.status, 200, models.body);
    assert.equal((JSON.parse(models.body) as { object: string }).object, 'list');
    const refused = await httpsGet(`${server.url}/v1/models`, certificate.cert);
    assert.equal(refused.status, 401, 'the same app behind TLS: keys are checked');

    const socket = await handshake(server, {
      ca: certificate.cert,
      protocols: ['realtime', 'openai-insecure-api-key.right-key-0123456789'],
    });
    assert.ok(socket.opened, 'wss:// handshake');
    assert.equal(socket.protocol, 'realtime');

    await assert.rejects(
      fetch(`${server.url}/health`),
      'a client that does not trust the certificate is refused by TLS, not served in the clear',
    );
    await assert.rejects(fetch(`${server.url.replace('https', 'http')}/health`), 'no plain HTTP on the TLS port');
  });
});
