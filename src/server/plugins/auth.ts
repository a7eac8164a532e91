// API keys: `Authorization: Bearer KEY`, compared in constant time, never logged. With no keys
// configured every request is accepted (the OpenAI SDKs always send some key). The realtime WebSocket
// (`GET /v1/realtime`) also takes the key as the subprotocol `openai-insecure-api-key.KEY` (browsers
// cannot set headers), and takes ephemeral keys (`ek_…`, minted by POST /v1/realtime/client_secrets):
// each opens one session, which starts with the config it was minted with (request.ephemeralSession).
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../../api-errors.ts';
import {
  EPHEMERAL_KEY_PREFIX,
  REALTIME_ROUTE,
  type ClientSecretStore,
  type EphemeralSession,
} from '../../realtime/client-secrets.ts';
import { subprotocolApiKey } from '../../realtime/protocol.ts';

/** The configured keys: the list plus the key file's lines (blank lines and `#` comments skipped). */
export function loadApiKeys(keys: readonly string[], keyFile: string | undefined): string[] {
  const fromFile = keyFile
    ? readFileSync(keyFile, 'utf8')
        .split('\n')
        .map((line) => line.trim())
        .filter((line) => line !== '' && !line.startsWith('#'))
    : [];
  const all = [...new Set([...keys, ...fromFile])];
  // Header values travel as bytes that Node reads as Latin-1: a key beyond printable ASCII would
  // match for a client that sends Latin-1 and never for one that sends UTF-8 (curl, Node, the SDKs).
  const unusable = all.findIndex((key) => !/^[\x20-\x7e]+$/.test(key));
  if (unusable >= 0) {
    throw new Error(
      `API key ${unusable + 1} of ${all.length} (EARSHOT_API_KEYS first, then the key file) holds a character that is not printable ASCII; clients could not send it.`,
    );
  }
  const ephemeral = all.findIndex((key) => key.startsWith(EPHEMERAL_KEY_PREFIX));
  if (ephemeral >= 0) {
    throw new Error(
      `API key ${ephemeral + 1} of ${all.length} (EARSHOT_API_KEYS first, then the key file) starts with ${EPHEMERAL_KEY_PREFIX}, which marks the ephemeral keys earshot mints; choose another.`,
    );
  }
  return all;
}

const digest = (value: string) => createHash('sha256').update(value).digest();

/** The key of `Authorization: Bearer KEY`: the scheme in any case, any spaces around the key. */
export function parseBearer(authorization: string | undefined): string | undefined {
  return /^Bearer\s+(.+)$/i.exec(authorization?.trim() ?? '')?.[1]?.trim() || undefined;
}

/** Shows a key the way OpenAI does in its 401 message: enough to recognise, not to reuse. */
export function masked(key: string): string {
  return key.length > 10 ? `${key.slice(0, 3)}***${key.slice(-4)}` : '***';
}

export class ApiKeyChecker {
  private readonly digests: Buffer[];

  constructor(keys: readonly string[]) {
    this.digests = keys.map(digest);
  }

  get enabled(): boolean {
    return this.digests.length > 0;
  }

  /**
   * The identity of the configured key this Authorization header carries (the key's SHA-256, hex:
   * the same for every spelling of the header that carries that key), or the error to answer.
   */
  authenticate(authorization: string | undefined): { keyId: string } | { error: ApiError } {
    return this.authenticateKey(parseBearer(authorization));
  }

  /** The same, for a key however it came (the header, the realtime subprotocol). */
  authenticateKey(key: string | undefined): { keyId: string } | { error: ApiError } {
    if (!key) {
      return {
        error: new ApiError('missing_api_key'),
      };
    }
    // Equal-length digests compared against every key: the time taken says nothing about any key.
    const candidate = digest(key);
    let matched = false;
    for (const known of this.digests) matched = timingSafeEqual(candidate, known) || matched;
    return matched
      ? { keyId: candidate.toString('hex') }
      : { error: new ApiError('invalid_api_key', { maskedKey: masked(key) }) };
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * The authenticated key's identity (its SHA-256, hex; never the key), set by the key check on
     * every request it let through; undefined when no keys are configured or on public paths.
     */
    apiKeyId: string | undefined;
    /**
     * The realtime route's request opened with an ephemeral key: the session config (and dialect,
     * session id) it was minted with. Set by the key check, which has spent the key by then (it is
     * given back if the upgrade is answered with an error status instead).
     */
    ephemeralSession: EphemeralSession | undefined;
  }
}

/**
 * The client an address stands for in per-address limits: an IPv4 address itself (also when it comes
 * IPv4-mapped, `::ffff:1.2.3.4`), an IPv6 address by its /64 prefix. One IPv6 host is usually given a
 * whole /64: counted by full address, a client could rotate through them and never meet a limit.
 */
export function clientAddress(ip: string | undefined): string {
  if (!ip) return 'unknown';
  const address = ip.split('%')[0] ?? ip;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1] ?? address;
  if (!address.includes(':')) return address;
  const [head = '', tail] = address.split('::');
  const groups = head === '' ? [] : head.split(':');
  if (tail !== undefined) {
    const tailGroups = tail === '' ? [] : tail.split(':');
    // An embedded IPv4 address (the last 32 bits) stands for two groups.
    const tailLength = tailGroups.reduce((length, group) => length + (group.includes('.') ? 2 : 1), 0);
    groups.push(...Array<string>(Math.max(0, 8 - groups.length - tailLength)).fill('0'), ...tailGroups);
  }
  const prefix = groups.slice(0, 4).map((group) => (Number.parseInt(group, 16) || 0).toString(16));
  return `${prefix.join(':')}::/64`;
}

/**
 * Who a request counts against for per-client limits (rate, upload space): its API key when keys are
 * in use (by identity, so every spelling of the header is one client), else its address.
 */
export function clientIdentity(request: FastifyRequest): string {
  return request.apiKeyId === undefined ? `address:${clientAddress(request.ip)}` : `key:${request.apiKeyId}`;
}

const FAILURE_WINDOW_MS = 60_000;
// Entries expire with their window; past this many, expired ones are swept on the next failure.
const SWEEP_ABOVE = 10_000;

/**
 * Failed key checks per client address, in fixed one-minute windows. The 401 comes before the rate
 * limiter (which counts per key, so it cannot count a wrong one): without this, keys could be
 * guessed at any speed. An address past its allowance is refused, right key or not, until its
 * window ends: answering a right key would tell a guesser it had found one.
 */
export class AuthFailureLimiter {
  private readonly windows = new Map<string, { failures: number; endsAt: number }>();

  constructor(
    private readonly maxPerMinute: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Seconds until the address may try again, or undefined if it may now. */
  retryAfter(address: string): number | undefined {
    const window = this.windows.get(address);
    if (!window || window.failures < this.maxPerMinute) return undefined;
    const left = window.endsAt - this.now();
    if (left <= 0) return undefined;
    return Math.ceil(left / 1000);
  }

  recordFailure(address: string): void {
    const now = this.now();
    if (this.windows.size > SWEEP_ABOVE) {
      for (const [key, window] of this.windows) if (window.endsAt <= now) this.windows.delete(key);
    }
    const window = this.windows.get(address);
    if (window && window.endsAt > now) window.failures++;
    else this.windows.set(address, { failures: 1, endsAt: now + FAILURE_WINDOW_MS });
  }
}

/**
 * The key a request carries: `Authorization: Bearer KEY`, or on the realtime route the subprotocol
 * `openai-insecure-api-key.KEY` (what OpenAI's browser client sends; the header wins if both are sent).
 */
function requestKey(request: FastifyRequest, realtime: boolean): string | undefined {
  return (
    parseBearer(request.headers.authorization) ??
    (realtime ? subprotocolApiKey(request.headers['sec-websocket-protocol']) : undefined)
  );
}

/**
 * Adds the key check to every route of the app but the public ones (and CORS preflights). Ephemeral
 * keys are good on the realtime route only, and looked up even without API keys configured (their
 * session config must apply); there, without API keys, an ephemeral key the store does not know is
 * accepted like any key (a restart forgets them), one that expired or was used is refused.
 */
export function installApiKeyCheck(
  app: FastifyInstance,
  options: {
    checker: ApiKeyChecker;
    /** Paths that answer without a key (health, metrics, the API's docs, as configured). */
    isPublic: (path: string) => boolean;
    failures?: AuthFailureLimiter;
    /** The admin keys (EARSHOT_ADMIN_API_KEYS), when set: the only keys the admin API takes. */
    admin?: ApiKeyChecker;
    /** Where ephemeral keys are minted; without it, an `ek_…` key is checked as an API key. */
    clientSecrets?: ClientSecretStore;
  },
): void {
  app.decorateRequest('apiKeyId', undefined);
  app.decorateRequest('ephemeralSession', undefined);
  const { checker, failures, clientSecrets } = options;
  if (!checker.enabled && !clientSecrets) return;
  /** How to give back the ephemeral key a request took, if its upgrade is refused after the check. */
  const releases = new WeakMap<FastifyRequest, () => void>();

  app.addHook('onRequest', async (request) => {
    if (request.method === 'OPTIONS' || options.isPublic(request.url.split('?')[0] ?? '')) return;
    const realtime = request.routeOptions.url === REALTIME_ROUTE;
    const key = requestKey(request, realtime);
    const ephemeral = clientSecrets !== undefined && key?.startsWith(EPHEMERAL_KEY_PREFIX) === true;
    if (!checker.enabled && !(ephemeral && realtime)) return;
    const address = clientAddress(request.ip);
    if (checker.enabled) {
      const retryAfter = failures?.retryAfter(address);
      if (retryAfter !== undefined) {
        throw new ApiError(
          'too_many_auth_failures',
          { retryAfterSeconds: retryAfter },
          { retryAfterSeconds: retryAfter },
        );
      }
    }
    if (ephemeral && key !== undefined && clientSecrets !== undefined) {
      // Not a guess at a key: a client holding a good one sent it to the wrong place.
      if (!realtime) throw new ApiError('invalid_client_secret', { why: 'wrong_route' });
      const redemption = clientSecrets.redeem(key);
      if (redemption.ok) {
        request.ephemeralSession = redemption.session;
        request.apiKeyId = redemption.session.mintedBy;
        releases.set(request, redemption.release);
        return;
      }
      if (!checker.enabled && redemption.why === 'unknown') return;
      if (checker.enabled) failures?.recordFailure(address);
      throw new ApiError(
        'invalid_client_secret',
        redemption.why === 'expired'
          ? { why: 'expired', maskedKey: masked(key), expiredAt: redemption.expiredAt.toISOString() }
          : { why: redemption.why, maskedKey: masked(key) },
      );
    }
    const result = checker.authenticateKey(key);
    if ('error' in result) {
      failures?.recordFailure(address);
      throw result.error;
    }
    request.apiKeyId = result.keyId;
    // By the route matched, not the URL as sent: `/api/p%73` is the same route.
    if (options.admin && request.routeOptions.url?.startsWith('/api/ps')) {
      if ('error' in options.admin.authenticateKey(key)) {
        throw new ApiError('admin_key_required');
      }
    }
  });

  if (clientSecrets) {
    // An upgrade answered with an error (429 too_many_sessions, a shutdown's 503) opened no session:
    // the key it took may open one later. An upgraded request is hijacked and gets no onResponse.
    app.addHook('onResponse', async (request, reply) => {
      const release = releases.get(request);
      if (release && reply.statusCode >= 400) release();
    });
  }
}
