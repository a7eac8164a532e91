// What the server's parts share: the dependencies the app is built with, and what each request
// carries (its summary for the log line). Routes and plugins import this, never app.ts, so app.ts
// can import them without a cycle.
import type { FastifyBaseLogger, FastifyPluginAsync } from 'fastify';
import type { Config } from '../config.ts';
import type { Engine, ModelRegistry } from '../engine/index.ts';
import type { Metrics } from '../metrics.ts';
import type { ClientSecretStore } from '../realtime/client-secrets.ts';

export interface AppDependencies {
  config: Config;
  engine: Engine;
  registry: ModelRegistry;
  apiKeys?: readonly string[];
  metrics?: Metrics;
  /** The process's logger; tests leave it out and get one at the configured level. */
  logger?: FastifyBaseLogger;
  /** Where ephemeral keys are kept; tests give one with their own clock (default: a new store). */
  clientSecrets?: ClientSecretStore;
  /** Serve HTTPS (and WSS) with this certificate and key (EARSHOT_TLS_CERT, EARSHOT_TLS_KEY, read). */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** The realtime WebSocket route (realtime/route.ts); tests of the handshake alone put a stub in its place. */
  realtimeRoute?: FastifyPluginAsync<AppDependencies & { newFilePath(): string }>;
}

/** What a request did, for its one log line. Routes fill in what they know. */
export interface RequestSummary {
  model?: string;
  task?: string;
  audioSeconds?: number;
  error?: string;
  /**
   * The request became a WebSocket (ws answered 101 on the socket itself, never through the reply):
   * its line is written when the socket closes, with status 101, not as a client that went away.
   */
  upgraded?: boolean;
  /** Set once the request's line is written, so that it is written once. */
  recorded?: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    summary: RequestSummary;
  }
}
