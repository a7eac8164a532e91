// The fields of a transcription or translation request, as OpenAI defines them plus faster-whisper's
// own knobs, validated and turned into engine options. Multipart fields arrive as strings in any
// order; `name[]` and `name` are the same field, and objects come as a JSON string or as
// `name[key]` fields (as the SDKs send `chunking_strategy[type]=server_vad`).
import { ApiError } from '../api-errors.ts';
import type { TranscribeOptions } from '../engine/index.ts';
import type { ResponseFormat } from './formatters.ts';
import { normaliseLanguage } from './languages.ts';

export type Task = 'transcribe' | 'translate';
export type Granularity = 'word' | 'segment';

/** Field name (without a trailing "[]") → every value sent for it, in order. */
export type FormFields = ReadonlyMap<string, readonly string[]>;

export interface TranscriptionRequest {
  model: string;
  responseFormat: ResponseFormat;
  granularities: ReadonlySet<Granularity>;
  stream: boolean;
  includeLogprobs: boolean;
  options: TranscribeOptions;
  /** Known speakers' reference clips (decoded from their data URLs), for the route to write to files. */
  speakerReferences: SpeakerReference[];
}

export interface SpeakerReference {
  name: string;
  audio: Buffer;
}

const RESPONSE_FORMATS: readonly ResponseFormat[] = ['json', 'text', 'srt', 'verbose_json', 'vtt', 'diarized_json'];
// verbose_json streams too, as an earshot extension (OpenAI streams json, text and diarized_json).
const STREAMABLE_FORMATS: readonly ResponseFormat[] = ['json', 'text', 'verbose_json', 'diarized_json'];
// OpenAI: up to 4 known speakers.
export const MAX_KNOWN_SPEAKERS = 4;
const GRANULARITIES: readonly Granularity[] = ['word', 'segment'];
// faster-whisper's own temperature fallback schedule, which OpenAI's temperature=0 stands for.
const FALLBACK_TEMPERATURES = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0];

/** How a number field is checked: its range, and whether it must be whole. */
interface NumberRule {
  min: number;
  max: number;
  integer?: boolean;
  /** The minimum itself is not allowed (a strictly positive value). */
  exclusiveMin?: boolean;
}

/** OpenAI's temperature: 0 (which stands for faster-whisper's fallback schedule) to 1. */
const TEMPERATURE: NumberRule = { min: 0, max: 1 };
// The speaker counts' range (num_speakers, min_speakers, max_speakers).
const SPEAKER_COUNT: NumberRule = { min: 1, max: 32, integer: true };

/** faster-whisper's knobs that a request may set as extra form fields; README lists them. */
export const engineKnobs = {
  beam_size: { kind: 'number', rule: { min: 1, max: 20, integer: true }, doc: 'Beam search width; 1 is greedy.' },
  best_of: { kind: 'number', rule: { min: 1, max: 20, integer: true }, doc: 'Candidates when sampling above 0.' },
  patience: { kind: 'number', rule: { min: 0, max: 10, exclusiveMin: true }, doc: 'Beam search patience.' },
  no_speech_threshold: { kind: 'number', rule: { min: 0, max: 1 }, doc: 'Silence detection threshold.' },
  log_prob_threshold: {
    kind: 'number',
    rule: { min: -100, max: 0 },
    doc: 'Below this average log probability, retry at a higher temperature.',
  },
  compression_ratio_threshold: {
    kind: 'number',
    rule: { min: 0, max: 100, exclusiveMin: true },
    doc: 'Above this compression ratio, retry at a higher temperature.',
  },
  hallucination_silence_threshold: {
    kind: 'number',
    rule: { min: 0, max: 3600, exclusiveMin: true },
    doc: 'Skip silences longer than this many seconds when a hallucination is suspected (with word timestamps).',
  },
  batch_size: {
    kind: 'number',
    rule: { min: 1, max: 64, integer: true },
    doc: "Decode VAD chunks this many at a time (faster-whisper's BatchedInferencePipeline).",
  },
  vad_filter: { kind: 'boolean', doc: 'Drop non-speech with Silero VAD first.' },
  condition_on_previous_text: { kind: 'boolean', doc: 'Feed each window the text before it.' },
  without_timestamps: { kind: 'boolean', doc: 'Decode without timestamp tokens.' },
  hotwords: { kind: 'text', maxLength: 1000, doc: 'Words to favour (names, jargon).' },
  vad_parameters: { kind: 'vad', doc: 'Silero VAD options: a JSON object, or vad_parameters[key] fields.' },
} as const;

/** faster-whisper's VadOptions fields and their ranges. */
const VAD_PARAMETERS: Record<string, NumberRule> = {
  threshold: { min: 0, max: 1 },
  neg_threshold: { min: 0, max: 1 },
  min_speech_duration_ms: { min: 0, max: 3_600_000, integer: true },
  max_speech_duration_s: { min: 0, max: 86_400, exclusiveMin: true },
  min_silence_duration_ms: { min: 0, max: 3_600_000, integer: true },
  speech_pad_ms: { min: 0, max: 3_600_000, integer: true },
};

/** chunking_strategy's server_vad keys: their ranges, and the faster-whisper VAD option each one sets. */
const SERVER_VAD: Record<string, { rule: NumberRule; vadOption: string }> = {
  threshold: { rule: { min: 0, max: 1 }, vadOption: 'threshold' },
  prefix_padding_ms: { rule: { min: 0, max: 60_000, integer: true }, vadOption: 'speech_pad_ms' },
  silence_duration_ms: { rule: { min: 0, max: 60_000, integer: true }, vadOption: 'min_silence_duration_ms' },
};

/** A JSON Schema (draft 2020-12, the dialect of OpenAPI 3.1), for the API's description. */
export type JsonSchema = Record<string, unknown>;

function numberSchema(rule: NumberRule): JsonSchema {
  return {
    type: rule.integer ? 'integer' : 'number',
    ...(rule.exclusiveMin ? { exclusiveMinimum: rule.min } : { minimum: rule.min }),
    maximum: rule.max,
  };
}

interface OpenAIField {
  /** The routes that take it. */
  tasks: readonly Task[];
  /** Its schema, or the schema for each route (a field whose choices differ between them). */
  schema: JsonSchema | ((task: Task) => JsonSchema);
  description: string;
}

const BOTH: readonly Task[] = ['transcribe', 'translate'];
const TRANSCRIBE: readonly Task[] = ['transcribe'];

/**
 * OpenAI's form fields: the routes that take each one, and what it holds. The parser takes the names
 * (what is unknown) and the ranges and choices from here and from the tables above, and so does the
 * API's OpenAPI document (formFieldSchemas): one list feeds both, so they cannot drift apart.
 */
const OPENAI_FIELDS: Record<string, OpenAIField> = {
  file: {
    tasks: BOTH,
    schema: { type: 'string', format: 'binary' },
    description:
      'The audio: any format FFmpeg decodes (sniffed, never taken from the name), up to EARSHOT_MAX_UPLOAD_BYTES (25 MiB).',
  },
  model: {
    tasks: BOTH,
    schema: { type: 'string', examples: ['whisper-1'] },
    description:
      'An alias (whisper-1, gpt-4o-transcribe, gpt-4o-mini-transcribe stand for the default model), a bundled model, a models-directory name, a size name or a Hugging Face id.',
  },
  language: {
    tasks: TRANSCRIBE,
    schema: { type: 'string', examples: ['en'] },
    description: 'The spoken language: an ISO-639-1 code (or its English name). Detected when left out.',
  },
  prompt: {
    tasks: BOTH,
    schema: { type: 'string' },
    description: "Text to guide the model's style (its initial prompt).",
  },
  response_format: {
    tasks: BOTH,
    // Diarization is of transcriptions only, as OpenAI's translations have no diarized_json.
    schema: (task) => ({
      type: 'string',
      enum: task === 'translate' ? RESPONSE_FORMATS.filter((format) => format !== 'diarized_json') : RESPONSE_FORMATS,
      default: 'json',
    }),
    description: 'The format of the answer (diarized_json: who speaks when, transcriptions only).',
  },
  temperature: {
    tasks: BOTH,
    schema: { ...numberSchema(TEMPERATURE), default: 0 },
    description: "Sampling temperature; 0 means faster-whisper's fallback schedule 0.0, 0.2, … 1.0.",
  },
  timestamp_granularities: {
    tasks: TRANSCRIBE,
    schema: { type: 'array', items: { type: 'string', enum: GRANULARITIES }, default: ['segment'] },
    description: 'The timestamps verbose_json carries.',
  },
  stream: {
    tasks: BOTH,
    schema: { type: 'boolean', default: false },
    description:
      'Answer with server-sent events, for json, text, verbose_json and diarized_json. OpenAI streams transcriptions in json, text and diarized_json (segment events instead of deltas); earshot also streams verbose_json (with a segment event per segment) and translations.',
  },
  include: {
    tasks: TRANSCRIBE,
    schema: { type: 'array', items: { type: 'string', enum: ['logprobs'] } },
    description: "'logprobs': each token's log probability (with json, or in a stream).",
  },
  chunking_strategy: {
    tasks: TRANSCRIBE,
    schema: {
      anyOf: [
        { type: 'string', enum: ['auto'] },
        {
          type: 'object',
          properties: {
            type: { type: 'string', enum: ['server_vad'] },
            ...Object.fromEntries(Object.entries(SERVER_VAD).map(([key, { rule }]) => [key, numberSchema(rule)])),
          },
          required: ['type'],
          additionalProperties: false,
        },
      ],
    },
    description: "'auto', or server_vad with its parameters: faster-whisper's Silero VAD.",
  },
  known_speaker_names: {
    tasks: TRANSCRIBE,
    schema: { type: 'array', items: { type: 'string', minLength: 1, maxLength: 100 }, maxItems: MAX_KNOWN_SPEAKERS },
    description:
      'diarized_json (or srt/vtt with speaker_labels): the names of up to 4 known speakers, each with its clip in known_speaker_references[], in the same order.',
  },
  known_speaker_references: {
    tasks: TRANSCRIBE,
    schema: { type: 'array', items: { type: 'string' }, maxItems: MAX_KNOWN_SPEAKERS },
    description:
      "Each known speaker's clip: a base64 data URL (data:audio/wav;base64,...) of 2 to 10 s of audio, at most 1.5 MiB.",
  },
  num_speakers: {
    tasks: TRANSCRIBE,
    schema: numberSchema(SPEAKER_COUNT),
    description: 'earshot extension, with diarization: exactly this many speakers.',
  },
  min_speakers: {
    tasks: TRANSCRIBE,
    schema: numberSchema(SPEAKER_COUNT),
    description: 'earshot extension, with diarization: at least this many speakers.',
  },
  max_speakers: {
    tasks: TRANSCRIBE,
    schema: numberSchema(SPEAKER_COUNT),
    description: 'earshot extension, with diarization: at most this many speakers.',
  },
  speaker_labels: {
    tasks: TRANSCRIBE,
    schema: { type: 'boolean', default: false },
    description:
      'earshot extension: with srt or vtt, diarize and label each cue with its speaker ([A] text in srt, <v A> in vtt).',
  },
};

function knobSchema(knob: (typeof engineKnobs)[keyof typeof engineKnobs]): JsonSchema {
  switch (knob.kind) {
    case 'number':
      return numberSchema(knob.rule);
    case 'boolean':
      return { type: 'boolean' };
    case 'text':
      return { type: 'string', maxLength: knob.maxLength };
    case 'vad':
      return {
        type: 'object',
        properties: Object.fromEntries(Object.entries(VAD_PARAMETERS).map(([key, rule]) => [key, numberSchema(rule)])),
        additionalProperties: false,
      };
  }
}

/**
 * The form fields a route takes, in order, as JSON Schemas with their descriptions: OpenAI's, then
 * faster-whisper's knobs (an earshot extension). What unknownFields and the OpenAPI document both use.
 */
export function formFieldSchemas(task: Task): Record<string, JsonSchema> {
  const fields: Record<string, JsonSchema> = {};
  for (const [name, field] of Object.entries(OPENAI_FIELDS)) {
    if (!field.tasks.includes(task)) continue;
    const schema = typeof field.schema === 'function' ? field.schema(task) : field.schema;
    fields[name] = { ...schema, description: field.description };
  }
  for (const [name, knob] of Object.entries(engineKnobs)) {
    fields[name] = { ...knobSchema(knob), description: `faster-whisper (earshot extension): ${knob.doc}` };
  }
  return fields;
}

/** The form fields every request of the audio routes must send. */
export const REQUIRED_FIELDS: readonly string[] = ['file', 'model'];

/** `chunking_strategy[type]` → `chunking_strategy`: the object a bracketed field belongs to. */
function objectName(field: string): string {
  const bracket = field.indexOf('[');
  return bracket > 0 ? field.slice(0, bracket) : field;
}

/** The fields a request sent that this task does not know; the caller logs them. */
export function unknownFields(fields: FormFields, task: Task): string[] {
  const known = new Set(Object.keys(formFieldSchemas(task)));
  return [...fields.keys()].filter((name) => !known.has(objectName(name)));
}

function invalid(param: string, message: string): ApiError {
  return new ApiError('invalid_value', { detail: message }, { param });
}

function single(fields: FormFields, name: string): string | undefined {
  const values = fields.get(name);
  if (!values || values.length === 0) return undefined;
  if (values.length > 1) throw invalid(name, `The field '${name}' was sent ${values.length} times; send it once.`);
  return values[0];
}

// A plain decimal number, with an optional exponent: what JSON allows and what the SDKs print for a
// float (JavaScript's String(1e-7) is '1e-7', Python's str(0.00001) is '1e-05'). Number() alone
// would also take '0x14', '0b1', ' 5', '+5' and 'Infinity'.
const DECIMAL = /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/;

function parseNumber(raw: string, param: string, rule: NumberRule): number {
  const value = DECIMAL.test(raw) ? Number(raw) : NaN;
  const tooLow = rule.exclusiveMin ? value <= rule.min : value < rule.min;
  if (!Number.isFinite(value) || tooLow || value > rule.max || (rule.integer && !Number.isInteger(value))) {
    const kind = rule.integer ? 'a whole number' : 'a number';
    const range = rule.exclusiveMin
      ? `greater than ${rule.min} and at most ${rule.max}`
      : `from ${rule.min} to ${rule.max}`;
    throw invalid(param, `Invalid ${param} '${raw}': use ${kind} ${range}.`);
  }
  return value;
}

function parseBoolean(raw: string, param: string): boolean {
  const value = raw.trim().toLowerCase();
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw invalid(param, `Invalid ${param} '${raw}': use true or false.`);
}

/**
 * An object field: a JSON string (`vad_parameters={"threshold":0.4}`) or bracketed fields
 * (`vad_parameters[threshold]=0.4`). Values are strings or JSON scalars.
 */
function objectField(fields: FormFields, name: string): Record<string, unknown> | string | undefined {
  const whole = single(fields, name);
  const prefix = `${name}[`;
  const bracketed = [...fields.keys()].filter((key) => key.startsWith(prefix) && key.endsWith(']'));
  if (whole !== undefined && bracketed.length > 0) {
    throw invalid(name, `Send ${name} either as one value or as ${name}[key] fields, not both.`);
  }
  if (bracketed.length > 0) {
    return Object.fromEntries(bracketed.map((key) => [key.slice(prefix.length, -1), single(fields, key)]));
  }
  if (whole === undefined || !whole.trim().startsWith('{')) return whole;
  try {
    const parsed: unknown = JSON.parse(whole);
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
      return parsed as Record<string, unknown>;
    }
  } catch {
    // reported below as not an object
  }
  throw invalid(name, `Invalid ${name}: send a JSON object.`);
}

/** A value from a client's JSON, for a message: strings quoted, anything else by its JSON type only. */
function describe(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function objectNumber(value: unknown, param: string, rule: NumberRule): number {
  if (typeof value === 'number') return parseNumber(String(value), param, rule);
  if (typeof value === 'string') return parseNumber(value, param, rule);
  throw invalid(param, `Invalid ${param}: use a number.`);
}

function parseVadParameters(fields: FormFields): Record<string, number> | undefined {
  const raw = objectField(fields, 'vad_parameters');
  if (raw === undefined) return undefined;
  if (typeof raw === 'string') throw invalid('vad_parameters', 'Invalid vad_parameters: send a JSON object.');
  const parameters: Record<string, number> = {};
  for (const [key, value] of Object.entries(raw)) {
    // Own keys only: 'constructor' or 'toString' must not find Object.prototype's.
    const rule = Object.hasOwn(VAD_PARAMETERS, key) ? VAD_PARAMETERS[key] : undefined;
    if (!rule) {
      throw invalid(
        'vad_parameters',
        `Unknown vad_parameters key '${key}': use ${Object.keys(VAD_PARAMETERS).join(', ')}.`,
      );
    }
    parameters[key] = objectNumber(value, `vad_parameters.${key}`, rule);
  }
  return parameters;
}

/** chunking_strategy: "auto", or server_vad with OpenAI's parameters, mapped onto faster-whisper's VAD. */
function parseChunkingStrategy(fields: FormFields, options: TranscribeOptions): void {
  const raw = objectField(fields, 'chunking_strategy');
  if (raw === undefined || raw === '') return;
  if (raw === 'auto') {
    options.vad_filter = true;
    return;
  }
  if (typeof raw === 'string' || raw.type !== 'server_vad') {
    throw invalid('chunking_strategy', "Invalid chunking_strategy: use 'auto' or an object with type 'server_vad'.");
  }
  const vad: Record<string, number> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (key === 'type') continue;
    const known = Object.hasOwn(SERVER_VAD, key) ? SERVER_VAD[key] : undefined;
    if (!known) {
      throw invalid(
        'chunking_strategy',
        `Unknown chunking_strategy key '${key}': use type, ${Object.keys(SERVER_VAD).join(', ')}.`,
      );
    }
    vad[known.vadOption] = objectNumber(value, `chunking_strategy.${key}`, known.rule);
  }
  options.vad_filter = true;
  options.vad_parameters = vad;
}

function parseResponseFormat(raw: string | undefined, task: Task): ResponseFormat {
  if (raw === undefined || raw === '') return 'json';
  if (raw === 'diarized_json' && task === 'translate') {
    throw new ApiError('unsupported_value', { asked: 'diarization' }, { param: 'response_format' });
  }
  if (!(RESPONSE_FORMATS as readonly string[]).includes(raw)) {
    const supported = RESPONSE_FORMATS.map((format) => `'${format}'`);
    throw invalid(
      'response_format',
      `Invalid value: '${raw}'. Supported values are: ${supported.slice(0, -1).join(', ')}, and ${supported.at(-1)}.`,
    );
  }
  return raw as ResponseFormat;
}

function parseTemperature(raw: string | undefined): number[] {
  if (raw === undefined || raw.trim() === '') return FALLBACK_TEMPERATURES;
  const value = parseNumber(raw, 'temperature', TEMPERATURE);
  return value === 0 ? FALLBACK_TEMPERATURES : [value];
}

/** Values may come one per field (`timestamp_granularities[]=word`) or as a JSON array string. */
function parseGranularities(values: readonly string[] | undefined): Set<Granularity> | undefined {
  if (!values || values.length === 0) return undefined;
  const granularities = new Set<Granularity>();
  for (const value of values) {
    let items: unknown = value;
    if (value.trim().startsWith('[')) {
      try {
        items = JSON.parse(value);
      } catch {
        items = value;
      }
    }
    for (const item of Array.isArray(items) ? (items as unknown[]) : [items]) {
      // Never String(item): a nested array or an object with its own toString may not convert.
      if (typeof item !== 'string' || !(GRANULARITIES as readonly string[]).includes(item.trim())) {
        throw invalid(
          'timestamp_granularities',
          `Invalid timestamp_granularities value ${describe(item)}: use 'word' and/or 'segment'.`,
        );
      }
      granularities.add(item.trim() as Granularity);
    }
  }
  return granularities;
}

function parseInclude(values: readonly string[] | undefined): boolean {
  if (!values || values.length === 0) return false;
  for (const value of values) {
    if (value.trim() !== 'logprobs') throw invalid('include', `Invalid include value '${value}': only 'logprobs'.`);
  }
  return true;
}

function parseKnobs(fields: FormFields, options: TranscribeOptions): void {
  for (const [name, knob] of Object.entries(engineKnobs)) {
    if (knob.kind === 'vad') {
      const parameters = parseVadParameters(fields);
      if (parameters) options.vad_parameters = { ...options.vad_parameters, ...parameters };
      continue;
    }
    const raw = single(fields, name);
    if (raw === undefined) continue;
    const target = options as Record<string, unknown>;
    if (knob.kind === 'number') {
      target[name] = parseNumber(raw, name, knob.rule);
    } else if (knob.kind === 'boolean') {
      target[name] = parseBoolean(raw, name);
    } else if (raw.length > knob.maxLength) {
      throw invalid(name, `${name} is too long: at most ${knob.maxLength} characters.`);
    } else if (raw !== '') {
      target[name] = raw;
    }
  }
}

/** Validates the form fields of a request; throws an ApiError naming the first bad field. */
export function parseTranscriptionRequest(fields: FormFields, task: Task): TranscriptionRequest {
  const model = single(fields, 'model')?.trim();
  if (!model) {
    throw new ApiError('missing_model', { param: 'model' });
  }
  const responseFormat = parseResponseFormat(single(fields, 'response_format'), task);
  const options: TranscribeOptions = { task, temperature: parseTemperature(single(fields, 'temperature')) };

  const prompt = single(fields, 'prompt');
  if (prompt !== undefined && prompt !== '') options.initial_prompt = prompt;

  // Translations stream too, as an earshot extension (OpenAI's have no stream field).
  const rawStream = single(fields, 'stream');
  const stream = rawStream !== undefined && rawStream !== '' && parseBoolean(rawStream, 'stream');
  if (stream && !STREAMABLE_FORMATS.includes(responseFormat)) {
    throw new ApiError('unsupported_value', { asked: 'stream', responseFormat }, { param: 'response_format' });
  }
  let includeLogprobs = false;
  let asked: Set<Granularity> | undefined;
  if (task === 'transcribe') {
    const language = single(fields, 'language');
    if (language !== undefined && language.trim() !== '') {
      const code = normaliseLanguage(language);
      if (!code) {
        throw new ApiError('invalid_language', { language }, { param: 'language' });
      }
      options.language = code;
    }
    includeLogprobs = parseInclude(fields.get('include'));
    if (includeLogprobs && responseFormat !== 'json') {
      throw new ApiError('unsupported_value', { asked: 'logprobs', responseFormat }, { param: 'include' });
    }
    if (includeLogprobs) options.logprobs = true;
    parseChunkingStrategy(fields, options);
    asked = parseGranularities(fields.get('timestamp_granularities'));
    if (asked && responseFormat !== 'verbose_json') {
      throw invalid('timestamp_granularities', "timestamp_granularities needs response_format 'verbose_json'.");
    }
  }
  parseKnobs(fields, options);

  const speakerReferences = task === 'transcribe' ? parseDiarization(fields, responseFormat, options) : [];

  const granularities: ReadonlySet<Granularity> = asked ?? new Set(['segment']);
  if (granularities.has('word')) options.word_timestamps = true;
  return { model, responseFormat, granularities, stream, includeLogprobs, options, speakerReferences };
}

// A data URL of audio: data:[<media type>][;parameters];base64,<data>
const DATA_URL = /^data:([^,;]*)((?:;[^,;]*)*);base64,(.*)$/s;
const BASE64 = /^[A-Za-z0-9+/\s]*={0,2}\s*$/;

/** One reference clip: a base64 data URL of audio, decoded (whether it is audio of 2–10 s, the worker says). */
function parseReference(raw: string, index: number): Buffer {
  const param = 'known_speaker_references';
  const match = DATA_URL.exec(raw.trim());
  const mediaType = match?.[1]?.toLowerCase() ?? '';
  if (!match || !BASE64.test(match[3] ?? '')) {
    throw invalid(param, `known_speaker_references[${index}] is not a base64 data URL (data:audio/wav;base64,...).`);
  }
  if (
    mediaType !== '' &&
    !mediaType.startsWith('audio/') &&
    !mediaType.startsWith('video/') &&
    mediaType !== 'application/octet-stream'
  ) {
    throw invalid(param, `known_speaker_references[${index}] has media type '${mediaType}': send audio.`);
  }
  const audio = Buffer.from(match[3] ?? '', 'base64');
  if (audio.length === 0) throw invalid(param, `known_speaker_references[${index}] holds no data.`);
  return audio;
}

function speakerCount(fields: FormFields, name: string): number | undefined {
  const raw = single(fields, name);
  return raw === undefined || raw.trim() === '' ? undefined : parseNumber(raw, name, SPEAKER_COUNT);
}

/**
 * diarized_json, or srt/vtt with speaker_labels=true: the worker's diarize option from the speaker counts
 * and the known speakers (names with their reference clips, as many of each, at most four).
 */
function parseDiarization(fields: FormFields, format: ResponseFormat, options: TranscribeOptions): SpeakerReference[] {
  const rawLabels = single(fields, 'speaker_labels');
  const labels = rawLabels !== undefined && rawLabels !== '' && parseBoolean(rawLabels, 'speaker_labels');
  if (labels && format !== 'srt' && format !== 'vtt') {
    throw invalid(
      'speaker_labels',
      "speaker_labels needs response_format 'srt' or 'vtt' (diarized_json always has them).",
    );
  }
  const names = fields.get('known_speaker_names') ?? [];
  const references = fields.get('known_speaker_references') ?? [];
  const counts = {
    num_speakers: speakerCount(fields, 'num_speakers'),
    min_speakers: speakerCount(fields, 'min_speakers'),
    max_speakers: speakerCount(fields, 'max_speakers'),
  };
  const diarized = format === 'diarized_json' || labels;
  if (!diarized) {
    const stray = [
      ...(names.length > 0 ? ['known_speaker_names'] : []),
      ...(references.length > 0 ? ['known_speaker_references'] : []),
      ...Object.entries(counts)
        .filter(([, value]) => value !== undefined)
        .map(([name]) => name),
    ];
    const first = stray[0];
    if (first !== undefined) {
      throw invalid(first, `${first} needs response_format 'diarized_json' (or srt/vtt with speaker_labels=true).`);
    }
    return [];
  }
  if (names.length !== references.length) {
    const param = names.length > references.length ? 'known_speaker_references' : 'known_speaker_names';
    throw invalid(
      param,
      `known_speaker_names[] and known_speaker_references[] must have as many entries (${names.length} names, ${references.length} references).`,
    );
  }
  if (names.length > MAX_KNOWN_SPEAKERS) {
    throw invalid('known_speaker_names', `At most ${MAX_KNOWN_SPEAKERS} known speakers (${names.length} given).`);
  }
  const seen = new Set<string>();
  for (const [index, name] of names.entries()) {
    if (name.trim() === '' || name.length > 100) {
      throw invalid('known_speaker_names', `known_speaker_names[${index}] must be 1 to 100 characters.`);
    }
    if (seen.has(name)) throw invalid('known_speaker_names', `known_speaker_names[${index}] '${name}' is given twice.`);
    seen.add(name);
  }
  const { num_speakers, min_speakers, max_speakers } = counts;
  if (min_speakers !== undefined && max_speakers !== undefined && min_speakers > max_speakers) {
    throw invalid('min_speakers', `min_speakers (${min_speakers}) is more than max_speakers (${max_speakers}).`);
  }
  options.diarize = {
    ...(num_speakers !== undefined && { num_speakers }),
    ...(min_speakers !== undefined && { min_speakers }),
    ...(max_speakers !== undefined && { max_speakers }),
  };
  return names.map((name, index) => ({ name, audio: parseReference(references[index] ?? '', index) }));
}
