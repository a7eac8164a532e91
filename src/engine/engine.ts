// The engine: the loaded models, one ModelPool each. It loads models (pinned ones at start, others
// on first use), unloads idle ones after their TTL, keeps the number loaded under its cap (least
// recently used first), and hands each job to its model's pool.
import type { Logger } from 'pino';
import { EngineError, describeUnload, type UnloadReason } from './engine-errors.ts';
import type { EngineOptions } from './engine-options.ts';
import type { Transcript } from './messages.ts';
import type { ResolvedModel } from './models.ts';
import { ModelPool, type JobRequest, type PoolStatus, type StopOutcome } from './model-pool.ts';

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
   * `unloadGraceMs` to finish; those left then are refused or stopped with `model_unloaded`, and
   * its workers are stopped. Undefined if it was not loaded.
   */
  async unload(modelId: string, unload: UnloadReason): Promise<StopOutcome | undefined> {
    const pool = this.pools.get(modelId);
    if (!pool) return undefined;
    this.pools.delete(modelId);
    const { queued, running } = pool.status();
    this.log.info({ model: modelId, reason: describeUnload(unload), queued, running }, 'unloading model');
    const outcome = await pool.stop(
      this.options.unloadGraceMs,
      new EngineError({ reason: 'model_unloaded', model: modelId, unload }),
    );
    this.log.info({ model: modelId, ...outcome }, 'model unloaded');
    return outcome;
  }

  /** Assigns the job an id of the engine's own and runs it on its model's pool. */
  async transcribe(model: ResolvedModel, job: JobRequest, signal?: AbortSignal): Promise<Transcript> {
    if (this.stopped) throw new EngineError({ reason: 'engine_stopping' });
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
      // A model still loading is not idle: it is about to serve whoever asked for it.
      if (!pool.pinned && pool.state === 'ready' && pool.idle && performance.now() - pool.lastUsedAt >= ttlMs) {
        void this.unload(pool.model.id, { by: 'idle_ttl', idleSeconds: this.options.modelTtlSeconds });
      }
    }
  }

  /**
   * Makes room for one more model by unloading the least recently used idle one that is not pinned;
   * resolves once its processes have stopped, so that two models' workers never hold memory at once.
   */
  private makeRoom(): Promise<void> {
    if (this.pools.size < this.options.maxLoadedModels) return Promise.resolve();
    const evictable = [...this.pools.values()]
      .filter((pool) => !pool.pinned && pool.idle)
      .sort((a, b) => a.lastUsedAt - b.lastUsedAt);
    const victim = evictable[0];
    if (!victim) {
      throw new EngineError({
        reason: 'no_room_for_model',
        loaded: this.pools.size,
        maxLoaded: this.options.maxLoadedModels,
      });
    }
    return this.unload(victim.model.id, { by: 'eviction' }).then(
      () => undefined,
      () => undefined,
    );
  }

  private pool(model: ResolvedModel, pinned: boolean): ModelPool {
    let pool = this.pools.get(model.id);
    if (!pool) {
      const roomMade = pinned ? Promise.resolve() : this.makeRoom();
      pool = new ModelPool(
        model,
        this.options,
        pinned,
        this.log,
        (failed) => {
          if (this.pools.get(failed.model.id) === failed) this.pools.delete(failed.model.id);
        },
        roomMade,
      );
      this.pools.set(model.id, pool);
      if (this.shuttingDown) pool.retire();
    }
    return pool;
  }
}
