// What `earshot transcribe` writes for a file, in each response format. The CLI asks every file as a
// verbose_json stream (its segment events drive the progress bar), whose done event is the whole
// verbose_json answer; the other formats are made from it as the server makes them, with the
// server's own subtitle renderer, so a file is the same as the server's answer in that format.
import type { ResponseFormat } from '../openai/formatters.ts';
import { renderSubtitles } from '../openai/formatters.ts';

/** A verbose_json answer: a stream's done event without its `type`. */
export interface VerboseTranscript {
  task: string;
  language: string;
  duration: number;
  text: string;
  segments: { start: number; end: number; text: string }[];
  usage?: { type: 'duration'; seconds: number };
}

/** What the CLI writes: every format but diarized_json (a verbose_json answer has no speakers). */
export type OutputFormat = Exclude<ResponseFormat, 'diarized_json'>;

export const FORMATS: readonly OutputFormat[] = ['text', 'json', 'verbose_json', 'srt', 'vtt'];

export function outputExtension(format: OutputFormat): string {
  return { json: 'json', verbose_json: 'json', text: 'txt', srt: 'srt', vtt: 'vtt' }[format];
}

/**
 * The file's content in `format`. verbose_json is written back as it came, fields in the server's
 * order; json is OpenAI's `{text, usage}` (translations: `{text}`).
 */
export function renderOutput(verbose: VerboseTranscript, format: OutputFormat): string {
  switch (format) {
    case 'verbose_json':
      return JSON.stringify(verbose);
    case 'json':
      return JSON.stringify({ text: verbose.text, ...(verbose.usage && { usage: verbose.usage }) });
    case 'text':
      return `${verbose.text}\n`;
    case 'srt':
    case 'vtt':
      return renderSubtitles(verbose.segments, format);
  }
}
