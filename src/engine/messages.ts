// The typed messages exchanged with an engine worker, one JSON object per line over its
// stdin/stdout. The Python side of this contract is worker/earshot_worker/protocol.py.

/** faster-whisper transcribe() keyword arguments that a job may set (validated by the gateway). */
export interface TranscribeOptions {
  language?: string;
  task?: 'transcribe' | 'translate';
  initial_prompt?: string;
  temperature?: number[];
  word_timestamps?: boolean;
  beam_size?: number;
  best_of?: number;
  patience?: number;
  vad_filter?: boolean;
  vad_parameters?: Record<string, number>;
  hotwords?: string;
  condition_on_previous_text?: boolean;
  without_timestamps?: boolean;
  no_speech_threshold?: number;
  log_prob_threshold?: number;
  compression_ratio_threshold?: number;
  hallucination_silence_threshold?: number;
  /** Handled by the worker: per-token log probabilities on each segment. */
  logprobs?: boolean;
  /** Handled by the worker: decode with faster-whisper's BatchedInferencePipeline. */
  batch_size?: number;
}

export type WorkerCommand =
  | { type: 'transcribe'; job: string; audio: string; options: TranscribeOptions }
  | { type: 'transcribe_batch'; jobs: { job: string; audio: string; options: TranscribeOptions }[] }
  | { type: 'cancel'; job: string }
  | { type: 'shutdown' };

export interface EngineWord {
  word: string;
  start: number;
  end: number;
  probability: number;
}

/** One token's log probability, as OpenAI's include[]=logprobs returns it. */
export interface TokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
}

export interface EngineSegment {
  id: number;
  seek: number;
  start: number;
  end: number;
  text: string;
  tokens: number[];
  temperature: number;
  avg_logprob: number;
  compression_ratio: number;
  no_speech_prob: number;
  words: EngineWord[] | null;
  logprobs: TokenLogprob[] | null;
}

export interface EngineInfo {
  language: string;
  language_probability: number;
  duration: number;
  duration_after_vad: number;
}

/** Stable codes a worker reports a failed job with. */
export type JobErrorCode =
  | 'invalid_audio'
  | 'audio_too_short'
  | 'audio_too_long'
  | 'invalid_options'
  | 'model_error'
  | 'cancelled'
  | 'bad_message';

export type WorkerEvent =
  | { type: 'ready'; model: string; load_seconds: number }
  | { type: 'fatal'; code: string; message: string }
  | ({ type: 'info'; job: string } & EngineInfo)
  | { type: 'segment'; job: string; segment: EngineSegment }
  | { type: 'done'; job: string; processing_seconds: number }
  | { type: 'error'; job: string; code: JobErrorCode; message: string };

/** What one finished transcription job produced: the input to every response formatter. */
export interface Transcript {
  task: 'transcribe' | 'translate';
  info: EngineInfo;
  segments: EngineSegment[];
}
