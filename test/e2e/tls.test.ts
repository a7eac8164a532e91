// The real server serving HTTPS (EARSHOT_TLS_CERT, EARSHOT_TLS_KEY) with a self-signed certificate, and
// refusing at start a certificate without its key or with another's key, in words that name the cause.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { generate } from 'selfsigned';
import { projectRoot } from '../../src/paths.ts';
import { startServer } from '../support/server.ts';
import { httpsGet, selfSignedCertificate } from '../support/tls.ts';

/** Runs src/main.ts with `env` until it exits (it must, before listening). */
function startAndFail(env: Record<string, string>) {
  return spawnSync(process.execPath, ['--import', 'tsx', path.join(projectRoot, 'src', 'main.ts')], {
    cwd: projectRoot,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', EARSHOT_LOG_LEVEL: 'info', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

describe('HTTPS from the server itself', () => {
  it('serves HTTPS with the certificate given; /health and /v1/models answer a client trusting it', async () => {
    const certificate = await selfSignedCertificate();
    const server = await startServer({ EARSHOT_WORKERS_PER_MODEL: '1' }, { tls: certificate });
    try {
      assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(server.ca, certificate.cert);
      assert.equal((await httpsGet(`${server.url}/health`, certificate.cert)).status, 200);
      const models = await httpsGet(`${server.baseURL}/models`, certificate.cert);
      assert.equal(models.status, 200, models.body);
      assert.ok((JSON.parse(models.body) as { data: { id: string }[] }).data.some((model) => model.id === 'base'));
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });

  it('refuses to start with a certificate and no key, or with a key that is not its own', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'earshot-tls-bad-'));
    const certificate = await selfSignedCertificate();
    const other = await generate([{ name: 'commonName', value: 'other' }], { keySize: 2048, algorithm: 'sha256' });
    writeFileSync(path.join(dir, 'cert.pem'), certificate.cert);
    writeFileSync(path.join(dir, 'other-key.pem'), other.private);

    const alone = startAndFail({ EARSHOT_TLS_CERT: path.join(dir, 'cert.pem') });
    assert.equal(alone.status, 2);
    assert.match(alone.stderr, /invalid configuration: EARSHOT_TLS_CERT is set without EARSHOT_TLS_KEY/);

    const mismatched = startAndFail({
      EARSHOT_TLS_CERT: path.join(dir, 'cert.pem'),
      EARSHOT_TLS_KEY: path.join(dir, 'other-key.pem'),
    });
    assert.equal(mismatched.status, 2);
    assert.match(
      mismatched.stdout,
      /The TLS certificate .*cert\.pem and key .*other-key\.pem could not be used: .*key values mismatch/,
    );
    const missing = startAndFail({
      EARSHOT_TLS_CERT: path.join(dir, 'cert.pem'),
      EARSHOT_TLS_KEY: path.join(dir, 'nope.pem'),
    });
    assert.equal(missing.status, 2);
    assert.match(missing.stdout, /could not be used: ENOENT/);
  });
});
