// GET / and /playground/*: the web playground (src/playground/), plain ES modules and CSS with no
// build step. A fixed list of small files, read once at start and kept in memory: nothing in the URL
// ever becomes a file path (no traversal is possible), and no static-file plugin is needed for so few.
// The page holds no secret: it is public (app.ts), and calls the API with the key its user types.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { engineKnowsLanguage, languageName, supportedLanguageCodes } from '../../openai/languages.ts';
import { projectRoot } from '../../paths.ts';

const playgroundDir = path.join(projectRoot, 'src', 'playground');

const CONTENT_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json; charset=utf-8',
} as const;

/** The page's files: URL path → file in src/playground/. */
const FILES: ReadonlyMap<string, string> = new Map([
  ['/', 'index.html'],
  ['/playground/style.css', 'style.css'],
  ['/playground/icon.svg', 'icon.svg'],
  ['/playground/main.js', 'main.js'],
  ['/playground/api.js', 'api.js'],
  ['/playground/transcript.js', 'transcript.js'],
  ['/playground/microphone.js', 'microphone.js'],
  ['/playground/pcm-worklet.js', 'pcm-worklet.js'],
]);

/** Whisper's languages as the page offers them: the codes the installed engine knows, with their names. */
const LANGUAGES_PATH = '/playground/languages.json';

/** Every path the playground serves: public, whatever the API key settings (app.ts). */
export const PLAYGROUND_PATHS: readonly string[] = [...FILES.keys(), LANGUAGES_PATH];

// Only what the page needs: its own scripts, styles and API (the realtime WebSocket included, which
// older browsers do not count as 'self'), the recording it plays (a blob: URL), no framing.
const PAGE_SECURITY_POLICY = [
  "default-src 'self'",
  "connect-src 'self' ws: wss:",
  "media-src 'self' blob:",
  "img-src 'self' data:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

interface Asset {
  body: Buffer;
  contentType: string;
  etag: string;
}

function asset(body: Buffer, contentType: string): Asset {
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
  return { body, contentType, etag };
}

/** If-None-Match holds this ETag (a list, weak or strong, or `*`). */
function matches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return false;
  return ifNoneMatch.split(',').some((tag) => {
    const value = tag.trim().replace(/^W\//, '');
    return value === etag || value === '*';
  });
}

function contentTypeOf(file: string): string {
  const type = CONTENT_TYPES[path.extname(file) as keyof typeof CONTENT_TYPES] as string | undefined;
  if (!type) throw new Error(`The playground serves no ${path.extname(file)} files (${file}).`);
  return type;
}

export async function playgroundRoutes(app: FastifyInstance): Promise<void> {
  const assets = new Map<string, Asset>();
  for (const [urlPath, file] of FILES) {
    assets.set(urlPath, asset(await readFile(path.join(playgroundDir, file)), contentTypeOf(file)));
  }
  const languages = supportedLanguageCodes
    .filter(engineKnowsLanguage)
    .map((code) => ({ code, name: languageName(code) }));
  assets.set(LANGUAGES_PATH, asset(Buffer.from(JSON.stringify(languages)), CONTENT_TYPES['.json']));

  /**
   * Revalidated on every load (no-cache) and answered 304 while unchanged: the files carry no version
   * in their names, so a cached copy must never outlive an upgrade of the server.
   */
  const serve = (served: Asset, request: FastifyRequest, reply: FastifyReply) => {
    void reply
      .header('cache-control', 'no-cache')
      .header('etag', served.etag)
      .header('x-content-type-options', 'nosniff')
      .type(served.contentType);
    if (served.contentType.startsWith('text/html')) {
      void reply.header('content-security-policy', PAGE_SECURITY_POLICY).header('referrer-policy', 'no-referrer');
    }
    if (matches(request.headers['if-none-match'], served.etag)) return reply.code(304).send();
    return reply.send(served.body);
  };

  for (const [urlPath, served] of assets) {
    // A page and its files, not part of the API: left out of /openapi.json.
    app.get(urlPath, { schema: { hide: true } }, async (request, reply) => serve(served, request, reply));
  }
}
