// Where a live session's turns begin and end: Silero VAD v6, the very model file faster-whisper's VAD
// filter runs (its path is one of the engine facts), run in the gateway on onnxruntime-node, and OpenAI's
// server_vad rules on its probabilities.
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { SAMPLE_RATE } from './audio.ts';

/** Silero VAD's window at 16 kHz: one probability per 512 new samples (32 ms). */
export const VAD_CHUNK_SAMPLES = 512;
export const VAD_CHUNK_MS = (VAD_CHUNK_SAMPLES * 1000) / SAMPLE_RATE;
// faster-whisper's export (faster_whisper/vad.py, SileroVADModel): each row of `input` is the last 64
// samples of the chunk before (zeros before the first) and then the chunk's 512; the LSTM state `h`, `c`
// runs through the rows in order and comes out as `hn`, `cn` for the next call.
const CONTEXT_SAMPLES = 64;
const ROW = CONTEXT_SAMPLES + VAD_CHUNK_SAMPLES;
const STATE_SHAPE = [1, 1, 128];
const STATE_SIZE = 128;

/** The Silero VAD model, loaded once per process; every live session's stream shares it. */
export class SileroVad {
  private constructor(private readonly session: InferenceSession) {}

  /**
   * One thread, as faster-whisper runs it: a run takes well under a millisecond, and onnxruntime-node
   * runs it on the event loop's thread anyway (a threadpool would only add hand-offs and contention
   * with the engine's workers).
   */
  static async load(modelPath: string): Promise<SileroVad> {
    const session = await InferenceSession.create(modelPath, {
      executionProviders: ['cpu'],
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      enableCpuMemArena: false,
      logSeverityLevel: 3,
    });
    return new SileroVad(session);
  }

  /** A stream of one session's 16 kHz audio: its own model state (about 3 KB). */
  createStream(): VadStream {
    return new SileroVadStream(this.session);
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

export interface VadStream {
  /**
   * 16 kHz samples in; the speech probability of every complete 512-sample (32 ms) chunk out, in order.
   * The samples after the last complete chunk wait for the next call. Calls may overlap: each waits for
   * the one before (the model's state runs from chunk to chunk); results come in call order.
   */
  process(samples: Float32Array): Promise<Float32Array>;
}

class SileroVadStream implements VadStream {
  private h: Float32Array = new Float32Array(STATE_SIZE);
  private c: Float32Array = new Float32Array(STATE_SIZE);
  // The last samples of the chunk before, which the next chunk's row starts with.
  private readonly context = new Float32Array(CONTEXT_SAMPLES);
  // Samples that do not yet make a whole chunk.
  private readonly pending = new Float32Array(VAD_CHUNK_SAMPLES);
  private pendingLength = 0;
  private previous: Promise<unknown> = Promise.resolve();

  constructor(private readonly session: InferenceSession) {}

  process(samples: Float32Array): Promise<Float32Array> {
    // The rows are built now, in call order; only the model's state has to wait for the run before.
    const chunks = Math.floor((this.pendingLength + samples.length) / VAD_CHUNK_SAMPLES);
    const input = new Float32Array(chunks * ROW);
    let taken = 0;
    for (let row = 0; row < chunks; row++) {
      const at = row * ROW;
      input.set(this.context, at);
      if (this.pendingLength > 0) {
        input.set(this.pending.subarray(0, this.pendingLength), at + CONTEXT_SAMPLES);
        taken = VAD_CHUNK_SAMPLES - this.pendingLength;
        input.set(samples.subarray(0, taken), at + CONTEXT_SAMPLES + this.pendingLength);
        this.pendingLength = 0;
      } else {
        input.set(samples.subarray(taken, taken + VAD_CHUNK_SAMPLES), at + CONTEXT_SAMPLES);
        taken += VAD_CHUNK_SAMPLES;
      }
      this.context.set(input.subarray(at + ROW - CONTEXT_SAMPLES, at + ROW));
    }
    this.pending.set(samples.subarray(taken), this.pendingLength);
    this.pendingLength += samples.length - taken;

    const result = this.previous.then(() => this.run(input, chunks));
    this.previous = result.catch(() => undefined);
    return result;
  }

  private async run(input: Float32Array, chunks: number): Promise<Float32Array> {
    if (chunks === 0) return new Float32Array(0);
    const out = await this.session.run({
      input: new Tensor('float32', input, [chunks, ROW]),
      h: new Tensor('float32', this.h, STATE_SHAPE),
      c: new Tensor('float32', this.c, STATE_SHAPE),
    });
    this.h = float32Output(out, 'hn');
    this.c = float32Output(out, 'cn');
    return float32Output(out, 'speech_probs');
  }
}

function float32Output(out: InferenceSession.OnnxValueMapType, name: string): Float32Array {
  const data = out[name]?.data;
  if (!(data instanceof Float32Array)) throw new Error(`the Silero VAD model gave no float32 output ${name}`);
  return data;
}

export interface TurnDetectorOptions {
  threshold: number;
  prefixPaddingMs: number;
  silenceDurationMs: number;
}

export type TurnEvent =
  /**
   * Includes the prefix padding; never < 0, nor before the end of the chunk where the previous turn's
   * stop was decided (the audio up to there went with that turn).
   */
  | { type: 'speech_started'; audioStartMs: number }
  /**
   * When the silence began: the turn's speech ends there (the design's choice; the SDK's doc says
   * OpenAI's audio_end_ms "includes the silence duration", which is the chunkEndMs of the push that
   * returned this event).
   */
  | { type: 'speech_stopped'; audioEndMs: number };

/**
 * OpenAI's server_vad on Silero's probabilities: a turn starts at the first chunk whose probability is
 * at least `threshold` (its audio from `prefixPaddingMs` before that chunk) and stops once
 * `silenceDurationMs` of silence have passed; its audio ends where that silence began.
 *
 * Silence begins at a chunk below a lower exit threshold, threshold − 0.15 (at least 0.01), and only a
 * chunk at or above `threshold` ends it: faster-whisper's get_speech_timestamps does the same
 * (`neg_threshold`), so a word whose probability dips just under the threshold, as unvoiced sounds and
 * soft word ends do, neither starts the silence nor, mid-silence, resets it. Turns then match faster-
 * whisper's speech timestamps (min_silence_duration_ms = silenceDurationMs, no padding); this
 * detector decides one chunk sooner, when the silence counted to the end of a chunk is long enough.
 */
export class TurnDetector {
  private readonly exitThreshold: number;
  private inTurn = false;
  private silenceStart: number | undefined;
  private lastStop = 0;

  constructor(private readonly options: TurnDetectorOptions) {
    this.exitThreshold = Math.max(options.threshold - 0.15, 0.01);
  }

  /** Whether a turn has started and not stopped. */
  get speaking(): boolean {
    return this.inTurn;
  }

  /**
   * In a turn, when the silence that may end it began (ms of session audio), else undefined: the turn
   * stops if this silence reaches silenceDurationMs (a session may start its final decode early).
   */
  get silenceStartedMs(): number | undefined {
    return this.silenceStart;
  }

  /** One chunk's probability; `chunkEndMs` = ms of session audio up to the end of this chunk. */
  push(probability: number, chunkEndMs: number): TurnEvent[] {
    const chunkStartMs = chunkEndMs - VAD_CHUNK_MS;
    if (!this.inTurn) {
      if (probability < this.options.threshold) return [];
      this.inTurn = true;
      this.silenceStart = undefined;
      const audioStartMs = Math.max(chunkStartMs - this.options.prefixPaddingMs, this.lastStop, 0);
      return [{ type: 'speech_started', audioStartMs }];
    }
    if (probability >= this.options.threshold) {
      this.silenceStart = undefined;
      return [];
    }
    if (probability < this.exitThreshold) this.silenceStart ??= chunkStartMs;
    if (this.silenceStart === undefined || chunkEndMs - this.silenceStart < this.options.silenceDurationMs) return [];
    const audioEndMs = this.silenceStart;
    this.inTurn = false;
    this.silenceStart = undefined;
    this.lastStop = chunkEndMs;
    return [{ type: 'speech_stopped', audioEndMs }];
  }
}
