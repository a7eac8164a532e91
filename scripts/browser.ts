// The Chromium the browser tests drive (test/browser, through playwright-core): EARSHOT_CHROMIUM if
// set, else a Chromium or Chrome on the PATH. Where none is found and this runs as root on Debian or
// Ubuntu (CI's fresh machine), Debian's own package is installed with apt-get. Nothing is downloaded
// from anywhere else: playwright's browser download is never used.
//
//   node --import tsx scripts/browser.ts     prints the browser's path, installing it first if it can
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const NAMES = ['chromium', 'chromium-browser', 'google-chrome-stable', 'google-chrome'];

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The browser to drive, or undefined when none is installed. */
export function findChromium(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const chosen = env.EARSHOT_CHROMIUM;
  if (chosen) {
    if (!executable(chosen)) throw new Error(`EARSHOT_CHROMIUM=${chosen} is not an executable file.`);
    return chosen;
  }
  const directories = (env.PATH ?? '').split(path.delimiter).filter(Boolean);
  for (const name of NAMES) {
    for (const directory of directories) {
      const candidate = path.join(directory, name);
      if (executable(candidate)) return candidate;
    }
  }
  return undefined;
}

function run(command: string, args: string[]): void {
  const result = spawnSync(command, args, {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed (${result.error?.message ?? `exit ${result.status}`}).`);
  }
}

/**
 * The browser to drive; installs Debian's `chromium` where none is found and this process may
 * (root, with apt-get). Otherwise says how to get one.
 */
export function ensureChromium(): string {
  const found = findChromium();
  if (found) return found;
  const canInstall = process.getuid?.() === 0 && findOnPath('apt-get') !== undefined;
  if (!canInstall) {
    throw new Error(
      "The browser tests need Chromium: install Debian's package (apt-get install chromium) or set EARSHOT_CHROMIUM to a Chromium or Chrome executable.",
    );
  }
  process.stderr.write("No Chromium found: installing Debian's chromium package with apt-get.\n");
  run('apt-get', ['update', '-q']);
  run('apt-get', ['install', '-y', '-q', '--no-install-recommends', 'chromium']);
  const installed = findChromium();
  if (!installed) throw new Error('apt-get installed chromium, yet no chromium is on the PATH.');
  return installed;
}

function findOnPath(name: string): string | undefined {
  return (process.env.PATH ?? '')
    .split(path.delimiter)
    .filter(Boolean)
    .map((directory) => path.join(directory, name))
    .find(executable);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.stdout.write(`${ensureChromium()}\n`);
}
