// The processes a running server holds: its engine workers (by model), whether one is gone, and a
// poll-until helper with a generous deadline (never a fixed sleep that flakes under load).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { RunningServer } from './server.ts';

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Direct children of a process. */
export function childPids(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map(Number);
  } catch {
    return [];
  }
}

function commandLine(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return [];
  }
}

/** Every process on the machine that is an engine worker of `model` started by `server` (by --name). */
export function workerPidsOf(server: RunningServer, model?: string): number[] {
  return childPids(server.process.pid!).filter((pid) => {
    const args = commandLine(pid);
    if (!args.includes('earshot_worker') || processGone(pid)) return false;
    return model === undefined || args[args.indexOf('--name') + 1] === model;
  });
}

/** The process has exited: no such pid, or a zombie whose exit status only waits to be collected. */
export function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return true;
    throw error;
  }
  try {
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await sleep(25);
  }
}
