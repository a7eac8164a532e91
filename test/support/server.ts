// Starts the real earshot server (src/main.ts, as `npm start` does) on a free port, waits until the
// default model is ready (unless told not to), and stops it. End-to-end tests call it with the
// official OpenAI SDK. With a certificate it serves HTTPS and WSS (EARSHOT_TLS_CERT, EARSHOT_TLS_KEY).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import assert from 'node:assert/strict';
import type { TranscriptionStreamEvent } from 'openai/resources/audio/transcriptions';
import { projectRoot } from '../../src/paths.ts';
import { httpsGet, type Certificate } from './tls.ts';

export const audioDir = path.join(projectRoot, 'test', 'audio');
export const JFK_TEXT =
  'And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.';

export interface RunningServer {
  /** `http://127.0.0.1:PORT`, or https with a certificate. */
  url: string;
  baseURL: string;
  /** With a certificate: the PEM a client trusts it with (its own, self-signed). */
  ca: string | undefined;
  process: ChildProcess;
  logs: Record<string, unknown>[];
  stop(): Promise<number | null>;
}

export interface StartOptions {
  /** Wait until /health answers 200 (the default); false returns as soon as the server listens. */
  waitForReady?: boolean;
  /** Start the server in a process group of its own (to signal the whole group, as a terminal does). */
  detached?: boolean;
  /** Serve HTTPS and WSS with this certificate (written to files the server is pointed at). */
  tls?: Certificate;
}

/** The status of GET `url`, trusting `ca` alone when given (a self-signed certificate). */
async function statusOf(url: string, ca: string | undefined): Promise<number> {
  return ca === undefined ? (await fetch(url)).status : (await httpsGet(url, ca)).status;
}

const READY_TIMEOUT_MS = 120_000;

export async function startServer(
  env: Record<string, string> = {},
  options: StartOptions = {},
): Promise<RunningServer> {
  let tlsEnv: Record<string, string> = {};
  if (options.tls) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'earshot-tls-'));
    writeFileSync(path.join(dir, 'cert.pem'), options.tls.cert);
    writeFileSync(path.join(dir, 'key.pem'), options.tls.key, { mode: 0o600 });
    tlsEnv = { EARSHOT_TLS_CERT: path.join(dir, 'cert.pem'), EARSHOT_TLS_KEY: path.join(dir, 'key.pem') };
    // Read at start: gone with the test process.
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(projectRoot, 'src', 'main.ts')], {
    cwd: projectRoot,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', EARSHOT_LOG_LEVEL: 'info', ...tlsEnv, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: options.detached ?? false,
  });
  const logs: Record<string, unknown>[] = [];
  const listening = new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (entry.msg === 'earshot listening') resolve(String(entry.address));
      } catch {
        process.stderr.write(`${line}\n`);
      }
    });
    child.once('exit', (code) => reject(new Error(`earshot exited with code ${code} before listening`)));
  });
  const url = await listening;
  if (options.waitForReady ?? true) {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while ((await statusOf(`${url}/health`, options.tls?.cert)) !== 200) {
      if (Date.now() > deadline) {
        child.kill('SIGTERM');
        throw new Error('earshot did not become ready in time');
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  return {
    url,
    baseURL: `${url}/v1`,
    ca: options.tls?.cert,
    process: child,
    logs,
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const [code] = (await once(child, 'exit')) as [number | null];
      return code;
    },
  };
}

/**
 * Resolves with the first log entry with message `msg` logged after `server.logs[from]` (and
 * matching `match`, if given); rejects after `timeoutMs`.
 */
export async function waitForLog(
  server: RunningServer,
  msg: string,
  {
    from = 0,
    timeoutMs = 30_000,
    match,
  }: { from?: number; timeoutMs?: number; match?: (entry: Record<string, unknown>) => boolean } = {},
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const entry = server.logs.slice(from).find((e) => e.msg === msg && (match?.(e) ?? true));
    if (entry) return entry;
    if (Date.now() > deadline) throw new Error(`no "${msg}" in the server's log within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Reads a transcription stream to its end; its deltas joined must equal its done event's text, which is returned. */
export async function readTextStream(stream: AsyncIterable<TranscriptionStreamEvent>): Promise<string> {
  let deltas = '';
  let done = '';
  for await (const event of stream) {
    if (event.type === 'transcript.text.delta') deltas += event.delta;
    if (event.type === 'transcript.text.done') done = event.text;
  }
  assert.equal(deltas, done);
  return done;
}
