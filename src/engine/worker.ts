// One engine worker: a Python process that owns one loaded model and runs one job at a time.
// It must say it is ready before it is used; it is stopped with a shutdown message, then SIGKILL
// (it ignores SIGINT and SIGTERM: a signal to the whole process group is the gateway's to handle). A worker that dies fails the job it held with a clear error; the pool replaces it.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';
import { workerEnvironment } from '../paths.ts';
import { EngineError, jobCancelled, type LoadFailure, type WorkerFailureCode } from './engine-errors.ts';
import type {
  EngineInfo,
  EngineSegment,
  TranscribeOptions,
  Transcript,
  WorkerCommand,
  WorkerEvent,
} from './messages.ts';
import type { ResolvedModel } from './models.ts';

export interface WorkerSettings {
  python: string;
  device: string;
  computeType: string;
  cpuThreads: number;
  hubDownload: boolean;
  hubCacheDir: string | undefined;
  startTimeoutMs: number;
  /** A job running longer than this means a hung worker: it is killed (0: no limit). */
  jobTimeoutMs: number;
  maxAudioSeconds: number;
  /** Batch size of the batched pipeline for long audio (0: sequential decoding always). */
  longAudioBatchSize: number;
  longAudioSeconds: number;
  /** Audio at most this long is decoded with fitted windows unless its job says otherwise (0: never). */
  fitShortAudioSeconds?: number;
  /** Clips of at most this many seconds in a transcribe_batch are packed into shared windows (0: never). */
  packClipSeconds: number;
  /** The speaker embedding model's directory for diarization (undefined: the bundled one). */
  diarizationModelDir?: string | undefined;
}

/** Receives a job's results as the engine produces them, before the job finishes. */
export interface JobListener {
  /** The job is queued, under this id (the engine's own, unique). */
  onQueued?(jobId: string): void;
  onInfo?(info: EngineInfo): void;
  onSegment?(segment: EngineSegment): void;
}

export interface JobSpec {
  id: string;
  audioPath: string;
  task: 'transcribe' | 'translate';
  options: TranscribeOptions;
  listener?: JobListener;
}

interface RunningJob {
  spec: JobSpec;
  info?: EngineInfo;
  segments: EngineSegment[];
  cancelled: boolean;
  resolve(transcript: Transcript): void;
  reject(error: Error): void;
}

const STDERR_LINES_KEPT = 20;
const SHUTDOWN_GRACE_MS = 3000;

function workerArguments(model: ResolvedModel, settings: WorkerSettings): string[] {
  const source = model.source.kind === 'hub' ? model.source.repo : model.source.path;
  const args = ['-m', 'earshot_worker', '--model', source, '--name', model.id];
  args.push('--device', settings.device, '--compute-type', settings.computeType);
  args.push('--cpu-threads', String(settings.cpuThreads));
  args.push('--max-audio-seconds', String(settings.maxAudioSeconds));
  args.push('--long-audio-batch-size', String(settings.longAudioBatchSize));
  args.push('--long-audio-seconds', String(settings.longAudioSeconds));
  if (settings.fitShortAudioSeconds) args.push('--fit-short-audio-seconds', String(settings.fitShortAudioSeconds));
  args.push('--pack-clip-seconds', String(settings.packClipSeconds));
  if (settings.diarizationModelDir) args.push('--diarization-model', settings.diarizationModelDir);
  if (model.source.kind === 'hub') {
    if (settings.hubCacheDir) args.push('--download-root', settings.hubCacheDir);
    if (!settings.hubDownload) args.push('--local-files-only');
  }
  return args;
}

const WORKER_FAILURE_CODES: readonly string[] = [
  'invalid_audio',
  'audio_too_short',
  'audio_too_long',
  'invalid_options',
  'invalid_speaker_reference',
  'model_error',
  'bad_message',
] satisfies WorkerFailureCode[];

function jobError(code: string, message: string): Error {
  if (code === 'cancelled') return jobCancelled();
  // A code this gateway does not know is the model's failure.
  const known = WORKER_FAILURE_CODES.includes(code) ? (code as WorkerFailureCode) : 'model_error';
  return new EngineError({ reason: 'job_failed', code: known, detail: message });
}

export class EngineWorker extends EventEmitter<{ exit: [reason: string] }> {
  readonly ready: Promise<void>;
  /** Seconds the model took to load and warm up, once ready. */
  loadSeconds: number | undefined;
  jobsDone = 0;
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly stderrTail: string[] = [];
  /** The jobs the worker holds now: one, or the jobs of one batch. */
  private readonly running = new Map<string, RunningJob>();
  private jobTimer: NodeJS.Timeout | undefined;
  private timedOut = false;
  private alive = true;
  private isReady = false;

  private readonly jobTimeoutMs: number;

  constructor(
    readonly model: ResolvedModel,
    settings: WorkerSettings,
    private readonly log: Logger,
  ) {
    super();
    this.child = spawn(settings.python, workerArguments(model, settings), {
      // numpy's OpenBLAS (the speaker encoder of diarization) takes every core by default; its threads
      // spin while they wait, so beside the other workers they cost more than they give (3× the time on
      // a busy machine). A worker's share of the cores is its CTranslate2 threads; an operator's own
      // OPENBLAS_NUM_THREADS wins.
      env: { OPENBLAS_NUM_THREADS: String(settings.cpuThreads), ...workerEnvironment() },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.log = log.child({ model: model.id, pid: this.child.pid });
    this.jobTimeoutMs = settings.jobTimeoutMs;
    this.ready = this.watch(settings.startTimeoutMs);
    // The pool awaits `ready`; a rejection nobody awaits yet must not crash the process.
    this.ready.catch(() => undefined);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Resident memory of the worker process in MiB (Linux), or undefined where it cannot be read. */
  rssMb(): number | undefined {
    try {
      const status = readFileSync(`/proc/${this.child.pid}/status`, 'utf8');
      const kib = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
      return kib === undefined ? undefined : Number(kib) / 1024;
    } catch {
      return undefined;
    }
  }

  get busy(): boolean {
    return this.running.size > 0;
  }

  /** Whether the model ever finished loading in this process. */
  get loaded(): boolean {
    return this.isReady;
  }

  get usable(): boolean {
    return this.alive && this.isReady;
  }

  /**
   * Runs one job, or several with identical options as one batch (decoded together by the worker);
   * one promise per job. The worker must be ready and idle.
   */
  run(specs: readonly JobSpec[]): Promise<Transcript>[] {
    if (!this.usable || this.busy) throw new Error('worker is not ready or already busy');
    const promises = specs.map(
      (spec) =>
        new Promise<Transcript>((resolve, reject) => {
          this.running.set(spec.id, { spec, segments: [], cancelled: false, resolve, reject });
        }),
    );
    if (this.jobTimeoutMs > 0) {
      this.jobTimer = setTimeout(() => {
        this.log.error(
          { jobs: specs.map((s) => s.id), timeoutMs: this.jobTimeoutMs },
          'job timed out; killing the worker as hung',
        );
        this.timedOut = true;
        this.child.kill('SIGKILL');
      }, this.jobTimeoutMs);
    }
    const jobs = specs.map((spec) => ({ job: spec.id, audio: spec.audioPath, options: spec.options }));
    const [single] = jobs;
    this.send(jobs.length === 1 && single ? { type: 'transcribe', ...single } : { type: 'transcribe_batch', jobs });
    return promises;
  }

  cancel(jobId: string): void {
    const job = this.running.get(jobId);
    if (!job || job.cancelled) return;
    job.cancelled = true;
    this.send({ type: 'cancel', job: jobId });
  }

  /**
   * Passes on the language a sharded job's first shard detected to this worker's shard of the job, which
   * decodes with it instead of detecting it again. Nothing when the job has already ended here.
   */
  relayLanguage(jobId: string, language: string): void {
    if (!this.runs(jobId) || !language) return;
    this.send({ type: 'language', job: jobId, language });
  }

  /** Whether this worker is running the job. */
  runs(jobId: string): boolean {
    return this.running.has(jobId);
  }

  /** Ends the process at once (its jobs end as `exit` reports them: cancelled ones as cancelled). */
  kill(): void {
    if (this.alive) this.child.kill('SIGKILL');
  }

  /** Asks the worker to finish and exit; SIGKILL after a grace (the worker ignores SIGTERM). */
  async stop(): Promise<void> {
    if (!this.alive) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.send({ type: 'shutdown' });
    this.child.stdin.end();
    const kill = setTimeout(() => this.child.kill('SIGKILL'), SHUTDOWN_GRACE_MS);
    await exited;
    clearTimeout(kill);
  }

  /** The last lines the worker wrote to stderr, for error reports. */
  recentStderr(): string {
    return this.stderrTail.join('\n');
  }

  private send(command: WorkerCommand): void {
    if (!this.alive || !this.child.stdin.writable) return;
    this.child.stdin.write(`${JSON.stringify(command)}\n`);
  }

  private watch(startTimeoutMs: number): Promise<void> {
    createInterface({ input: this.child.stderr }).on('line', (line) => {
      this.stderrTail.push(line);
      if (this.stderrTail.length > STDERR_LINES_KEPT) this.stderrTail.shift();
      this.log.debug({ worker: 'stderr' }, line);
    });
    // Writing to a worker that has just died raises EPIPE on stdin; the exit handler reports it.
    this.child.stdin.on('error', (error) => this.log.debug({ err: error }, 'worker stdin closed'));

    return new Promise<void>((resolve, reject) => {
      const timeout = setTimeout(() => {
        reject(this.loadFailed({ kind: 'start_timeout', timeoutMs: startTimeoutMs }));
        this.child.kill('SIGKILL');
      }, startTimeoutMs);

      createInterface({ input: this.child.stdout }).on('line', (line) => {
        let event: WorkerEvent;
        try {
          event = JSON.parse(line) as WorkerEvent;
        } catch {
          this.log.warn({ line: line.slice(0, 200) }, 'worker wrote a line that is not a protocol message');
          return;
        }
        if (event.type === 'ready') {
          clearTimeout(timeout);
          this.isReady = true;
          this.loadSeconds = event.load_seconds;
          this.log.info({ loadSeconds: event.load_seconds }, 'engine worker ready');
          resolve();
        } else if (event.type === 'fatal') {
          clearTimeout(timeout);
          reject(this.loadFailed({ kind: 'fatal', detail: event.message }));
        } else {
          this.onJobEvent(event);
        }
      });

      this.child.on('error', (error) => {
        clearTimeout(timeout);
        reject(this.loadFailed({ kind: 'spawn_failed', detail: error.message }));
      });
      this.child.on('exit', (code, signal) => {
        clearTimeout(timeout);
        clearTimeout(this.jobTimer);
        this.alive = false;
        const reason = this.timedOut
          ? `was killed after a job ran past ${this.jobTimeoutMs} ms`
          : signal
            ? `killed by ${signal}`
            : `exited with code ${code}`;
        reject(this.loadFailed({ kind: 'exited', exit: reason }));
        const jobs = [...this.running.values()];
        this.running.clear();
        for (const job of jobs) {
          job.reject(
            job.cancelled
              ? jobCancelled()
              : this.timedOut
                ? new EngineError({ reason: 'job_timeout', timeoutMs: this.jobTimeoutMs })
                : new EngineError({ reason: 'worker_crashed', exit: reason }),
          );
        }
        this.emit('exit', reason);
      });
    });
  }

  private loadFailed(cause: LoadFailure): EngineError {
    return new EngineError({ reason: 'model_load_failed', model: this.model.id, cause });
  }

  private finishJob(jobId: string): void {
    this.running.delete(jobId);
    this.jobsDone++;
    if (this.running.size === 0) clearTimeout(this.jobTimer);
  }

  private onJobEvent(event: Exclude<WorkerEvent, { type: 'ready' | 'fatal' }>): void {
    const job = this.running.get(event.job);
    if (!job) {
      this.log.warn({ event: event.type, job: event.job }, 'worker message for a job it is not running');
      return;
    }
    switch (event.type) {
      case 'info': {
        const { type: _type, job: _job, ...info } = event;
        job.info = info;
        job.spec.listener?.onInfo?.(info);
        break;
      }
      case 'segment':
        job.segments.push(event.segment);
        job.spec.listener?.onSegment?.(event.segment);
        break;
      case 'done':
        this.finishJob(event.job);
        if (!job.info) {
          job.reject(new EngineError({ reason: 'job_incomplete' }));
        } else {
          job.resolve({ task: job.spec.task, info: job.info, segments: job.segments });
        }
        break;
      case 'error':
        this.finishJob(event.job);
        job.reject(jobError(event.code, event.message));
        break;
    }
  }
}
