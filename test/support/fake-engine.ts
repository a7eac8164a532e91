// Fast tests of the engine and the HTTP layer without a model: a real Engine whose workers are the
// fake worker (fake-worker.mjs, whose header lists its model names and audio directives), models in
// a temporary models directory (each with its journal), audio files that are text.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import { loadConfig, type Config } from '../../src/config.ts';
import {
  Engine,
  ModelRegistry,
  type EngineOptions,
  type JobRequest,
  type ResolvedModel,
  type TranscribeOptions,
  type WorkerSettings,
} from '../../src/engine/index.ts';
import { projectRoot } from '../../src/paths.ts';
import { buildApp } from '../../src/server/app.ts';

export const fakeWorkerPath = path.join(projectRoot, 'test', 'support', 'fake-worker.mjs');

export function fakeWorkerSettings(overrides: Partial<WorkerSettings> = {}): WorkerSettings {
  return {
    python: fakeWorkerPath,
    device: 'cpu',
    computeType: 'int8',
    cpuThreads: 1,
    hubDownload: false,
    hubCacheDir: undefined,
    startTimeoutMs: 20_000,
    jobTimeoutMs: 0,
    maxAudioSeconds: 3600,
    longAudioBatchSize: 0,
    longAudioSeconds: 600,
    packClipSeconds: 0,
    ...overrides,
  };
}

export function engineOptions(
  overrides: Partial<Omit<EngineOptions, 'worker'>> = {},
  worker: Partial<WorkerSettings> = {},
): EngineOptions {
  return {
    worker: fakeWorkerSettings(worker),
    maxBatch: 1,
    packMaxClips: 1,
    workersPerModel: 1,
    shardLongAudio: false,
    maxQueuedJobs: 100,
    workerMaxJobs: 0,
    workerMaxRssMb: 0,
    modelTtlSeconds: 0,
    maxLoadedModels: 10,
    unloadGraceMs: 5000,
    ...overrides,
  };
}

/** Silent unless EARSHOT_TEST_LOG is set (then at that level, to stderr). */
export function testLogger(): Logger {
  const level = process.env.EARSHOT_TEST_LOG;
  return level ? pino({ level }, pino.destination(2)) : pino({ level: 'silent' });
}

/** One line of a model's journal (see fake-worker.mjs). */
export interface JournalEntry {
  event: 'start' | 'ready' | 'run' | 'cancel' | 'language' | 'exit';
  pid: number;
  t: number;
  name?: string;
  jobs?: { job: string; text: string; shard?: { index: number; count: number } }[];
  job?: string;
  /** A relayed language (event `language`). */
  language?: string;
  reason?: string;
}

/**
 * A temporary directory with a models directory (each model a directory holding a model.bin, so the
 * registry resolves it, and the fake's journal) and a directory of audio files.
 */
export class FakeWorld {
  readonly root = mkdtempSync(path.join(os.tmpdir(), 'earshot-fake-'));
  readonly modelsDir = path.join(this.root, 'models');
  readonly audioDir = path.join(this.root, 'audio');
  readonly tmpDir = path.join(this.root, 'tmp');

  constructor() {
    for (const directory of [this.modelsDir, this.audioDir, this.tmpDir]) mkdirSync(directory);
  }

  /** A model of the models directory named `name` (its name tells the fake how to load). */
  model(name: string): ResolvedModel {
    const directory = path.join(this.modelsDir, name);
    mkdirSync(directory, { recursive: true });
    writeFileSync(path.join(directory, 'model.bin'), '');
    return { id: name, source: { kind: 'directory', path: directory } };
  }

  journal(name: string): JournalEntry[] {
    let content: string;
    try {
      content = readFileSync(path.join(this.modelsDir, name, 'journal.jsonl'), 'utf8');
    } catch {
      return [];
    }
    return content
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as JournalEntry);
  }

  /** The transcripts the model's workers received, one array per transcribe message, in order. */
  runs(name: string): string[][] {
    return this.journal(name)
      .filter((entry) => entry.event === 'run')
      .map((entry) => (entry.jobs ?? []).map((job) => job.text));
  }

  /** How many worker processes of the model started. */
  starts(name: string): number {
    return this.journal(name).filter((entry) => entry.event === 'start').length;
  }

  /** An audio file for the fake: transcript lines and `!directive` lines. */
  audio(...lines: string[]): string {
    const file = path.join(this.audioDir, randomUUID());
    writeFileSync(file, `${lines.join('\n')}\n`);
    return file;
  }

  /** A path that does not exist yet: a gate for `!gate=PATH`, opened with open(). */
  gate(): { path: string; open(): void } {
    const file = path.join(this.root, `gate-${randomUUID()}`);
    return { path: file, open: () => writeFileSync(file, '') };
  }

  registry(defaultModel: string): ModelRegistry {
    return new ModelRegistry({
      defaultModel,
      aliases: new Map([['whisper-1', '']]),
      modelsDir: this.modelsDir,
      bundled: [],
      bundledDir: path.join(this.root, 'no-bundled-models'),
      hubCacheDir: path.join(this.root, 'no-hub-cache'),
    });
  }

  config(overrides: Partial<Config> = {}): Config {
    return {
      ...loadConfig([], {}),
      logLevel: 'silent',
      modelsDir: this.modelsDir,
      tmpDir: this.tmpDir,
      hubDownload: false,
      ...overrides,
    };
  }

  remove(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** A job spec for Engine.transcribe, made in one place. */
export function job(audioPath: string, options: TranscribeOptions = {}): JobRequest {
  return { audioPath, task: 'transcribe', options };
}

/** The transcript's text, as the fake built it (its lines joined by spaces). */
export function text(transcript: { segments: { text: string }[] }): string {
  return transcript.segments.map((segment) => segment.text.trim()).join(' ');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until `condition` holds; fails after a generous deadline (it is a bound, not a timing). */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await sleep(10);
  }
}

/** A promise's outcome without awaiting it: for asserting that a job has not finished yet. */
export function track<T>(promise: Promise<T>): { settled: () => boolean; promise: Promise<T> } {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  return { settled: () => settled, promise };
}

/** A multipart/form-data body for app.inject: the fields and an uploaded file of that text. */
export async function multipart(
  fields: Record<string, string | string[]>,
  fileText?: string,
): Promise<{ payload: Buffer; headers: Record<string, string> }> {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) {
    for (const item of Array.isArray(value) ? value : [value]) form.append(name, item);
  }
  if (fileText !== undefined) form.set('file', new Blob([fileText]), 'audio.wav');
  const response = new Response(form);
  return {
    payload: Buffer.from(await response.arrayBuffer()),
    headers: { 'content-type': response.headers.get('content-type') ?? '' },
  };
}

/** An app on a real Engine with fake workers, its default model `defaultModel` (not preloaded). */
export async function fakeApp(
  world: FakeWorld,
  defaultModel: string,
  options: EngineOptions,
  config: Partial<Config> = {},
): Promise<{ app: FastifyInstance; engine: Engine }> {
  const engine = new Engine(options, testLogger());
  const app = await buildApp({
    config: world.config({ defaultModel, ...config }),
    engine,
    registry: world.registry(defaultModel),
    logger: testLogger(),
  });
  return { app, engine };
}
