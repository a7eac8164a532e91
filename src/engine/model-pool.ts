// One loaded model: its worker processes and its bounded FIFO queue (live jobs ahead of the others).
// A free worker takes the next job together with the waiting jobs it can be batched with; a worker
// that dies is restarted with backoff (a pinned model's forever; an on-demand model that cannot load
// fails its waiting jobs).
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { EngineError, isEngineError, jobCancelled } from './engine-errors.ts';
import type { EngineOptions } from './engine-options.ts';
import { batchable, type Transcript } from './messages.ts';
import { isEnglishOnly, type ResolvedModel } from './models.ts';
import { ShardMerger, shardable, shardSpec } from './shards.ts';
import { EngineWorker, type JobSpec } from './worker.ts';

/** A job as a caller submits it; the pool gives it its id (never the client's request id). */
export type JobRequest = Omit<JobSpec, 'id'> & {
  /**
   * `live`: someone is waiting on this job as they speak (a live turn): it is queued ahead of every
   * waiting job that is not live (after the live ones already waiting) and never batched with another.
   */
  priority?: 'live';
};

/** What became of the jobs a pool held when it was stopped. */
export interface StopOutcome {
  /** Jobs running or waiting at the stop that finished (with a transcript or their own error) within the grace. */
  finished: number;
  /** Jobs still waiting when the grace ran out, refused without running. */
  refused: number;
  /** Jobs still running when the grace ran out, stopped. */
  interrupted: number;
}

const RESTART_BACKOFF_MS = { first: 500, max: 30_000 };
/**
 * A shard decodes its chunks in one call into the model (it costs less CPU than steps a cancel could come
 * between; worker/earshot_worker/transcribe.py BatchSteps). A cancelled shard that has not stopped within
 * this long is in that call (base encodes a chunk, between two cancel checks, in under a second), which
 * may last several seconds more: its worker is replaced, killed and started again (about 2 s for base on
 * a core, against up to a shard's whole decode: 5.6 s on the long file of bench/README.md).
 */
const SHARD_CANCEL_GRACE_MS = 2000;
// Until a model has finished a job, a retry-after estimate assumes this many seconds per job.
const ASSUMED_JOB_SECONDS = 5;

/**
 * Jobs with the same key may be decoded together in one batch; undefined means the job runs alone.
 * Batching needs identical options (one decode, one set of options) and excludes what the batched
 * pipeline would change, as the contract's `x-unbatched` rule says (messages.ts `batchable`).
 */
export function batchKey(spec: JobSpec): string | undefined {
  const options = spec.options;
  if (!batchable(options, 'cross_request')) return undefined;
  return JSON.stringify(Object.entries(options).sort(([a], [b]) => a.localeCompare(b)));
}

/**
 * Jobs with the same key may be packed side by side into shared windows (the worker's packing.py);
 * undefined means the job is not packed. Packing needs the same options, except word timestamps
 * (each window is decoded with them), nothing that asks for a decode of its own (the contract's
 * `x-unbatched` rule for `packing`), and a known language: given, or the model is English-only.
 */
export function packKey(spec: JobSpec, englishOnly: boolean): string | undefined {
  const { word_timestamps: _words, ...options } = spec.options;
  if (!batchable(spec.options, 'packing')) return undefined;
  if (options.language === undefined && !englishOnly) return undefined;
  return JSON.stringify([spec.task, Object.entries(options).sort(([a], [b]) => a.localeCompare(b))]);
}

/**
 * How many of `waiting` packable jobs (the head included) one free worker takes: an even share among
 * the `idle` workers (so that none is left without work while another packs), at most `maxClips`.
 */
export function packShare(waiting: number, idle: number, maxClips: number): number {
  return Math.max(1, Math.min(maxClips, Math.ceil(waiting / Math.max(1, idle))));
}

interface QueuedJob {
  spec: JobSpec;
  live: boolean;
  signal: AbortSignal | undefined;
  queuedAt: number;
  resolve: (transcript: Transcript) => void;
  reject: (error: Error) => void;
}

export type PoolState = 'loading' | 'ready' | 'failed';

export interface PoolStatus {
  model: string;
  state: PoolState;
  pinned: boolean;
  /** Seconds since the model last finished or received a job. */
  idleSeconds: number;
  /** Workers ready to serve, out of `size` configured. */
  workers: number;
  size: number;
  queued: number;
  running: number;
  restarts: number;
  maxQueued: number;
  lastError: string | undefined;
}

export class ModelPool {
  state: PoolState = 'loading';
  lastError: string | undefined;
  restarts = 0;
  private readonly workers = new Set<EngineWorker>();
  private readonly queue: QueuedJob[] = [];
  private consecutiveFailures = 0;
  /** No new job is taken (unloading, shutting down, or the model failed to load). */
  private stopping = false;
  /** No worker is started any more: the pool is stopping, or the server began to shut down. */
  private retiring = false;
  /** What jobs of a stopping pool are told when they cannot be served. */
  private stopError: EngineError | undefined;
  /** Why the model could not be loaded, once it could not (an on-demand model's pool is then dropped). */
  private loadError: EngineError | undefined;
  /** Pending restarts, one per dead worker: several workers may die together. */
  private readonly restartTimers = new Set<NodeJS.Timeout>();
  private readonly inFlight = new Set<QueuedJob>();
  /**
   * Workers given jobs whose bookkeeping (recycling) has not run yet: a worker is free for the next
   * job only after afterJob(), though its jobs settle a few microtasks earlier.
   */
  private readonly assigned = new Set<EngineWorker>();
  /** The workers of each job running as shards. */
  private readonly shardWorkers = new Map<QueuedJob, EngineWorker[]>();
  private jobsSettled = 0;
  private averageJobSeconds = ASSUMED_JOB_SECONDS;
  private lastUsed = performance.now();
  readonly firstReady: Promise<void>;
  private resolveFirstReady!: () => void;
  private rejectFirstReady!: (error: Error) => void;

  constructor(
    readonly model: ResolvedModel,
    private readonly options: EngineOptions,
    readonly pinned: boolean,
    private readonly log: Logger,
    private readonly onFailed: (pool: ModelPool) => void,
    /** Resolves when the pool may start its processes (after a model evicted for it has stopped). */
    startWhen: Promise<void> = Promise.resolve(),
  ) {
    this.firstReady = new Promise<void>((resolve, reject) => {
      this.resolveFirstReady = resolve;
      this.rejectFirstReady = reject;
    });
    this.firstReady.catch(() => undefined);
    void startWhen.then(() => {
      for (let i = 0; i < options.workersPerModel; i++) this.startWorker();
    });
  }

  /** Queues a job under an id of the pool's own, which `request.listener.onQueued` learns. */
  submit(request: JobRequest, signal: AbortSignal | undefined): Promise<Transcript> {
    if (this.loadError && this.state === 'failed' && !this.pinned) {
      return Promise.reject(this.loadError);
    }
    if (this.stopping) {
      return Promise.reject(this.stopError ?? new EngineError({ reason: 'engine_stopping' }));
    }
    if (this.queue.length >= this.options.maxQueuedJobs) {
      return Promise.reject(
        new EngineError({
          reason: 'queue_full',
          model: this.model.id,
          depth: this.queue.length,
          retryAfterSeconds: this.retryAfterSeconds(),
        }),
      );
    }
    this.lastUsed = performance.now();
    const { priority, ...fields } = request;
    const spec: JobSpec = { ...fields, id: randomUUID() };
    const live = priority === 'live';
    return new Promise<Transcript>((resolve, reject) => {
      const job: QueuedJob = { spec, live, queuedAt: performance.now(), signal, resolve, reject };
      if (signal?.aborted) return reject(jobCancelled());
      signal?.addEventListener('abort', () => this.cancel(job), { once: true });
      this.enqueue(job);
      spec.listener?.onQueued?.(spec.id);
      this.dispatch();
    });
  }

  status(): PoolStatus {
    const workers = [...this.workers];
    return {
      model: this.model.id,
      state: this.state,
      pinned: this.pinned,
      idleSeconds: this.idle ? (performance.now() - this.lastUsed) / 1000 : 0,
      workers: workers.filter((w) => w.usable).length,
      size: this.options.workersPerModel,
      queued: this.queue.length,
      running: workers.filter((w) => w.busy).length,
      restarts: this.restarts,
      maxQueued: this.options.maxQueuedJobs,
      lastError: this.lastError,
    };
  }

  /** No job waiting or running. */
  get idle(): boolean {
    return this.queue.length === 0 && ![...this.workers].some((worker) => worker.busy);
  }

  get lastUsedAt(): number {
    return this.lastUsed;
  }

  /** From now on no worker is started, not even to replace one that dies; the jobs go on. */
  retire(): void {
    this.retiring = true;
    for (const timer of this.restartTimers) clearTimeout(timer);
    this.restartTimers.clear();
  }

  /**
   * Takes no new job, lets the running and waiting jobs finish for up to `graceMs` (while a worker
   * is left to run them), then refuses the jobs still waiting and stops the ones still running, both
   * with `error`, and stops every worker process of the pool.
   */
  async stop(graceMs = 0, error: EngineError = new EngineError({ reason: 'engine_stopping' })): Promise<StopOutcome> {
    this.stopping = true;
    this.stopError ??= error;
    this.retire();
    const settledBefore = this.jobsSettled;
    const deadline = performance.now() + graceMs;
    while (!this.idle && performance.now() < deadline && [...this.workers].some((worker) => worker.usable)) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(50, Math.max(1, deadline - performance.now()))));
    }
    const finished = this.jobsSettled - settledBefore;
    const refused = this.queue.splice(0);
    for (const job of refused) job.reject(this.stopError);
    const interrupted = [...this.inFlight];
    // A running job is cancelled so that its worker exits at once; its client gets `stopError`.
    for (const job of interrupted) for (const worker of this.workers) worker.cancel(job.spec.id);
    await this.stopWorkers();
    return { finished, refused: refused.length, interrupted: interrupted.length };
  }

  private async stopWorkers(): Promise<void> {
    await Promise.all([...this.workers].map((worker) => worker.stop()));
  }

  /** How long until the queue has room: the jobs ahead, shared among the workers, at the recent pace. */
  private retryAfterSeconds(): number {
    const workers = Math.max(1, [...this.workers].filter((w) => w.usable).length);
    return Math.max(1, Math.ceil((this.averageJobSeconds * (this.queue.length + 1)) / workers));
  }

  /** At the end of the queue, or a live job after the live jobs waiting, ahead of all the others. */
  private enqueue(job: QueuedJob): void {
    const firstNotLive = job.live ? this.queue.findIndex((waiting) => !waiting.live) : -1;
    if (firstNotLive < 0) this.queue.push(job);
    else this.queue.splice(firstNotLive, 0, job);
  }

  private cancel(job: QueuedJob): void {
    const index = this.queue.indexOf(job);
    if (index >= 0) {
      this.queue.splice(index, 1);
      job.reject(jobCancelled());
      return;
    }
    for (const worker of this.workers) worker.cancel(job.spec.id);
    const shards = this.shardWorkers.get(job);
    if (shards) this.replaceUnstoppedShards(job.spec.id, shards);
  }

  /** After SHARD_CANCEL_GRACE_MS, replaces each of these workers that still runs the cancelled job. */
  private replaceUnstoppedShards(jobId: string, workers: readonly EngineWorker[]): void {
    const timer = setTimeout(() => {
      this.restartTimers.delete(timer);
      for (const worker of workers) {
        if (!worker.runs(jobId) || !this.workers.has(worker) || this.retiring) continue;
        this.log.info(
          { model: this.model.id, pid: worker.pid, job: jobId, graceMs: SHARD_CANCEL_GRACE_MS },
          'replacing the worker of a cancelled shard that is still decoding',
        );
        this.workers.delete(worker);
        worker.kill();
        this.startWorker();
      }
    }, SHARD_CANCEL_GRACE_MS);
    this.restartTimers.add(timer);
  }

  /**
   * Gives each idle worker the next job, with the queued jobs that can be packed with it or else
   * decoded in one batch with it.
   */
  private dispatch(): void {
    if (this.dispatchShards()) return;
    for (const worker of this.workers) {
      if (this.queue.length === 0) return;
      if (!worker.usable || worker.busy || this.assigned.has(worker)) continue;
      const head = this.queue.shift()!;
      const packed = this.packWith(head);
      const batch = packed ?? this.batchWith(head);
      if (batch.length > 1) {
        this.log.info(
          { model: this.model.id, jobs: batch.map((job) => job.spec.id) },
          packed ? 'packing short jobs' : 'decoding a batch',
        );
      }
      this.run(worker, batch);
    }
  }

  /**
   * The head and the waiting jobs packed with it (its share of them, packShare), in queue order; or
   * undefined when the head is not packed (packing is off, the job is live or its options say no).
   */
  private packWith(head: QueuedJob): QueuedJob[] | undefined {
    if (this.options.packMaxClips <= 1 || head.live) return undefined;
    const englishOnly = isEnglishOnly(this.model);
    const key = packKey(head.spec, englishOnly);
    if (key === undefined) return undefined;
    const fits = (job: QueuedJob): boolean => !job.live && packKey(job.spec, englishOnly) === key;
    const idle = [...this.workers].filter((w) => w.usable && !w.busy && !this.assigned.has(w)).length;
    const share = packShare(1 + this.queue.filter(fits).length, idle, this.options.packMaxClips);
    return [head, ...this.takeWaiting(fits, share - 1)];
  }

  /** The head and the waiting jobs with identical options, up to maxBatch (cross-request batching). */
  private batchWith(head: QueuedJob): QueuedJob[] {
    const key = this.options.maxBatch > 1 && !head.live ? batchKey(head.spec) : undefined;
    if (key === undefined) return [head];
    return [head, ...this.takeWaiting((job) => !job.live && batchKey(job.spec) === key, this.options.maxBatch - 1)];
  }

  /** Takes up to `count` waiting jobs that `fits` accepts out of the queue, in queue order. */
  private takeWaiting(fits: (job: QueuedJob) => boolean, count: number): QueuedJob[] {
    const taken: QueuedJob[] = [];
    for (let i = 0; i < this.queue.length && taken.length < count;) {
      if (fits(this.queue[i]!)) taken.push(...this.queue.splice(i, 1));
      else i++;
    }
    return taken;
  }

  private run(worker: EngineWorker, jobs: QueuedJob[]): void {
    const started = performance.now();
    for (const job of jobs) this.options.observer?.jobStarted?.(this.model.id, (started - job.queuedAt) / 1000);
    const results = worker.run(jobs.map((job) => job.spec));
    this.assigned.add(worker);
    const settled = jobs.map((job, index) => this.settle(job, results[index]!, started));
    void Promise.all(settled).then(() => {
      this.countPace(started, jobs.length);
      this.afterJob(worker);
    });
  }

  /**
   * A job that may be long, arriving when it is the only one waiting and several workers are idle, is
   * shared among the idle workers (shards.ts): true when it was. While its shards run, jobs that come
   * next wait for the first shard to finish.
   */
  private dispatchShards(): boolean {
    const [head] = this.queue;
    if (!this.options.shardLongAudio || this.queue.length !== 1 || !head || head.live) return false;
    if (!shardable(head.spec, this.options.worker.longAudioBatchSize)) return false;
    const idle = [...this.workers].filter((worker) => worker.usable && !worker.busy && !this.assigned.has(worker));
    if (idle.length < 2) return false;
    this.queue.shift();
    this.runShards(idle, head);
    return true;
  }

  /** Runs one job as shards on these idle workers; one job for the observer, the listener and the caller. */
  private runShards(workers: EngineWorker[], job: QueuedJob): void {
    const started = performance.now();
    this.options.observer?.jobStarted?.(this.model.id, (started - job.queuedAt) / 1000);
    this.log.debug({ model: this.model.id, job: job.spec.id, shards: workers.length }, 'sharing a job among workers');
    // Without a language, shard 0 detects it and the others wait for it (shards.ts).
    const relay =
      job.spec.options.language === undefined
        ? (info: Transcript['info']) => {
            for (const other of workers.slice(1)) other.relayLanguage(job.spec.id, info.language);
          }
        : undefined;
    const merger = new ShardMerger(workers.length, job.spec.listener, relay);
    this.shardWorkers.set(job, workers);
    const transcript = new Promise<Transcript>((resolve, reject) => {
      let failed = false;
      workers.forEach((worker, index) => {
        const [shard] = worker.run([shardSpec(job.spec, index, workers.length, merger.listenerFor(index))]);
        this.assigned.add(worker);
        void shard!
          .then(
            (result) => {
              merger.finish(index, result);
              const whole = merger.transcript();
              if (whole) resolve(whole);
            },
            (error: Error) => {
              // The first shard to fail ends the job; the others are stopped (every shard has the job's id).
              if (failed) return;
              failed = true;
              const others = workers.filter((other) => other !== worker);
              for (const other of others) other.cancel(job.spec.id);
              this.replaceUnstoppedShards(job.spec.id, others);
              reject(error);
            },
          )
          .finally(() => this.afterJob(worker));
      });
    });
    void this.settle(job, transcript, started).then(() => {
      this.shardWorkers.delete(job);
      this.countPace(started, 1);
    });
  }

  /** Hands a job its result when it comes, and tells the observer. */
  private settle(job: QueuedJob, result: Promise<Transcript>, started: number): Promise<void> {
    this.inFlight.add(job);
    return result
      .finally(() => {
        this.inFlight.delete(job);
        this.jobsSettled++;
      })
      .then(
        (transcript) => {
          const seconds = (performance.now() - started) / 1000;
          this.options.observer?.jobFinished?.(this.model.id, 'ok', seconds, transcript);
          job.resolve(transcript);
        },
        (cause: Error) => {
          // A job stopped because its pool is going away (not because its client left) says so.
          const error =
            this.stopError &&
            ((isEngineError(cause, 'job_cancelled') && !job.signal?.aborted) || isEngineError(cause, 'worker_crashed'))
              ? this.stopError
              : cause;
          const outcome = isEngineError(error, 'job_cancelled') ? 'cancelled' : 'error';
          this.options.observer?.jobFinished?.(this.model.id, outcome, (performance.now() - started) / 1000);
          job.reject(error);
        },
      );
  }

  /** The pace per job, for retry-after: a batch of n counts as n jobs in its time. */
  private countPace(started: number, jobs: number): void {
    const perJob = (performance.now() - started) / 1000 / jobs;
    this.averageJobSeconds = 0.8 * this.averageJobSeconds + 0.2 * perJob;
  }

  /** Recycles a worker that has done its share of jobs or grown too large, then takes the next job. */
  private afterJob(worker: EngineWorker): void {
    this.assigned.delete(worker);
    this.lastUsed = performance.now();
    if (worker.usable && !this.retiring) {
      const { workerMaxJobs, workerMaxRssMb } = this.options;
      const rss = workerMaxRssMb > 0 ? worker.rssMb() : undefined;
      const reason =
        workerMaxJobs > 0 && worker.jobsDone >= workerMaxJobs
          ? `it has run ${worker.jobsDone} jobs`
          : rss !== undefined && rss > workerMaxRssMb
            ? `its memory is ${Math.round(rss)} MiB`
            : undefined;
      if (reason) {
        this.log.info({ model: this.model.id, pid: worker.pid, reason }, 'recycling engine worker');
        this.workers.delete(worker);
        void worker.stop();
        this.startWorker();
      }
    }
    this.dispatch();
  }

  private startWorker(): void {
    // A pool that is stopping (or a server shutting down) starts no process that could outlive it.
    if (this.retiring) return;
    const worker = new EngineWorker(this.model, this.options.worker, this.log);
    this.workers.add(worker);
    worker.once('exit', (reason) => {
      // A worker recycled on purpose has already left the pool.
      if (!this.workers.delete(worker)) return;
      // A load failure of an on-demand model is handled by the `ready` rejection below.
      if (this.retiring || (!worker.loaded && !this.pinned)) return;
      if (worker.loaded) {
        this.log.error({ model: this.model.id, reason, stderr: worker.recentStderr() }, 'engine worker died');
      }
      this.lastError = `engine worker ${reason}`;
      this.options.observer?.workerRestarted?.(this.model.id, reason);
      this.scheduleRestart();
    });
    worker.ready.then(
      () => {
        // A worker that finishes loading after its model was dropped is already being stopped.
        if (this.state === 'failed') return;
        // Idle time counts from when the model could first serve, not from the start of a slow load.
        if (this.state === 'loading') this.lastUsed = performance.now();
        this.state = 'ready';
        this.consecutiveFailures = 0;
        this.lastError = undefined;
        this.options.observer?.modelLoaded?.(this.model.id, worker.loadSeconds ?? 0);
        this.resolveFirstReady();
        this.dispatch();
      },
      (error: Error) => {
        this.lastError = error.message;
        this.loadError =
          error instanceof EngineError
            ? error
            : new EngineError({
                reason: 'model_load_failed',
                model: this.model.id,
                cause: { kind: 'spawn_failed', detail: error.message },
              });
        this.log.error(
          { model: this.model.id, err: error.message, stderr: worker.recentStderr() },
          'model load failed',
        );
        if (!this.pinned) {
          this.rejectFirstReady(error);
          if (this.state === 'failed') return;
          this.state = 'failed';
          this.stopping = true;
          this.retire();
          for (const job of this.queue.splice(0)) job.reject(error);
          this.onFailed(this);
          // The model is dropped: none of its other workers (loading or loaded) may stay behind.
          void this.stopWorkers();
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
    const timer = setTimeout(() => {
      this.restartTimers.delete(timer);
      this.startWorker();
    }, delay);
    this.restartTimers.add(timer);
  }
}
