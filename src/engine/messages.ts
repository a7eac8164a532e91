// The worker contract: the messages exchanged with an engine worker, one JSON object per line over
// its stdin/stdout, defined once here as JSON Schema (TypeBox). The TypeScript types are derived
// from these schemas; `npm run contract` writes them to worker/earshot_worker/contract.schema.json,
// which the worker validates every command against (worker/earshot_worker/contract.py) and its tests
// validate every event with. test/unit/contract.test.ts fails when that file is stale.
import Type, { type Static, type TSchema } from 'typebox';

/**
 * Which option values keep a job out of a shared decode, per kind: `cross_request`, several short
 * jobs decoded together by faster-whisper's BatchedInferencePipeline (the gateway's pools group them,
 * the worker's batching.py decodes them); `long_audio`, one long file decoded in batched chunks (the
 * worker's LongAudioBatching); `packing`, short clips laid side by side in one 30 s window and split
 * back by word timestamps (the worker's packing.py), which needs what a single decode of each clip
 * would do to be the same in a shared window. `'any'`: any value given; a list: one of these values.
 * Both sides read this annotation (`x-unbatched` on an option's schema) through `batchable()` here
 * and in contract.py.
 */
export interface Unbatched {
  cross_request?: 'any' | readonly (boolean | number | string)[];
  long_audio?: 'any' | readonly (boolean | number | string)[];
  packing?: 'any' | readonly (boolean | number | string)[];
}
export type BatchKind = keyof Unbatched;

function unbatched(rule: Unbatched): { 'x-unbatched': Unbatched } {
  return { 'x-unbatched': rule };
}

/** faster-whisper's VadOptions fields the gateway may set. */
export const VadParametersSchema = Type.Object(
  {
    threshold: Type.Optional(Type.Number()),
    neg_threshold: Type.Optional(Type.Number()),
    min_speech_duration_ms: Type.Optional(Type.Integer()),
    max_speech_duration_s: Type.Optional(Type.Number()),
    min_silence_duration_ms: Type.Optional(Type.Integer()),
    speech_pad_ms: Type.Optional(Type.Integer()),
  },
  { additionalProperties: false },
);

/** Who speaks when (worker/earshot_worker/diarize.py): the speakers to find, and those known by a clip. */
export const DiarizeOptionsSchema = Type.Object(
  {
    num_speakers: Type.Optional(Type.Integer({ minimum: 1 })),
    min_speakers: Type.Optional(Type.Integer({ minimum: 1 })),
    max_speakers: Type.Optional(Type.Integer({ minimum: 1 })),
    /** Reference clips (paths of audio files the gateway wrote) and the names segments of their voice get. */
    known_speakers: Type.Optional(
      Type.Array(Type.Object({ name: Type.String(), audio: Type.String() }, { additionalProperties: false })),
    ),
  },
  { additionalProperties: false },
);
export type DiarizeOptions = Static<typeof DiarizeOptionsSchema>;

/** The keyword arguments of faster-whisper's transcribe() a job may set, and the worker's own. */
export const TranscribeOptionsSchema = Type.Object(
  {
    language: Type.Optional(Type.String()),
    task: Type.Optional(Type.Union([Type.Literal('transcribe'), Type.Literal('translate')])),
    initial_prompt: Type.Optional(Type.String(unbatched({ packing: 'any' }))),
    temperature: Type.Optional(Type.Array(Type.Number())),
    word_timestamps: Type.Optional(Type.Boolean()),
    beam_size: Type.Optional(Type.Integer({ minimum: 1 })),
    best_of: Type.Optional(Type.Integer({ minimum: 1 })),
    patience: Type.Optional(Type.Number()),
    // The batch's clips are given by timestamps; VAD would cut them again. Long audio needs VAD.
    vad_filter: Type.Optional(Type.Boolean(unbatched({ cross_request: [true], long_audio: [false], packing: [true] }))),
    vad_parameters: Type.Optional(VadParametersSchema),
    // Packing: a prompt shared by every clip of a window could carry text from one clip's decode into
    // another's; kept out, as the initial prompt.
    hotwords: Type.Optional(Type.String(unbatched({ packing: 'any' }))),
    // Text forced at the start of the first window (faster-whisper's own); the segments' text includes
    // it. The batched pipeline would force it at the start of every chunk.
    prefix: Type.Optional(Type.String(unbatched({ cross_request: 'any', long_audio: 'any', packing: 'any' }))),
    // The batched pipeline never conditions on previous text.
    // Packing decodes each window without it (no clip may condition on another's text): a job that sets
    // it either way asks for a decode of its own.
    condition_on_previous_text: Type.Optional(Type.Boolean(unbatched({ long_audio: [true], packing: 'any' }))),
    // Packing splits a window by timestamps.
    without_timestamps: Type.Optional(Type.Boolean(unbatched({ packing: [true] }))),
    no_speech_threshold: Type.Optional(Type.Number()),
    log_prob_threshold: Type.Optional(Type.Number()),
    compression_ratio_threshold: Type.Optional(Type.Number()),
    // The batched pipeline skips the hallucination filter.
    hallucination_silence_threshold: Type.Optional(
      Type.Number(unbatched({ cross_request: 'any', long_audio: 'any', packing: 'any' })),
    ),
    /** Handled by the worker: per-token log probabilities on each segment (one alignment record per job). */
    logprobs: Type.Optional(
      Type.Boolean({ 'x-worker': true, ...unbatched({ cross_request: [true], packing: [true] }) }),
    ),
    /** Handled by the worker: decode with faster-whisper's BatchedInferencePipeline, on its own. */
    batch_size: Type.Optional(
      Type.Integer({ minimum: 1, 'x-worker': true, ...unbatched({ cross_request: 'any', packing: 'any' }) }),
    ),
    /** Handled by the worker: a short clip is decoded fast when the encoder sees only the audio, not 30 s. */
    fit_window: Type.Optional(
      Type.Boolean({
        'x-worker': true,
        ...unbatched({ cross_request: [true], long_audio: [true], packing: 'any' }),
        description:
          "Encode each window fitted to its audio instead of Whisper's fixed 30 s: the audio plus 2 s of " +
          'padding, in whole seconds, at least 5 s; bound its decode to 12 tokens a second of audio + 10 ' +
          '(a short window can loop), and decode a window again whole if its decode repeats itself. Audio ' +
          'longer than 28 s is decoded as usual. Not with batch_size. Set by the gateway for live turns ' +
          'only, never from a request.',
      }),
    ),
    /** Handled by the worker: a live turn's partial decode, which a later decode replaces. */
    partial: Type.Optional(
      Type.Boolean({
        'x-worker': true,
        ...unbatched({ cross_request: [true], long_audio: [true], packing: [true] }),
        description:
          "A live turn's partial decode, which a later decode of the turn replaces: with fit_window, a " +
          'decode that repeats itself is cut after the first copy of what repeats instead of decoded ' +
          "again from the whole window (a second of encoder on a CPU, which delayed a turn's first " +
          'words); without timestamps, only the first window is decoded (with word timestamps, ' +
          'faster-whisper would decode again what follows the last word). Set by the gateway, never ' +
          'from a request.',
      }),
    ),
    /** Handled by the worker: decode one part of a long job that several idle workers share. */
    shard: Type.Optional(
      Type.Object(
        { index: Type.Integer({ minimum: 0 }), count: Type.Integer({ minimum: 1 }) },
        {
          additionalProperties: false,
          'x-worker': true,
          ...unbatched({ cross_request: 'any' }),
          description:
            'This worker is one of `count` sharing the job: audio the worker decodes in chunks (long audio) ' +
            'gets the same VAD chunks in every shard, and shard `index` decodes only its contiguous share of ' +
            'them (about equal work each); other audio is decoded whole by shard 0, and the other shards ' +
            'answer at once with info and done. Without a language, only shard 0 detects it: the others ' +
            'encode their chunks, then wait for the `language` command that passes on what shard 0 found ' +
            '(their info says language ""). Not with diarize. Set by the gateway, never from a request.',
        },
      ),
    ),
    /** Handled by the worker: label each word and segment with its speaker (word timestamps on). */
    diarize: Type.Optional(
      Type.Unsafe<DiarizeOptions>({
        ...DiarizeOptionsSchema,
        'x-worker': true,
        ...unbatched({ cross_request: 'any', packing: 'any' }),
      }),
    ),
  },
  { additionalProperties: false },
);
export type TranscribeOptions = Static<typeof TranscribeOptionsSchema>;

const JobSpecFields = {
  job: Type.String(),
  audio: Type.String(),
  options: TranscribeOptionsSchema,
};

export const TranscribeCommandSchema = Type.Object(
  { type: Type.Literal('transcribe'), ...JobSpecFields },
  { additionalProperties: false },
);
/** One job of a transcribe_batch command (and a transcribe command without its type). */
export const JobSpecSchema = Type.Object(JobSpecFields, { additionalProperties: false });
export const TranscribeBatchCommandSchema = Type.Object(
  { type: Type.Literal('transcribe_batch'), jobs: Type.Array(JobSpecSchema, { minItems: 1 }) },
  { additionalProperties: false },
);
export const CancelCommandSchema = Type.Object(
  { type: Type.Literal('cancel'), job: Type.String() },
  { additionalProperties: false },
);
export const ShutdownCommandSchema = Type.Object({ type: Type.Literal('shutdown') }, { additionalProperties: false });
/**
 * The language the first shard of a job detected (its info), passed on to the job's other shards: they
 * decode with it instead of detecting it again (an encoder pass each, about a second of base on a core).
 */
export const LanguageCommandSchema = Type.Object(
  { type: Type.Literal('language'), job: Type.String(), language: Type.String({ minLength: 1 }) },
  { additionalProperties: false },
);

export const WorkerCommandSchema = Type.Union([
  TranscribeCommandSchema,
  TranscribeBatchCommandSchema,
  CancelCommandSchema,
  ShutdownCommandSchema,
  LanguageCommandSchema,
]);
export type WorkerCommand = Static<typeof WorkerCommandSchema>;

export const EngineWordSchema = Type.Object(
  {
    word: Type.String(),
    start: Type.Number(),
    end: Type.Number(),
    probability: Type.Number(),
    /** With diarize: who says it. */
    speaker: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);
export type EngineWord = Static<typeof EngineWordSchema>;

/** One token's log probability, as OpenAI's include[]=logprobs returns it. */
export const TokenLogprobSchema = Type.Object(
  { token: Type.String(), logprob: Type.Number(), bytes: Type.Array(Type.Integer()) },
  { additionalProperties: false },
);
export type TokenLogprob = Static<typeof TokenLogprobSchema>;

export const EngineSegmentSchema = Type.Object(
  {
    id: Type.Integer(),
    seek: Type.Integer(),
    start: Type.Number(),
    end: Type.Number(),
    text: Type.String(),
    tokens: Type.Array(Type.Integer()),
    temperature: Type.Number(),
    avg_logprob: Type.Number(),
    compression_ratio: Type.Number(),
    no_speech_prob: Type.Number(),
    words: Type.Union([Type.Array(EngineWordSchema), Type.Null()]),
    logprobs: Type.Union([Type.Array(TokenLogprobSchema), Type.Null()]),
    /** With diarize: who says most of it (its words carry their own). */
    speaker: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);
export type EngineSegment = Static<typeof EngineSegmentSchema>;

const EngineInfoFields = {
  language: Type.String(),
  language_probability: Type.Number(),
  duration: Type.Number(),
  duration_after_vad: Type.Number(),
};
export const EngineInfoSchema = Type.Object(EngineInfoFields, { additionalProperties: false });
export type EngineInfo = Static<typeof EngineInfoSchema>;

/** Stable codes a worker reports a failed job with. */
export const JobErrorCodeSchema = Type.Union([
  Type.Literal('invalid_audio'),
  Type.Literal('audio_too_short'),
  Type.Literal('audio_too_long'),
  Type.Literal('invalid_options'),
  Type.Literal('invalid_speaker_reference'),
  Type.Literal('model_error'),
  Type.Literal('cancelled'),
  Type.Literal('bad_message'),
]);
export type JobErrorCode = Static<typeof JobErrorCodeSchema>;

/** Why a worker could not start (then it exits). */
export const FatalCodeSchema = Type.Union([Type.Literal('model_load_failed'), Type.Literal('bad_arguments')]);
export type FatalCode = Static<typeof FatalCodeSchema>;

export const ReadyEventSchema = Type.Object(
  { type: Type.Literal('ready'), model: Type.String(), load_seconds: Type.Number() },
  { additionalProperties: false },
);
export const FatalEventSchema = Type.Object(
  { type: Type.Literal('fatal'), code: FatalCodeSchema, message: Type.String() },
  { additionalProperties: false },
);
export const InfoEventSchema = Type.Object(
  { type: Type.Literal('info'), job: Type.String(), ...EngineInfoFields },
  { additionalProperties: false },
);
export const SegmentEventSchema = Type.Object(
  { type: Type.Literal('segment'), job: Type.String(), segment: EngineSegmentSchema },
  { additionalProperties: false },
);
export const DoneEventSchema = Type.Object(
  { type: Type.Literal('done'), job: Type.String(), processing_seconds: Type.Number() },
  { additionalProperties: false },
);
export const ErrorEventSchema = Type.Object(
  { type: Type.Literal('error'), job: Type.String(), code: JobErrorCodeSchema, message: Type.String() },
  { additionalProperties: false },
);

export const WorkerEventSchema = Type.Union([
  ReadyEventSchema,
  FatalEventSchema,
  InfoEventSchema,
  SegmentEventSchema,
  DoneEventSchema,
  ErrorEventSchema,
]);
export type WorkerEvent = Static<typeof WorkerEventSchema>;

/** Every schema of the contract by name: what contract.schema.json holds under `$defs`. */
export const contractSchemas: Readonly<Record<string, TSchema>> = {
  TranscribeOptions: TranscribeOptionsSchema,
  VadParameters: VadParametersSchema,
  DiarizeOptions: DiarizeOptionsSchema,
  WorkerCommand: WorkerCommandSchema,
  JobSpec: JobSpecSchema,
  TranscribeCommand: TranscribeCommandSchema,
  TranscribeBatchCommand: TranscribeBatchCommandSchema,
  CancelCommand: CancelCommandSchema,
  ShutdownCommand: ShutdownCommandSchema,
  LanguageCommand: LanguageCommandSchema,
  WorkerEvent: WorkerEventSchema,
  ReadyEvent: ReadyEventSchema,
  FatalEvent: FatalEventSchema,
  InfoEvent: InfoEventSchema,
  SegmentEvent: SegmentEventSchema,
  DoneEvent: DoneEventSchema,
  ErrorEvent: ErrorEventSchema,
};

/** The JSON Schema document worker/earshot_worker/contract.schema.json holds, as text. */
export function contractDocument(): string {
  const document = {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $comment: 'Generated from src/engine/messages.ts by `npm run contract`: do not edit.',
    $defs: contractSchemas,
  };
  return `${JSON.stringify(document, null, 2)}\n`;
}

/** The option names the worker handles itself rather than passing to faster-whisper. */
export const workerOptionNames: readonly string[] = Object.entries(TranscribeOptionsSchema.properties)
  .filter(([, schema]) => (schema as { 'x-worker'?: boolean })['x-worker'] === true)
  .map(([name]) => name);

/** Whether a job with these options may be decoded in a batch of this kind (the `x-unbatched` rule). */
export function batchable(options: TranscribeOptions, kind: BatchKind): boolean {
  for (const [name, value] of Object.entries(options)) {
    if (value === undefined || !Object.hasOwn(TranscribeOptionsSchema.properties, name)) continue;
    const schema = TranscribeOptionsSchema.properties[name as keyof TranscribeOptions] as {
      'x-unbatched'?: Unbatched;
    };
    const rule = schema['x-unbatched']?.[kind];
    if (rule === 'any' || rule?.includes(value as boolean | number | string)) return false;
  }
  return true;
}

/** What one finished transcription job produced: the input to every response formatter. */
export interface Transcript {
  task: 'transcribe' | 'translate';
  info: EngineInfo;
  segments: EngineSegment[];
}
