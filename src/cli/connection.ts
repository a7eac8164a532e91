// Where the CLI's requests go: the server at --server (EARSHOT_URL, default http://localhost:8000),
// through the official OpenAI SDK. When none answers there and the URL is this machine's, `earshot
// transcribe` starts one for the run (src/main.ts, as `npm start` does, on a free port of 127.0.0.1)
// and stops it afterwards.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';
import OpenAI from 'openai';
import { projectRoot } from '../paths.ts';

export const DEFAULT_SERVER_URL = 'http://localhost:8000';

// Long files wait in the queue and decode for minutes; the SDK's default (10 min) would cut them off.
const REQUEST_TIMEOUT_MS = 60 * 60 * 1000;
// The default model loads and warms up before a new server says it is ready (a download may come first).
const LOCAL_START_TIMEOUT_MS = 10 * 60 * 1000;

export interface Clients {
  /** The OpenAI API (`/v1`). */
  api: OpenAI;
  /** The same server from its root, for earshot's own routes (the admin API, `/api/ps`). */
  root: OpenAI;
}

/** The SDK, pointed at earshot. Any key will do until the server has keys configured. */
export function clientsFor(url: string, apiKey: string | undefined): Clients {
  const base = url.replace(/\/+$/, '');
  const options = { apiKey: apiKey || 'earshot', timeout: REQUEST_TIMEOUT_MS };
  return { api: new OpenAI({ ...options, baseURL: `${base}/v1` }), root: new OpenAI({ ...options, baseURL: base }) };
}

/** Whether an HTTP server answers at `url` at all (any status: it may be loading, or want a key). */
export async function serverAnswers(url: string): Promise<boolean> {
  try {
    await fetch(new URL('/health', url), { signal: AbortSignal.timeout(3000) });
    return true;
  } catch {
    return false;
  }
}

/** A URL of this machine, where starting a server of our own stands in for the one that is not there. */
export function isLocalUrl(url: string): boolean {
  const host = new URL(url).hostname;
  return host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export interface LocalServer {
  url: string;
  stop(): Promise<void>;
}

const LINES_KEPT = 20;

/** Starts a server for this run and waits until its default model is ready. */
export async function startLocalServer(): Promise<LocalServer> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(projectRoot, 'src', 'main.ts')], {
    cwd: projectRoot,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', EARSHOT_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Its last words, should it stop before it serves.
  const lines: string[] = [];
  const keep = (line: string) => {
    lines.push(line);
    if (lines.length > LINES_KEPT) lines.shift();
  };
  createInterface({ input: child.stderr }).on('line', keep);
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`the local server stopped (exit code ${String(code)}):\n${lines.join('\n')}`);
  });
  exited.catch(() => {});
  const listening = new Promise<string>((resolve) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as { msg?: string; address?: string; err?: string };
        if (entry.msg === 'earshot listening' && entry.address) resolve(entry.address);
        else if (entry.msg) keep(`${entry.msg}${entry.err ? `: ${entry.err}` : ''}`);
      } catch {
        keep(line);
      }
    });
  });
  try {
    const url = await Promise.race([listening, exited]);
    await Promise.race([untilReady(url), exited]);
    return { url, stop: () => stopChild(child) };
  } catch (error) {
    await stopChild(child);
    throw error;
  }
}

async function untilReady(url: string): Promise<void> {
  const deadline = Date.now() + LOCAL_START_TIMEOUT_MS;
  while ((await fetch(new URL('/health', url)).catch(() => undefined))?.status !== 200) {
    if (Date.now() > deadline) throw new Error(`the local server was not ready in ${LOCAL_START_TIMEOUT_MS / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** SIGTERM, as a service manager would: the server finishes what it holds and stops its workers. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exit = once(child, 'exit');
  child.kill('SIGTERM');
  await exit;
}
