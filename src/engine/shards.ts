// One long job shared by several idle workers of a model: each decodes a contiguous share of the job's
// VAD chunks (the worker's `shard` option, worker/earshot_worker/transcribe.py shard_chunks), and their
// segments are joined in shard order. The gateway cannot know a file's duration before a worker decodes
// it, so any job that may be long is sent as shards; a worker finds that audio is not long and then
// shard 0 decodes it whole while the others answer at once with nothing.
import { batchable, type EngineSegment, type Transcript } from './messages.ts';
import type { JobListener, JobSpec } from './worker.ts';

/**
 * Whether a job may be shared among workers: it must be one the worker would decode in chunks when its
 * audio is long (the contract's long_audio batching rule, with long-audio batching on or a batch size
 * asked), and not one whose result depends on the whole audio at once (diarize: each shard would find
 * its own speakers).
 */
export function shardable(spec: JobSpec, longAudioBatchSize: number): boolean {
  const { options } = spec;
  if (longAudioBatchSize <= 0 && options.batch_size === undefined) return false;
  return options.diarize === undefined && batchable(options, 'long_audio');
}

/**
 * The job as shard `index` of `count` runs it: the same id on each worker, its own listener. Without a
 * language, shard 0 detects it and the others wait for it (the worker's `language` command, which the
 * gateway sends with shard 0's info: EngineWorker.relayLanguage), encoding their chunks meanwhile.
 */
export function shardSpec(spec: JobSpec, index: number, count: number, listener: JobListener): JobSpec {
  return { ...spec, options: { ...spec.options, shard: { index, count } }, listener };
}

/**
 * Joins the shards of one job as they come: shard 0's info and segments go to the job's listener at
 * once; a later shard's segments are held until every shard before it has finished, then passed on in
 * order. Segments after shard 0's are renumbered to follow on from the ones before them.
 */
export class ShardMerger {
  private readonly held: EngineSegment[][];
  private readonly finished: boolean[];
  /** The shard whose segments go through as they come: every shard before it has finished. */
  private streaming = 0;
  private readonly segments: EngineSegment[] = [];
  private info: Transcript['info'] | undefined;
  private task: Transcript['task'] | undefined;

  /**
   * `onFirstInfo` gets shard 0's info as soon as it comes (the job's language, detected once: the other
   * shards wait for it before they decode, see shardSpec).
   */
  constructor(
    readonly count: number,
    private readonly listener: JobListener | undefined,
    private readonly onFirstInfo?: (info: Transcript['info']) => void,
  ) {
    this.held = Array.from({ length: count }, () => []);
    this.finished = Array.from({ length: count }, () => false);
  }

  /** What shard `index`'s worker reports to, in place of the job's listener. */
  listenerFor(index: number): JobListener {
    return {
      onInfo: (info) => {
        // Every shard reports the whole audio's info (the others without the language, when they wait
        // for shard 0's); the first shard's is the job's.
        if (index !== 0) return;
        this.onFirstInfo?.(info);
        this.listener?.onInfo?.(info);
      },
      onSegment: (segment) => {
        if (index === this.streaming) this.pass(segment);
        else this.held[index]!.push(segment);
      },
    };
  }

  /** Shard `index` has finished with this transcript (its segments already came through its listener). */
  finish(index: number, transcript: Transcript): void {
    this.finished[index] = true;
    if (index === 0) {
      this.info = transcript.info;
      this.task = transcript.task;
    }
    while (this.streaming < this.count && this.finished[this.streaming]) {
      this.streaming++;
      if (this.streaming < this.count) for (const segment of this.held[this.streaming]!.splice(0)) this.pass(segment);
    }
  }

  /** The job's transcript once every shard has finished; undefined before. */
  transcript(): Transcript | undefined {
    if (this.streaming < this.count || !this.info || !this.task) return undefined;
    return { task: this.task, info: this.info, segments: this.segments };
  }

  private pass(segment: EngineSegment): void {
    const previous = this.segments.at(-1);
    const joined = previous && this.streaming > 0 ? { ...segment, id: previous.id + 1 } : segment;
    this.segments.push(joined);
    this.listener?.onSegment?.(joined);
  }
}
