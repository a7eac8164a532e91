// Starts the real earshot server (src/main.ts, as `npm start` does) on a free port, waits until the
// default model is ready (unless told not to), and stops it. End-to-end tests call it with the
// official OpenAI SDK.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { projectRoot } from '../../src/paths.ts';

export const audioDir = path.join(projectRoot, 'test', 'audio');
export const JFK_TEXT =
  'And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.';

export interface RunningServer {
  url: string;
  baseURL: string;
  process: ChildProcess;
  logs: Record<string, unknown>[];
  stop(): Promise<number | null>;
}

export interface StartOptions {
  /** Wait until /health answers 200 (the default); false returns as soon as the server listens. */
  waitForReady?: boolean;
  /** Start the server in a process group of its own (to signal the whole group, as a terminal does). */
  detached?: boolean;
}

const READY_TIMEOUT_MS = 120_000;

export async function startServer(
  env: Record<string, string> = {},
  options: StartOptions = {},
): Promise<RunningServer> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(projectRoot, 'src', 'main.ts')], {
    cwd: projectRoot,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', EARSHOT_LOG_LEVEL: 'info', ...env },
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
    while ((await fetch(`${url}/health`)).status !== 200) {
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
