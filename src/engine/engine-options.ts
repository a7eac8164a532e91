// How the engine is configured, and what it reports as it works (metrics listen): shared by the
// engine and its model pools, in a module of its own so that neither imports the other for it.
import type { Transcript } from './messages.ts';
import type { WorkerSettings } from './worker.ts';

/** What the engine reports as it works; metrics listen here. */
export interface EngineObserver {
  jobStarted?(model: string, queueSeconds: number): void;
  jobFinished?(
    model: string,
    outcome: 'ok' | 'error' | 'cancelled',
    processingSeconds: number,
    transcript?: Transcript,
  ): void;
  workerRestarted?(model: string, reason: string): void;
  modelLoaded?(model: string, loadSeconds: number): void;
}

export interface EngineOptions {
  worker: WorkerSettings;
  /** Most jobs decoded together in one batch (1: no cross-request batching). */
  maxBatch: number;
  /**
   * Most short jobs packed side by side into shared windows by one worker (0 or 1: no packing; the
   * workers must then be started with packClipSeconds 0).
   */
  packMaxClips: number;
  /** Worker processes per model. */
  workersPerModel: number;
  /** A job that may be long, arriving at an idle model, is shared among its idle workers (shards.ts). */
  shardLongAudio: boolean;
  /** Jobs that may wait per model before new ones get 429. */
  maxQueuedJobs: number;
  /** Replace a worker after this many jobs (0: never). */
  workerMaxJobs: number;
  /** Replace a worker above this resident memory after a job (0: never). */
  workerMaxRssMb: number;
  /** Unload a model that is not pinned after this many seconds without a job (0: never). */
  modelTtlSeconds: number;
  /** Most models loaded at once; loading another unloads the least recently used idle one. */
  maxLoadedModels: number;
  /** How long an unloaded model's running and waiting jobs may take to finish (0: none may). */
  unloadGraceMs: number;
  observer?: EngineObserver;
}
