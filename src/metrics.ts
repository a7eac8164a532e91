// Prometheus metrics: what the server is doing, from requests down to workers. The engine reports
// to the EngineObserver side; routes and the queue gauges are read when /metrics is scraped.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Engine, EngineObserver, Transcript } from './engine/index.ts';

const LATENCY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900];
// How often the event loop's lag is sampled (prom-client's default is 10 ms; see the constructor).
const EVENT_LOOP_SAMPLE_MS = 100;

export class Metrics implements EngineObserver {
  readonly registry = new Registry();

  private readonly requests = new Counter({
    name: 'earshot_http_requests_total',
    help: 'HTTP requests by route, method and status code.',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [this.registry],
  });
  private readonly errors = new Counter({
    name: 'earshot_http_errors_total',
    help: 'Requests answered with an error, by route and error kind (README, "Errors").',
    labelNames: ['route', 'kind'] as const,
    registers: [this.registry],
  });
  private readonly requestSeconds = new Histogram({
    name: 'earshot_http_request_duration_seconds',
    help: 'Time from request to response, by route.',
    labelNames: ['route'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  private readonly queueWait = new Histogram({
    name: 'earshot_queue_wait_seconds',
    help: 'Time jobs waited in their model queue before a worker took them.',
    labelNames: ['model'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  private readonly jobSeconds = new Histogram({
    name: 'earshot_job_duration_seconds',
    help: 'Time a worker spent on a job (decoding included), by outcome.',
    labelNames: ['model', 'outcome'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  private readonly audioSeconds = new Counter({
    name: 'earshot_audio_seconds_total',
    help: 'Seconds of audio transcribed or translated.',
    labelNames: ['model', 'task'] as const,
    registers: [this.registry],
  });
  private readonly realtimeFactor = new Histogram({
    name: 'earshot_realtime_factor',
    help: 'Audio seconds per second of processing, per finished job (above 1 is faster than real time).',
    labelNames: ['model'] as const,
    buckets: [0.5, 1, 2, 5, 10, 20, 50, 100],
    registers: [this.registry],
  });
  private readonly workerRestarts = new Counter({
    name: 'earshot_worker_restarts_total',
    help: 'Engine workers that died and were restarted.',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });
  private readonly modelLoadSeconds = new Gauge({
    name: 'earshot_model_load_seconds',
    help: 'Seconds the last load (and warm-up) of each model took.',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });
  private readonly realtimeSessions = new Gauge({
    name: 'earshot_realtime_sessions',
    help: 'Realtime transcription sessions open now.',
    registers: [this.registry],
  });
  private readonly realtimeTurns = new Counter({
    name: 'earshot_realtime_turns_total',
    help: 'Realtime turns committed, by outcome (completed or failed).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  private readonly realtimeTurnSeconds = new Histogram({
    name: 'earshot_realtime_turn_latency_seconds',
    help: "Time from a turn's commit (speech stopped) to its completed transcript.",
    buckets: [0.1, 0.2, 0.3, 0.5, 0.8, 1, 1.5, 2, 3, 5, 10],
    registers: [this.registry],
  });

  constructor() {
    // prom-client samples event loop lag with a timer that wakes the gateway every 10 ms by default:
    // 100 wake-ups a second, each taking a core from the decoding workers (on 2 cores, from one of
    // CTranslate2's two threads of a long decode, and the other then waits for it). Sampled every
    // 100 ms, a blocked loop still shows; the idle gateway's main thread went from 5.3 to 0.7 ms of CPU
    // a second (bench/README.md, "Long file, overhead and latency").
    collectDefaultMetrics({
      register: this.registry,
      prefix: 'earshot_gateway_',
      eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS,
    });
  }

  /** Queue and worker gauges, read from the engine when scraped (the engine reports to this object too). */
  watchEngine(engine: Engine): void {
    const pools = () => engine.status();
    new Gauge({
      name: 'earshot_queue_depth',
      help: 'Jobs waiting in each model queue.',
      labelNames: ['model'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const pool of pools()) this.set({ model: pool.model }, pool.queued);
      },
    });
    new Gauge({
      name: 'earshot_jobs_in_flight',
      help: 'Jobs running on a worker now.',
      labelNames: ['model'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const pool of pools()) this.set({ model: pool.model }, pool.running);
      },
    });
    new Gauge({
      name: 'earshot_model_loaded',
      help: 'Whether each model known to the engine can serve now (1) or is loading or failed (0).',
      labelNames: ['model', 'state'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const pool of pools()) this.set({ model: pool.model, state: pool.state }, pool.state === 'ready' ? 1 : 0);
      },
    });
  }

  observeRequest(route: string, method: string, status: number, seconds: number, errorKind?: string): void {
    this.requests.inc({ route, method, status: String(status) });
    this.requestSeconds.observe({ route }, seconds);
    if (errorKind) this.errors.inc({ route, kind: errorKind });
  }

  jobStarted(model: string, queueSeconds: number): void {
    this.queueWait.observe({ model }, queueSeconds);
  }

  jobFinished(model: string, outcome: 'ok' | 'error' | 'cancelled', seconds: number, transcript?: Transcript): void {
    this.jobSeconds.observe({ model, outcome }, seconds);
    if (transcript) {
      this.audioSeconds.inc({ model, task: transcript.task }, transcript.info.duration);
      if (seconds > 0) this.realtimeFactor.observe({ model }, transcript.info.duration / seconds);
    }
  }

  realtimeSessionOpened(): void {
    this.realtimeSessions.inc();
  }

  realtimeSessionClosed(): void {
    this.realtimeSessions.dec();
  }

  observeRealtimeTurn(outcome: 'completed' | 'failed', seconds?: number): void {
    this.realtimeTurns.inc({ outcome });
    if (seconds !== undefined) this.realtimeTurnSeconds.observe(seconds);
  }

  workerRestarted(model: string): void {
    this.workerRestarts.inc({ model });
  }

  modelLoaded(model: string, loadSeconds: number): void {
    this.modelLoadSeconds.set({ model }, loadSeconds);
    // A loaded model shows its restart count from 0, so that alerts on its rate have a series to watch.
    this.workerRestarts.inc({ model }, 0);
  }
}
