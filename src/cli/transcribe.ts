// `earshot transcribe`: files sent N at a time, each as a verbose_json stream whose segment events
// (their end times, out of the audio's duration, which the stream's head carries) drive its progress;
// outputs written as each file finishes; a summary at the end.
import { createReadStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { APIConnectionError, APIError, type OpenAI } from 'openai';
import type { TranscriptionStreamEvent } from 'openai/resources/audio/transcriptions';
import { AUDIO_DURATION_HEADER } from '../openai/stream-events.ts';
import type { AudioInput } from './inputs.ts';
import { outputExtension, renderOutput, type OutputFormat, type VerboseTranscript } from './outputs.ts';
import { formatSeconds, type FileProgress, type ProgressDisplay } from './progress.ts';

export interface TranscribeSettings {
  model: string;
  language?: string;
  task: 'transcribe' | 'translate';
  format: OutputFormat;
  /** Write each output here; without it, outputs go to `write` (stdout). */
  out?: string;
  concurrency: number;
}

export type FileOutcome =
  | { input: AudioInput; ok: true; audioSeconds: number; output: string | undefined }
  | { input: AudioInput; ok: false; reason: string };

export interface RunSummary {
  outcomes: FileOutcome[];
  wallSeconds: number;
}

/** Why a file failed, as the server said it (status, code, message), or why it could not be asked. */
export function failureReason(error: unknown): string {
  if (error instanceof APIConnectionError) {
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
    return `the server could not be reached (${error.message}${cause})`;
  }
  if (error instanceof APIError) {
    const body = error.error as { message?: unknown } | undefined;
    // Without an OpenAI error body (not earshot answering?), the SDK's message says what came back.
    if (typeof body?.message !== 'string') return error.message;
    return [error.status, error.code ? `${error.code}:` : undefined, body.message].filter(Boolean).join(' ');
  }
  return error instanceof Error ? error.message : String(error);
}

type EventStream = AsyncIterable<TranscriptionStreamEvent>;

/** One file as a verbose_json stream; translations stream through the same SDK call, asked to parse events. */
async function openStream(
  client: OpenAI,
  input: AudioInput,
  settings: TranscribeSettings,
): Promise<{ events: EventStream; duration: number }> {
  const common = {
    file: createReadStream(input.path),
    model: settings.model,
    response_format: 'verbose_json' as const,
    stream: true as const,
  };
  const { data, response } =
    settings.task === 'transcribe'
      ? await client.audio.transcriptions
          .create({ ...common, ...(settings.language !== undefined && { language: settings.language }) })
          .withResponse()
      : // OpenAI's translations do not stream, so the SDK's types say nothing of it; earshot's do.
        ((await client.audio.translations.create(common, { stream: true }).withResponse()) as unknown as {
          data: EventStream;
          response: Response;
        });
  return { events: data, duration: Number(response.headers.get(AUDIO_DURATION_HEADER)) };
}

async function transcribeOne(
  client: OpenAI,
  input: AudioInput,
  settings: TranscribeSettings,
  progress: FileProgress,
  write: (text: string) => void,
): Promise<FileOutcome> {
  const started = performance.now();
  try {
    const { events, duration } = await openStream(client, input, settings);
    progress.decoding(duration);
    let verbose: VerboseTranscript | undefined;
    for await (const event of events) {
      if (event.type === 'transcript.text.segment') progress.decoded(event.end);
      else if (event.type === 'transcript.text.done') {
        const { type: _type, ...body } = event as unknown as VerboseTranscript & { type: string };
        verbose = body;
      }
    }
    if (!verbose) throw new Error('the stream ended without its done event');
    const content = renderOutput(verbose, settings.format);
    let output: string | undefined;
    if (settings.out === undefined) {
      write(content);
    } else {
      output = path.join(settings.out, `${input.outputStem}.${outputExtension(settings.format)}`);
      await mkdir(path.dirname(output), { recursive: true });
      await writeFile(output, content);
    }
    const seconds = (performance.now() - started) / 1000;
    const speed = seconds > 0 ? ` (${(verbose.duration / seconds).toFixed(1)}× real time)` : '';
    progress.done(`done in ${formatSeconds(seconds)}${speed}${output ? ` → ${output}` : ''}`);
    return { input, ok: true, audioSeconds: verbose.duration, output };
  } catch (error) {
    const reason = failureReason(error);
    progress.failed(reason);
    return { input, ok: false, reason };
  }
}

/**
 * Transcribes every input, `concurrency` at a time, in order of the list. Without --out, each
 * output goes to `write` whole as its file finishes (with a `==> name <==` line first when there
 * are several, as `head` does).
 */
export async function transcribeAll(
  client: OpenAI,
  inputs: readonly AudioInput[],
  settings: TranscribeSettings,
  display: ProgressDisplay,
  write: (text: string) => void = (text) => process.stdout.write(text),
): Promise<RunSummary> {
  const started = performance.now();
  const outcomes: FileOutcome[] = new Array<FileOutcome>(inputs.length);
  let next = 0;
  const header = inputs.length > 1;
  const worker = async () => {
    while (next < inputs.length) {
      const index = next++;
      const input = inputs[index];
      if (!input) break;
      const toStdout = (text: string) => write(header ? `==> ${input.name} <==\n${text}` : text);
      outcomes[index] = await transcribeOne(client, input, settings, display.file(input.name), toStdout);
    }
  };
  await Promise.all(Array.from({ length: Math.min(settings.concurrency, inputs.length) }, worker));
  return { outcomes, wallSeconds: (performance.now() - started) / 1000 };
}

/** The lines that close a run: counts, audio and wall time, speed; then each failure with its reason. */
export function summaryLines({ outcomes, wallSeconds }: RunSummary): string[] {
  const done = outcomes.filter((outcome) => outcome.ok);
  const failed = outcomes.filter((outcome) => !outcome.ok);
  const audio = done.reduce((sum, outcome) => sum + outcome.audioSeconds, 0);
  const speed = wallSeconds > 0 ? (audio / wallSeconds).toFixed(1) : '-';
  const files = (count: number) => `${count} file${count === 1 ? '' : 's'}`;
  return [
    `${files(done.length)} of ${outcomes.length} transcribed: ${formatSeconds(audio)} of audio in ${formatSeconds(wallSeconds)} (${speed}× real time)` +
      (failed.length > 0 ? `; ${files(failed.length)} failed:` : '.'),
    ...failed.map((outcome) => `  ${outcome.input.name}: ${outcome.ok ? '' : outcome.reason}`),
  ];
}
