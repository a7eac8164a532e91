// What the gateway knows that belongs to the engine's Python libraries: faster-whisper's size names,
// Whisper's language codes, huggingface_hub's cache layout and where faster-whisper's Silero VAD model
// is. The installer writes them from the installed libraries (`python -m earshot_worker.facts`,
// scripts/setup-python.ts) to .venv/earshot-facts.json; they are read from there, once, never copied
// into TypeScript.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Type, { type Static } from 'typebox';
import Value from 'typebox/value';
import { engineFactsFile, projectRoot, projectVenvPython, workerEnvironment } from '../paths.ts';

export const EngineFactsSchema = Type.Object({
  fasterWhisper: Type.String(),
  huggingfaceHub: Type.String(),
  /** faster-whisper's size names and the hub repositories they stand for (faster_whisper.utils._MODELS). */
  sizeNames: Type.Record(Type.String(), Type.String()),
  /** The language codes Whisper's tokenizer accepts (faster_whisper.tokenizer._LANGUAGE_CODES). */
  languageCodes: Type.Array(Type.String(), { minItems: 1 }),
  /** huggingface_hub's cache: models--OWNER--NAME/refs/main names the snapshot under snapshots/. */
  hubCache: Type.Object({
    repoFolderPrefix: Type.String(),
    separator: Type.String(),
    defaultRevision: Type.String(),
    refsDir: Type.String(),
    snapshotsDir: Type.String(),
  }),
  /**
   * The Silero VAD model faster-whisper ships, which the gateway runs for live turns. Optional only so
   * that a facts file written before earshot recorded it still loads: sileroVadModelPath() then asks.
   */
  sileroVadModel: Type.Optional(Type.String()),
});
export type EngineFacts = Static<typeof EngineFactsSchema>;

export class MissingEngineFactsError extends Error {}

/** Reads and checks a facts file; throws a MissingEngineFactsError saying what to do. */
export function readEngineFacts(file = engineFactsFile): EngineFacts {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new MissingEngineFactsError(
      `cannot read the engine facts in ${file} (${(error as Error).message}): run npm install, ` +
        'which sets up the Python engine and writes them from its libraries',
    );
  }
  if (!Value.Check(EngineFactsSchema, parsed)) {
    throw new MissingEngineFactsError(`${file} is not what this version of earshot expects: run npm install again`);
  }
  return parsed;
}

let cached: EngineFacts | undefined;

/** The installed engine's facts, read on first use (or those loadEngineFacts found). */
export function engineFacts(): EngineFacts {
  cached ??= readEngineFacts();
  return cached;
}

/**
 * At start: the facts of the Python the workers run. The project's own environment has them in the
 * file the installer wrote; another interpreter (EARSHOT_WORKER_PYTHON) is asked for them. When it
 * cannot answer, the installed file stands in (and `warn` says so): a broken worker Python must not
 * keep the server from listening and saying what is wrong (/health), as it does without this.
 */
export function loadEngineFacts(python: string, warn: (message: string) => void = () => {}): EngineFacts {
  if (path.resolve(projectRoot, python) === projectVenvPython) {
    cached = readEngineFacts();
    return cached;
  }
  const answer = askPython(python);
  if (typeof answer !== 'string') {
    cached = answer;
    return cached;
  }
  const failure = `${answer}: the worker Python needs the packages of worker/requirements.txt`;
  try {
    cached = readEngineFacts();
  } catch (error) {
    throw new MissingEngineFactsError(`${failure}; ${(error as Error).message}`);
  }
  warn(`${failure}; using the installed engine's facts (${engineFactsFile})`);
  return cached;
}

/** What `python -m earshot_worker.facts` says, or why it could not say it. */
function askPython(python: string): EngineFacts | string {
  const result = spawnSync(python, ['-m', 'earshot_worker.facts'], {
    cwd: projectRoot,
    encoding: 'utf8',
    env: workerEnvironment(),
    timeout: 60_000,
  });
  let parsed: unknown;
  try {
    parsed = result.status === 0 ? JSON.parse(result.stdout) : undefined;
  } catch {
    parsed = undefined;
  }
  if (Value.Check(EngineFactsSchema, parsed)) return parsed;
  const reason = result.error?.message ?? (result.stderr.trim().split('\n').at(-1) || `exit code ${result.status}`);
  return `${python} -m earshot_worker.facts failed (${reason})`;
}

/**
 * The Silero VAD model file faster-whisper ships (src/realtime/vad.ts runs it). A facts file written
 * before earshot recorded it: the project's Python is asked once (about a second); if it cannot say,
 * a MissingEngineFactsError says to run npm install again.
 */
export function sileroVadModelPath(): string {
  const facts = engineFacts();
  if (facts.sileroVadModel !== undefined) return facts.sileroVadModel;
  const answer = askPython(projectVenvPython);
  if (typeof answer !== 'string' && answer.sileroVadModel !== undefined) {
    cached = { ...facts, sileroVadModel: answer.sileroVadModel };
    return answer.sileroVadModel;
  }
  throw new MissingEngineFactsError(
    `${engineFactsFile} does not say where faster-whisper's Silero VAD model is ` +
      `(${typeof answer === 'string' ? answer : 'the engine does not say either'}): run npm install again`,
  );
}
