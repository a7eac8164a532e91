// The playground's files (GET /, /playground/*): public whatever the key settings, with their content
// types, revalidated by ETag, the page under its security policy, nothing served but the listed files.
// The page itself is tested in Chromium (test/browser/playground.test.ts).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { projectRoot } from '../../src/paths.ts';
import { PLAYGROUND_PATHS } from '../../src/server/routes/playground.ts';
import { stubApp } from '../support/stub-app.ts';

/** The app with API keys on, closed when the test ends. */
async function app(t: TestContext, env: Record<string, string> = {}) {
  const stub = await stubApp(env, { apiKeys: ['right-key-0123456789'] });
  t.after(stub.dispose);
  return stub.app;
}

describe('the playground files', () => {
  it('serves the page and each file with its type, to anyone, even with keys on', async (t) => {
    const server = await app(t);
    const page = await server.inject({ url: '/' });
    assert.equal(page.statusCode, 200);
    assert.equal(page.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(page.body, readFileSync(path.join(projectRoot, 'src', 'playground', 'index.html'), 'utf8'));
    assert.match(String(page.headers['content-security-policy']), /default-src 'self'.*frame-ancestors 'none'/);
    assert.equal(page.headers['x-content-type-options'], 'nosniff');

    const types = new Map<string, string>();
    for (const url of PLAYGROUND_PATHS) {
      const response = await server.inject({ url });
      assert.equal(response.statusCode, 200, url);
      types.set(path.extname(url) || '.html', String(response.headers['content-type']));
    }
    assert.deepEqual(Object.fromEntries(types), {
      '.html': 'text/html; charset=utf-8',
      '.css': 'text/css; charset=utf-8',
      '.svg': 'image/svg+xml',
      '.js': 'text/javascript; charset=utf-8',
      '.json': 'application/json; charset=utf-8',
    });
    // Every file a module imports is served (an import the list lacks would break the page).
    for (const url of PLAYGROUND_PATHS.filter((url) => url.endsWith('.js'))) {
      const source = (await server.inject({ url })).body;
      for (const [, imported] of source.matchAll(/from '\.\/([\w-]+\.js)'/g)) {
        assert.ok(PLAYGROUND_PATHS.includes(`/playground/${imported}`), `${url} imports ${imported}`);
      }
    }
    assert.equal((await server.inject({ url: '/v1/models' })).statusCode, 401, 'the API still needs a key');
  });

  it('stays open to an address that failed too many key checks', async (t) => {
    const server = await app(t, { EARSHOT_AUTH_FAILURES_PER_MINUTE: '2' });
    for (let i = 0; i < 3; i++) await server.inject({ url: '/v1/models' });
    assert.equal((await server.inject({ url: '/v1/models' })).statusCode, 429);
    assert.equal((await server.inject({ url: '/' })).statusCode, 200);
  });

  it('answers 304 while the file is unchanged, and asks browsers to check every time', async (t) => {
    const server = await app(t);
    const first = await server.inject({ url: '/playground/main.js' });
    assert.equal(first.headers['cache-control'], 'no-cache');
    const etag = String(first.headers.etag);
    assert.match(etag, /^"[\w-]{22}"$/);
    const again = await server.inject({ url: '/playground/main.js', headers: { 'if-none-match': `W/${etag}` } });
    assert.equal(again.statusCode, 304);
    assert.equal(again.body, '');
    const changed = await server.inject({ url: '/playground/main.js', headers: { 'if-none-match': '"other"' } });
    assert.equal(changed.statusCode, 200);
  });

  it('serves nothing else: no other file of the directory, no way out of it', async (t) => {
    const server = await app(t, { EARSHOT_AUTH_FAILURES_PER_MINUTE: '0' });
    for (const url of [
      '/playground/tsconfig.json',
      '/playground/worklet-globals.d.ts',
      '/playground/',
      '/playground/../paths.ts',
      '/playground/%2e%2e/paths.ts',
      '/playground/..%2fpaths.ts',
      '/index.html',
    ]) {
      const response = await server.inject({ url, headers: { authorization: 'Bearer right-key-0123456789' } });
      assert.equal(response.statusCode, 404, url);
      assert.equal(response.json<{ error: { type: string } }>().error.type, 'invalid_request_error', url);
    }
  });

  it('lists the languages the installed engine knows', async (t) => {
    const server = await app(t);
    const languages = (await server.inject({ url: '/playground/languages.json' })).json<
      { code: string; name: string }[]
    >();
    assert.ok(languages.length >= 99, `${languages.length} languages`);
    assert.deepEqual(
      languages.find((language) => language.code === 'de'),
      { code: 'de', name: 'german' },
    );
  });
});
