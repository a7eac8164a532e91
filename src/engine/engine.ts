// The engine: one pool of workers per loaded model, each pool with its own FIFO queue of jobs.
// The default model is pinned: it is loaded at start and reloaded whenever its worker fails. Other
// models are loaded on first use; a model that cannot be loaded fails the requests waiting for it.
import type { Logger } from 'pino';
import { ApiError, JobCancelledError } from '../errors.ts';
import type { Transcript } from './messages.ts';
import type { ResolvedModel } from './models.ts';
import { EngineWorker, type JobSpec, type WorkerSettings } from './worker.ts';

const RESTART_BACKOFF_MS = { first: 500, max: 30_000 };

interface QueuedJob {
  spec: JobSpec;
  signal: AbortSignal | undefined;
  resolve: (transcript: Transcript) => void;
  reject: (error: Error) => void;
}

export type PoolState = 'loading' | 'ready' | 'failed';

export interface PoolStatus {
  model: string;
  state: PoolState;
  workers: number;
  queued: number;
  running: number;
  restarts: number;
  lastError: string | undefined;
}

class ModelPool {
  state: PoolState = 'loading';
  lastError: string | undefined;
  restarts = 0;
  private readonly workers = new Set<EngineWorker>();
  private readonly queue: QueuedJob[] = [];
  private consecutiveFailures = 0;
  private stopping = false;
  private restartTimer: NodeJS.Timeout | undefined;
  readonly firstReady: Promise<void>;
  private resolveFirstReady!: () => void;
  private rejectFirstReady!: (error: Error) => void;

  constructor(
    readonly model: ResolvedModel,
    private readonly settings: WorkerSettings,
    private readonly pinned: boolean,
    private readonly log: Logger,
    private readonly onFailed: (pool: ModelPool) => void,
  ) {
    this.firstReady = new Promise<void>((resolve, reject) => {
      this.resolveFirstReady = resolve;
      this.rejectFirstReady = reject;
    });
    this.firstReady.catch(() => undefined);
    this.startWorker();
  }

  submit(spec: JobSpec, signal: AbortSignal | undefined): Promise<Transcript> {
    if (this.state === 'failed' && !this.pinned) {
      return Promise.reject(new ApiError('model_load_failed', this.lastError ?? 'The model could not be loaded.'));
    }
    return new Promise<Transcript>((resolve, reject) => {
      const job: QueuedJob = { spec, signal, resolve, reject };
      if (signal?.aborted) return reject(new JobCancelledError());
      signal?.addEventListener('abort', () => this.cancel(job), { once: true });
      this.queue.push(job);
      this.dispatch();
    });
  }

  status(): PoolStatus {
    const workers = [...this.workers];
    return {
      model: this.model.id,
      state: this.state,
      workers: workers.filter((w) => w.usable).length,
      queued: this.queue.length,
      running: workers.filter((w) => w.busy).length,
      restarts: this.restarts,
      lastError: this.lastError,
    };
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    for (const job of this.queue.splice(0)) {
      job.reject(new ApiError('server_not_ready', 'The server is shutting down.'));
    }
    await Promise.all([...this.workers].map((worker) => worker.stop()));
  }

  private cancel(job: QueuedJob): void {
    const index = this.queue.indexOf(job);
    if (index >= 0) {
      this.queue.splice(index, 1);
      job.reject(new JobCancelledError());
      return;
    }
    for (const worker of this.workers) worker.cancel(job.spec.id);
  }

  private dispatch(): void {
    for (const worker of this.workers) {
      if (this.queue.length === 0) return;
      if (!worker.usable || worker.busy) continue;
      const job = this.queue.shift()!;
      worker
        .run(job.spec)
        .then(job.resolve, job.reject)
        .finally(() => this.dispatch());
    }
  }

  private startWorker(): void {
    const worker = new EngineWorker(this.model, this.settings, this.log);
    this.workers.add(worker);
    worker.once('exit', (reason) => {
      this.workers.delete(worker);
      // A load failure of an on-demand model is handled by the `ready` rejection below.
      if (this.stopping || (!worker.loaded && !this.pinned)) return;
      if (worker.loaded) {
        this.log.error({ model: this.model.id, reason, stderr: worker.recentStderr() }, 'engine worker died');
      }
      this.lastError = `engine worker ${reason}`;
      this.scheduleRestart();
    });
    worker.ready.then(
      () => {
        this.state = 'ready';
        this.consecutiveFailures = 0;
        this.lastError = undefined;
        this.resolveFirstReady();
        this.dispatch();
      },
      (error: Error) => {
        this.lastError = error.message;
        this.log.error(
          { model: this.model.id, err: error.message, stderr: worker.recentStderr() },
          'model load failed',
        );
        if (!this.pinned) {
          this.state = 'failed';
          this.stopping = true;
          for (const job of this.queue.splice(0)) job.reject(error);
          this.rejectFirstReady(error);
          this.onFailed(this);
        }
      },
    );
  }

  private scheduleRestart(): void {
    const delay = Math.min(RESTART_BACKOFF_MS.max, RESTART_BACKOFF_MS.first * 2 ** this.consecutiveFailures);
    this.consecutiveFailures++;
    this.restarts++;
    if (this.state === 'ready' && ![...this.workers].some((w) => w.usable)) this.state = 'loading';
    this.log.warn({ model: this.model.id, delayMs: delay }, 'restarting engine worker');
    this.restartTimer = setTimeout(() => this.startWorker(), delay);
  }
}

export class Engine {
  private readonly pools = new Map<string, ModelPool>();
  private stopped = false;

  constructor(
    private readonly settings: WorkerSettings,
    private readonly log: Logger,
  ) {}

  /** Loads a model that stays loaded; resolves once it can serve. */
  preload(model: ResolvedModel): Promise<void> {
    return this.pool(model, true).firstReady;
  }

  transcribe(model: ResolvedModel, spec: JobSpec, signal?: AbortSignal): Promise<Transcript> {
    if (this.stopped) return Promise.reject(new ApiError('server_not_ready', 'The server is shutting down.'));
    return this.pool(model, false).submit(spec, signal);
  }

  status(): PoolStatus[] {
    return [...this.pools.values()].map((pool) => pool.status());
  }

  modelStatus(modelId: string): PoolStatus | undefined {
    return this.pools.get(modelId)?.status();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all([...this.pools.values()].map((pool) => pool.stop()));
    this.pools.clear();
  }

  private pool(model: ResolvedModel, pinned: boolean): ModelPool {
    let pool = this.pools.get(model.id);
    if (!pool) {
      pool = new ModelPool(model, this.settings, pinned, this.log, (failed) => {
        if (this.pools.get(failed.model.id) === failed) this.pools.delete(failed.model.id);
      });
      this.pools.set(model.id, pool);
    }
    return pool;
  }
}
