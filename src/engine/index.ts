// The engine's public interface: what the server, metrics and main use of it. Nothing outside
// src/engine/ imports its other modules (the cycle check in `npm run lint` keeps the graph acyclic).
export { Engine } from './engine.ts';
export type { EngineObserver, EngineOptions } from './engine-options.ts';
export {
  EngineError,
  describeUnload,
  isEngineError,
  type EngineFailure,
  type EngineFailureReason,
  type LoadFailure,
  type UnloadReason,
  type WorkerFailureCode,
} from './engine-errors.ts';
export { packShare, type JobRequest, type PoolState, type PoolStatus, type StopOutcome } from './model-pool.ts';
export type { JobListener, WorkerSettings } from './worker.ts';
export type { EngineInfo, EngineSegment, EngineWord, TokenLogprob, TranscribeOptions, Transcript } from './messages.ts';
export {
  isEnglishOnly,
  ModelRegistry,
  needsDownload,
  readBundledModels,
  type ModelListing,
  type ModelRegistryOptions,
  type ResolvedModel,
} from './models.ts';
export {
  engineFacts,
  loadEngineFacts,
  MissingEngineFactsError,
  sileroVadModelPath,
  type EngineFacts,
} from './engine-facts.ts';
export { contractDocument } from './messages.ts';
