// The fields of a transcription or translation request, as OpenAI defines them, validated and
// turned into engine options. Multipart fields arrive as strings in any order; `name[]` and `name`
// are the same field.
import { ApiError } from '../errors.ts';
import type { TranscribeOptions } from '../engine/messages.ts';
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
  options: TranscribeOptions;
}

const RESPONSE_FORMATS: readonly ResponseFormat[] = ['json', 'text', 'srt', 'vtt', 'verbose_json'];
const GRANULARITIES: readonly Granularity[] = ['word', 'segment'];
// faster-whisper's own temperature fallback schedule, which OpenAI's temperature=0 stands for.
const FALLBACK_TEMPERATURES = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0];

const fieldsByTask: Record<Task, readonly string[]> = {
  transcribe: [
    'file',
    'model',
    'language',
    'prompt',
    'response_format',
    'temperature',
    'timestamp_granularities',
    'stream',
    'include',
    'chunking_strategy',
  ],
  translate: ['file', 'model', 'prompt', 'response_format', 'temperature'],
};

/** The fields a request sent that this task does not know; the caller logs them. */
export function unknownFields(fields: FormFields, task: Task): string[] {
  return [...fields.keys()].filter((name) => !fieldsByTask[task].includes(name));
}

function single(fields: FormFields, name: string): string | undefined {
  const values = fields.get(name);
  if (!values || values.length === 0) return undefined;
  if (values.length > 1) {
    throw new ApiError('invalid_value', `The field '${name}' was sent ${values.length} times; send it once.`, name);
  }
  return values[0];
}

function parseResponseFormat(raw: string | undefined): ResponseFormat {
  if (raw === undefined || raw === '') return 'json';
  if (raw === 'diarized_json') {
    throw new ApiError(
      'unsupported_value',
      "response_format 'diarized_json' needs a diarization model, which earshot does not serve yet.",
      'response_format',
    );
  }
  if (!(RESPONSE_FORMATS as readonly string[]).includes(raw)) {
    throw new ApiError(
      'invalid_value',
      `Invalid response_format '${raw}': use one of ${RESPONSE_FORMATS.join(', ')}.`,
      'response_format',
    );
  }
  return raw as ResponseFormat;
}

function parseTemperature(raw: string | undefined): number[] {
  if (raw === undefined || raw.trim() === '') return FALLBACK_TEMPERATURES;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0 || value > 1) {
    throw new ApiError('invalid_value', `Invalid temperature '${raw}': use a number from 0 to 1.`, 'temperature');
  }
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
    for (const item of Array.isArray(items) ? items : [items]) {
      if (typeof item !== 'string' || !(GRANULARITIES as readonly string[]).includes(item.trim())) {
        throw new ApiError(
          'invalid_value',
          `Invalid timestamp_granularities value '${String(item)}': use 'word' and/or 'segment'.`,
          'timestamp_granularities',
        );
      }
      granularities.add(item.trim() as Granularity);
    }
  }
  return granularities;
}

function parseBoolean(raw: string | undefined, name: string): boolean {
  if (raw === undefined) return false;
  const value = raw.trim().toLowerCase();
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0' || value === '') return false;
  throw new ApiError('invalid_value', `Invalid ${name} '${raw}': use true or false.`, name);
}

/** Validates the form fields of a request; throws an ApiError naming the first bad field. */
export function parseTranscriptionRequest(fields: FormFields, task: Task): TranscriptionRequest {
  const model = single(fields, 'model')?.trim();
  if (!model) {
    throw new ApiError('missing_required_parameter', "Missing required parameter: 'model'.", 'model');
  }
  const responseFormat = parseResponseFormat(single(fields, 'response_format'));
  const options: TranscribeOptions = { task, temperature: parseTemperature(single(fields, 'temperature')) };

  const prompt = single(fields, 'prompt');
  if (prompt !== undefined && prompt !== '') options.initial_prompt = prompt;

  if (task === 'transcribe') {
    const language = single(fields, 'language');
    if (language !== undefined && language.trim() !== '') {
      const code = normaliseLanguage(language);
      if (!code) {
        throw new ApiError(
          'invalid_value',
          `Invalid language '${language}': use an ISO-639-1 code such as 'en', 'de' or 'fr'.`,
          'language',
        );
      }
      options.language = code;
    }
    if (parseBoolean(single(fields, 'stream'), 'stream')) {
      throw new ApiError('unsupported_value', 'stream=true is not supported by earshot yet.', 'stream');
    }
    if (fields.has('include')) {
      throw new ApiError('unsupported_value', 'include[] (logprobs) is not supported by earshot yet.', 'include');
    }
    const chunking = single(fields, 'chunking_strategy');
    if (chunking !== undefined && chunking !== 'auto') {
      throw new ApiError(
        'unsupported_value',
        "Only chunking_strategy 'auto' is supported by earshot yet.",
        'chunking_strategy',
      );
    }
    if (chunking === 'auto') options.vad_filter = true;
  }

  const asked = task === 'transcribe' ? parseGranularities(fields.get('timestamp_granularities')) : undefined;
  if (asked && responseFormat !== 'verbose_json') {
    throw new ApiError(
      'invalid_value',
      "timestamp_granularities needs response_format 'verbose_json'.",
      'timestamp_granularities',
    );
  }
  const granularities: ReadonlySet<Granularity> = asked ?? new Set(['segment']);
  if (granularities.has('word')) options.word_timestamps = true;

  return { model, responseFormat, granularities, options };
}
