// What the engine (scheduler, model pools, worker processes) fails with: one class, EngineError,
// whose `failure` holds the facts (which job code, which exit, how many jobs wait, …). No HTTP
// status, no OpenAI wording, no option names: src/server/error-translation.ts turns these into the
// OpenAI errors clients receive, with the sentences of src/api-errors.ts. The `message` of an
// EngineError is a plain description for logs and the status API (/api/ps, /health).

/** The codes a worker reports a failed job with (worker/earshot_worker), other than a cancellation. */
export type WorkerFailureCode =
  | 'invalid_audio'
  | 'audio_too_short'
  | 'audio_too_long'
  | 'invalid_options'
  | 'invalid_speaker_reference'
  | 'model_error'
  | 'bad_message';

/** Why a model did not load in a worker process. */
export type LoadFailure =
  /** The worker did not report ready in time. */
  | { kind: 'start_timeout'; timeoutMs: number }
  /** The worker reported that it could not load the model (its own words). */
  | { kind: 'fatal'; detail: string }
  /** The worker process could not be started. */
  | { kind: 'spawn_failed'; detail: string }
  /** The worker process ended before it was ready. */
  | { kind: 'exited'; exit: string };

/** Why a model was unloaded. */
export type UnloadReason = { by: 'admin' } | { by: 'idle_ttl'; idleSeconds: number } | { by: 'eviction' };

export type EngineFailure =
  /** The worker failed the job, with its code and its own detail. */
  | { reason: 'job_failed'; code: WorkerFailureCode; detail: string }
  /** The worker finished the job without describing the audio first. */
  | { reason: 'job_incomplete' }
  /** The worker process died while it held the job (`exit`: "exited with code 1", "killed by SIGKILL"). */
  | { reason: 'worker_crashed'; exit: string }
  /** The job ran past the job timeout; its worker was killed. */
  | { reason: 'job_timeout'; timeoutMs: number }
  /** The model's queue holds its maximum of jobs. */
  | { reason: 'queue_full'; model: string; depth: number; retryAfterSeconds: number }
  | { reason: 'model_load_failed'; model: string; cause: LoadFailure }
  /** Every loaded model is busy or pinned, and as many are loaded as may be. */
  | { reason: 'no_room_for_model'; loaded: number; maxLoaded: number }
  /** The job's model was unloaded before the job finished. */
  | { reason: 'model_unloaded'; model: string; unload: UnloadReason }
  /** The engine is stopping (the server shuts down): it takes no job and refuses those still waiting. */
  | { reason: 'engine_stopping' }
  /** The job's caller went away (its signal fired); nobody is told. */
  | { reason: 'job_cancelled' };

export type EngineFailureReason = EngineFailure['reason'];

export function describeUnload(unload: UnloadReason): string {
  switch (unload.by) {
    case 'admin':
      return 'asked by the admin API';
    case 'idle_ttl':
      return `idle for ${unload.idleSeconds} s`;
    case 'eviction':
      return 'least recently used, to make room';
  }
}

export function describeLoadFailure(model: string, cause: LoadFailure): string {
  switch (cause.kind) {
    case 'start_timeout':
      return `Model ${model} did not load within ${cause.timeoutMs} ms.`;
    case 'fatal':
      return `Model ${model} could not be loaded: ${cause.detail}`;
    case 'spawn_failed':
      return `Could not start the engine worker: ${cause.detail}`;
    case 'exited':
      return `Model ${model} could not be loaded: the worker ${cause.exit}.`;
  }
}

function describe(failure: EngineFailure): string {
  switch (failure.reason) {
    case 'job_failed':
      return `the worker failed the job (${failure.code}): ${failure.detail}`;
    case 'job_incomplete':
      return 'the worker finished the job without describing the audio';
    case 'worker_crashed':
      return `the worker ${failure.exit} while it ran the job`;
    case 'job_timeout':
      return `the job ran past ${failure.timeoutMs} ms; its worker was killed`;
    case 'queue_full':
      return `${failure.depth} jobs wait for model ${failure.model}; retry after ${failure.retryAfterSeconds} s`;
    case 'model_load_failed':
      return describeLoadFailure(failure.model, failure.cause);
    case 'no_room_for_model':
      return `${failure.loaded} models are loaded and busy (at most ${failure.maxLoaded})`;
    case 'model_unloaded':
      return `model ${failure.model} was unloaded (${describeUnload(failure.unload)})`;
    case 'engine_stopping':
      return 'the engine is stopping';
    case 'job_cancelled':
      return 'the job was cancelled';
  }
}

export class EngineError<F extends EngineFailure = EngineFailure> extends Error {
  constructor(readonly failure: F) {
    super(describe(failure));
    this.name = 'EngineError';
  }

  get reason(): F['reason'] {
    return this.failure.reason;
  }
}

/** Whether `error` is an EngineError (of one of `reasons`, if given). */
export function isEngineError<R extends EngineFailureReason>(
  error: unknown,
  ...reasons: R[]
): error is EngineError<Extract<EngineFailure, { reason: R }>> {
  if (!(error instanceof EngineError)) return false;
  const { reason } = (error as EngineError).failure;
  return reasons.length === 0 || reasons.includes(reason as R);
}

/** A job that stopped because its caller went away: never answered to anyone. */
export const jobCancelled = (): EngineError => new EngineError({ reason: 'job_cancelled' });
