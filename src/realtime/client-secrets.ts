// Ephemeral keys (`ek_…`): minted by POST /v1/realtime/client_secrets (or the beta
// /v1/realtime/transcription_sessions) with a session config, each opens one realtime session before it
// expires, and that session starts with the config. Held in memory only (a restart forgets them), by
// the key's SHA-256 (the store never holds a key), and bounded: a flood of minting cannot grow it.
import { createHash, randomBytes } from 'node:crypto';
import { ApiError } from '../api-errors.ts';
import type { Dialect, SessionConfig } from './protocol.ts';

/** The route ephemeral keys open, and the only one they are good for. */
export const REALTIME_ROUTE = '/v1/realtime';
export const EPHEMERAL_KEY_PREFIX = 'ek_';

/** What a key was minted with: the realtime route starts its session from this. */
export interface EphemeralSession {
  config: SessionConfig;
  /** The dialect of the route that minted the key (beta: transcription_sessions). */
  dialect: Dialect;
  /** The `sess_…` id the minting answer gave; the session it opens reports the same. */
  sessionId: string;
  /** The identity (apiKeyId) of the API key that minted it; undefined without keys. */
  mintedBy: string | undefined;
}

export type Redemption =
  | {
      ok: true;
      session: EphemeralSession;
      /** Makes the key usable again: for an upgrade that was refused after the key was taken. */
      release: () => void;
    }
  | { ok: false; why: 'unknown' | 'used' }
  | { ok: false; why: 'expired'; expiredAt: Date };

interface Entry {
  expiresAtMs: number;
  /** Dropped once the key is used or found expired (the entry stays, to say which). */
  session: EphemeralSession | undefined;
  used: boolean;
}

/**
 * Unused keys the store holds at most. Each holds a session config (a prompt is at most 4096
 * characters), so this bounds the store to a few tens of MB; a client minting past it gets 429
 * `too_many_client_secrets` until keys are used or expire.
 */
const MAX_OUTSTANDING = 4096;
/** Used and expired keys are remembered this long past their expiry, to answer "used"/"expired". */
const REMEMBER_MS = 10 * 60_000;
/** And at most this many of them (oldest forgotten first): a forgotten key reads as unknown. */
const MAX_REMEMBERED = 4096;

const digest = (value: string) => createHash('sha256').update(value).digest('hex');

export class ClientSecretStore {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly options: { maxOutstanding?: number; maxRemembered?: number; now?: () => number } = {}) {}

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  /** Keys issued, neither used nor expired. */
  get outstanding(): number {
    const now = this.now();
    let count = 0;
    for (const entry of this.entries.values()) if (!entry.used && entry.expiresAtMs > now) count++;
    return count;
  }

  /** A new key for `session`, good for `ttlSeconds`; its expiry in seconds since the epoch. */
  issue(session: EphemeralSession, ttlSeconds: number): { value: string; expiresAt: number } {
    const now = this.now();
    this.sweep(now);
    const maxOutstanding = this.options.maxOutstanding ?? MAX_OUTSTANDING;
    let outstanding = 0;
    let firstExpiry = Infinity;
    for (const entry of this.entries.values()) {
      if (entry.used || entry.expiresAtMs <= now) continue;
      outstanding++;
      firstExpiry = Math.min(firstExpiry, entry.expiresAtMs);
    }
    if (outstanding >= maxOutstanding) {
      const retryAfterSeconds = Math.max(1, Math.ceil((firstExpiry - now) / 1000));
      throw new ApiError('too_many_client_secrets', { outstanding, retryAfterSeconds }, { retryAfterSeconds });
    }
    // 128 random bits, written as OpenAI writes its keys (`ek_` and 32 hex digits).
    const value = `${EPHEMERAL_KEY_PREFIX}${randomBytes(16).toString('hex')}`;
    // Whole seconds, as the answer states them: the key is good until exactly that second.
    const expiresAt = Math.floor(now / 1000) + ttlSeconds;
    this.entries.set(digest(value), { expiresAtMs: expiresAt * 1000, session, used: false });
    return { value, expiresAt };
  }

  /** Takes the key: the first redemption gets its session, every later one is told why not. */
  redeem(value: string): Redemption {
    const key = digest(value);
    const entry = this.entries.get(key);
    if (!entry) return { ok: false, why: 'unknown' };
    if (entry.used) return { ok: false, why: 'used' };
    if (entry.expiresAtMs <= this.now() || !entry.session) {
      entry.session = undefined;
      return { ok: false, why: 'expired', expiredAt: new Date(entry.expiresAtMs) };
    }
    const session = entry.session;
    entry.used = true;
    entry.session = undefined;
    const release = () => {
      // Only the same entry, unless it expired meanwhile: a release never revives a forgotten key.
      if (this.entries.get(key) !== entry) return;
      entry.used = false;
      entry.session = session;
    };
    return { ok: true, session, release };
  }

  /** Forgets keys remembered long enough, and the oldest used or expired ones past the cap. */
  private sweep(now: number): void {
    let remembered = 0;
    for (const [key, entry] of this.entries) {
      if (entry.expiresAtMs + REMEMBER_MS <= now) this.entries.delete(key);
      else if (entry.used || entry.expiresAtMs <= now) remembered++;
    }
    let excess = remembered - (this.options.maxRemembered ?? MAX_REMEMBERED);
    for (const [key, entry] of this.entries) {
      if (excess <= 0) break;
      if (!entry.used && entry.expiresAtMs > now) continue;
      this.entries.delete(key);
      excess--;
    }
  }
}
