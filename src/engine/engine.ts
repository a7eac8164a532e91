// The engine: the loaded models, one ModelPool each. It loads models (pinned ones at start, others
// on first use), unloads idle ones after their TTL, keeps the number loaded under its cap (least
// recently used first), and hands each job to its model's pool.
import type { Logger } from 'pino';
import { ApiError } from '../api-errors.ts';
import type { Transcript } from './messages.ts';
import type { ResolvedModel } from './models.ts';
import { ModelPool, type JobRequest, type PoolStatus, type StopOutcome } from './model-pool.ts';
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
  /** Worker processes per model. */
  workersPerModel: number;
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

const IDLE_SWEEP_MS = 5_000;

export class Engine {
  private readonly pools = new Map<string, ModelPool>();
  private readonly sweeper: NodeJS.Timeout | undefined;
  private stopped = false;
  private shuttingDown = false;

  constructor(
    private readonly options: EngineOptions,
    private readonly log: Logger,
  ) {
    if (options.modelTtlSeconds > 0) {
      this.sweeper = setInterval(() => this.unloadIdle(), IDLE_SWEEP_MS);
      this.sweeper.unref();
    }
  }

  /** Loads a model that stays loaded (pinned); resolves once it can serve. */
  async preload(model: ResolvedModel): Promise<void> {
    return this.pool(model, true).firstReady;
  }

  /** Loads a model as a request would (not pinned); resolves once it can serve. */
  async load(model: ResolvedModel): Promise<void> {
    return this.pool(model, false).firstReady;
  }

  isLoaded(modelId: string): boolean {
    return this.pools.has(modelId);
  }

  /**
   * Unloads a model: a new request loads it afresh, while its jobs running or waiting get up to
   * `unloadGraceMs` to finish; those left then are refused or stopped with 503 `model_unloaded`,
   * and its workers are stopped. Undefined if it was not loaded.
   */
  async unload(modelId: string, reason: string): Promise<StopOutcome | undefined> {
    const pool = this.pools.get(modelId);
    if (!pool) return undefined;
    this.pools.delete(modelId);
    const { queued, running } = pool.status();
    this.log.info({ model: modelId, reason, queued, running }, 'unloading model');
    const outcome = await pool.stop(
      this.options.unloadGraceMs,
      new ApiError(
        'model_unloaded',
        `The model ${modelId} was unloaded (${reason}) before this request finished; retry to load it again.`,
      ),
    );
    this.log.info({ model: modelId, ...outcome }, 'model unloaded');
    return outcome;
  }

  /** Assigns the job an id of the engine's own and runs it on its model's pool. */
  async transcribe(model: ResolvedModel, job: JobRequest, signal?: AbortSignal): Promise<Transcript> {
    if (this.stopped) throw new ApiError('server_not_ready', 'The server is shutting down.');
    return this.pool(model, false).submit(job, signal);
  }

  /**
   * The server began to shut down: jobs go on, but no worker is started or restarted any more (a
   * signal sent to the whole process group may have reached the workers too).
   */
  beginShutdown(): void {
    this.shuttingDown = true;
    for (const pool of this.pools.values()) pool.retire();
  }

  status(): PoolStatus[] {
    return [...this.pools.values()].map((pool) => pool.status());
  }

  modelStatus(modelId: string): PoolStatus | undefined {
    return this.pools.get(modelId)?.status();
  }

  async stop(): Promise<void> {
    this.beginShutdown();
    this.stopped = true;
    clearInterval(this.sweeper);
    await Promise.all([...this.pools.values()].map((pool) => pool.stop()));
    this.pools.clear();
  }

  private unloadIdle(): void {
    const ttlMs = this.options.modelTtlSeconds * 1000;
    for (const pool of this.pools.values()) {
      if (!pool.pinned && pool.idle && performance.now() - pool.lastUsedAt >= ttlMs) {
        void this.unload(pool.model.id, `idle for ${this.options.modelTtlSeconds} s`);
      }
    }
  }

  /** Makes room for one more model by unloading the least recently used idle one that is not pinned. */
  private makeRoom(): void {
    if (this.pools.size < this.options.maxLoadedModels) return;
    const evictable = [...this.pools.values()]
      .filter((pool) => !pool.pinned && pool.idle)
      .sort((a, b) => a.lastUsedAt - b.lastUsedAt);
    const victim = evictable[0];
    if (!victim) {
      throw new ApiError(
        'model_load_failed',
        `${this.pools.size} models are loaded and busy (EARSHOT_MAX_LOADED_MODELS=${this.options.maxLoadedModels}); try again later.`,
      );
    }
    void this.unload(victim.model.id, 'least recently used, to make room');
  }

  private pool(model: ResolvedModel, pinned: boolean): ModelPool {
    let pool = this.pools.get(model.id);
    if (!pool) {
      if (!pinned) this.makeRoom();
      pool = new ModelPool(model, this.options, pinned, this.log, (failed) => {
        if (this.pools.get(failed.model.id) === failed) this.pools.delete(failed.model.id);
      });
      this.pools.set(model.id, pool);
      if (this.shuttingDown) pool.retire();
    }
    return pool;
  }
}
