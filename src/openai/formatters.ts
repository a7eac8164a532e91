// Renders a finished Transcript in the response formats of OpenAI's audio transcription API.
import type { EngineSegment, TokenLogprob, Transcript } from '../engine/index.ts';
import { languageName } from './languages.ts';

export type ResponseFormat = 'json' | 'text' | 'srt' | 'vtt' | 'verbose_json' | 'diarized_json';

export interface FormatOptions {
  granularities: ReadonlySet<'word' | 'segment'>;
  /** include[]=logprobs: the json format carries every token's log probability. */
  includeLogprobs?: boolean;
}

export interface RenderedBody {
  contentType: string;
  body: string;
}

const JSON_TYPE = 'application/json; charset=utf-8';
const TEXT_TYPE = 'text/plain; charset=utf-8';
// OpenAI sends vtt as text/plain too (recorded api.openai.com traffic).
const VTT_TYPE = 'text/plain; charset=utf-8';

/** The whole transcript as one string: faster-whisper's segment texts carry their own leading space. */
export function transcriptText(transcript: Transcript): string {
  return transcript.segments
    .map((segment) => segment.text)
    .join('')
    .trim();
}

/** OpenAI bills transcription by whole seconds, so it reports the duration rounded up to an integer. */
export function usageOf(transcript: Transcript): { type: 'duration'; seconds: number } {
  return { type: 'duration', seconds: Math.ceil(transcript.info.duration) };
}

/** OpenAI's translations carry no usage (recorded api.openai.com traffic); transcriptions do. */
export function usageField(transcript: Transcript): { usage?: ReturnType<typeof usageOf> } {
  return transcript.task === 'transcribe' ? { usage: usageOf(transcript) } : {};
}

/** Every token's log probability, in order (include[]=logprobs). */
export function transcriptLogprobs(transcript: Transcript): TokenLogprob[] {
  return transcript.segments.flatMap((segment) => segment.logprobs ?? []);
}

export function renderTranscript(transcript: Transcript, format: ResponseFormat, options: FormatOptions): RenderedBody {
  switch (format) {
    case 'json':
      return {
        contentType: JSON_TYPE,
        body: JSON.stringify({
          text: transcriptText(transcript),
          ...(options.includeLogprobs && { logprobs: transcriptLogprobs(transcript) }),
          ...usageField(transcript),
        }),
      };
    case 'text':
      return { contentType: TEXT_TYPE, body: `${transcriptText(transcript)}\n` };
    case 'srt':
    case 'vtt':
      return {
        contentType: format === 'srt' ? TEXT_TYPE : VTT_TYPE,
        body: renderSubtitles(transcript.segments, format),
      };
    case 'diarized_json':
      return { contentType: JSON_TYPE, body: JSON.stringify(diarizedJson(transcript)) };
    case 'verbose_json':
      return { contentType: JSON_TYPE, body: JSON.stringify(verboseJson(transcript, options)) };
  }
}

/**
 * What a subtitle cue needs of a segment: the engine's, or verbose_json's (the CLI renders from those);
 * a diarized one's speaker and words give a cue per speaker.
 */
export type TimedText = Pick<EngineSegment, 'start' | 'end' | 'text'> &
  Partial<Pick<EngineSegment, 'speaker' | 'words'>>;

interface Cue {
  start: number;
  end: number;
  text: string;
  speaker?: string;
}

/** A stretch of one speaker: a segment, or the part of it a speaker says (diarized transcripts). */
export interface SpeakerSegment {
  start: number;
  end: number;
  text: string;
  speaker: string;
}

/**
 * A diarized segment split where its words' speaker changes (the worker labels every word); each part's
 * text is its words put together, so the parts' texts put together are the segment's. A segment without
 * labelled words stays whole.
 */
export function speakerSegments(segment: TimedText): SpeakerSegment[] {
  const words = segment.words ?? [];
  if (words.length === 0 || words.some((word) => word.speaker === undefined)) {
    return [{ start: segment.start, end: segment.end, text: segment.text, speaker: segment.speaker ?? 'A' }];
  }
  const parts: SpeakerSegment[] = [];
  for (const word of words) {
    const speaker = word.speaker ?? 'A';
    const last = parts.at(-1);
    if (last && last.speaker === speaker) {
      last.text += word.word;
      last.end = word.end;
    } else {
      parts.push({ start: word.start, end: word.end, text: word.word, speaker });
    }
  }
  return parts;
}

/** OpenAI's ids of diarized segments and segment events ("seg_0", … in recorded streams). */
export function segmentEventId(index: number): string {
  return `seg_${index}`;
}

function diarizedJson(transcript: Transcript): Record<string, unknown> {
  return {
    task: 'transcribe',
    duration: transcript.info.duration,
    text: transcriptText(transcript),
    segments: transcript.segments.flatMap(speakerSegments).map((part, index) => ({
      type: 'transcript.text.segment',
      text: part.text,
      speaker: part.speaker,
      start: part.start,
      end: part.end,
      id: segmentEventId(index),
    })),
    usage: usageOf(transcript),
  };
}

/**
 * The segments that produce a cue, with subtitle-safe text. A blank line ends a cue in srt and vtt,
 * so blank lines inside a text are dropped (its remaining lines kept). A segment left with no text
 * is skipped: an srt cue without text is malformed, and an empty cue shows nothing anyway.
 */
function cuesOf(segments: readonly TimedText[]): Cue[] {
  const cues: Cue[] = [];
  // With speakers (speaker_labels=true), a cue per speaker's part of a segment.
  const parts = segments.flatMap((segment): { start: number; end: number; text: string; speaker?: string }[] =>
    segment.speaker === undefined
      ? [{ start: segment.start, end: segment.end, text: segment.text }]
      : speakerSegments(segment),
  );
  for (const part of parts) {
    const text = part.text
      .trim()
      .split(/\r\n|\r|\n/)
      .filter((line) => line.trim() !== '')
      .join('\n');
    if (text === '') continue;
    const speaker = part.speaker;
    cues.push({ start: part.start, end: part.end, text, ...(speaker !== undefined && { speaker }) });
  }
  return cues;
}

/** srt or vtt, from the segments' times and texts. */
export function renderSubtitles(segments: readonly TimedText[], format: 'srt' | 'vtt'): string {
  return format === 'srt' ? renderSrt(segments) : renderVtt(segments);
}

function renderSrt(segments: readonly TimedText[]): string {
  return cuesOf(segments)
    .map(
      (cue, index) =>
        `${index + 1}\n${timestamp(cue.start, ',')} --> ${timestamp(cue.end, ',')}\n${cue.speaker !== undefined ? `[${cue.speaker}] ` : ''}${cue.text}\n\n`,
    )
    .join('');
}

function renderVtt(segments: readonly TimedText[]): string {
  const cues = cuesOf(segments).map(
    // WebVTT's voice span names the speaker.
    (cue) =>
      `${timestamp(cue.start, '.')} --> ${timestamp(cue.end, '.')}\n${cue.speaker !== undefined ? `<v ${vttVoice(cue.speaker)}>` : ''}${cue.text}\n\n`,
  );
  return `WEBVTT\n\n${cues.join('')}`;
}

/** A voice span's annotation ends at '>' and cannot hold a line break or '&' / '<' unescaped. */
function vttVoice(name: string): string {
  return name
    .replace(/[\r\n]+/g, ' ')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;');
}

/**
 * HH:MM:SS<separator>mmm. The seconds are rounded to whole milliseconds before being split, so a
 * carry propagates into the seconds, minutes and hours (59.9996 s is 00:01:00,000, never 00:00:59,1000).
 * Hours are not capped: a long recording shows 100:00:00,000 rather than wrapping around.
 */
function timestamp(seconds: number, separator: ',' | '.'): string {
  const totalMs = Math.max(0, Math.round(seconds * 1000));
  const ms = totalMs % 1000;
  const totalSeconds = (totalMs - ms) / 1000;
  const s = totalSeconds % 60;
  const m = Math.floor(totalSeconds / 60) % 60;
  const h = Math.floor(totalSeconds / 3600);
  return `${pad(h, 2)}:${pad(m, 2)}:${pad(s, 2)}${separator}${pad(ms, 3)}`;
}

function pad(value: number, width: number): string {
  return String(value).padStart(width, '0');
}

/** A segment's words as verbose_json has them: faster-whisper's carry a leading space (the token's), OpenAI's are bare. */
export function verboseWords(segment: EngineSegment): { word: string; start: number; end: number }[] {
  return (segment.words ?? []).map((word) => ({ word: word.word.trim(), start: word.start, end: word.end }));
}

export function verboseJson(transcript: Transcript, options: FormatOptions): Record<string, unknown> {
  // Keys are assigned in OpenAI's order, which JSON.stringify preserves.
  const body: Record<string, unknown> = {
    task: transcript.task,
    // A translation's language is that of its output, which is always English.
    language: transcript.task === 'translate' ? 'english' : languageName(transcript.info.language),
    duration: transcript.info.duration,
    text: transcriptText(transcript),
  };
  if (options.granularities.has('segment')) {
    // OpenAI numbers segments from 0; faster-whisper numbers them from 1.
    body.segments = transcript.segments.map((segment, index) => ({
      id: index,
      seek: segment.seek,
      start: segment.start,
      end: segment.end,
      text: segment.text,
      tokens: segment.tokens,
      temperature: segment.temperature,
      avg_logprob: segment.avg_logprob,
      compression_ratio: segment.compression_ratio,
      no_speech_prob: segment.no_speech_prob,
    }));
  }
  if (options.granularities.has('word')) {
    body.words = transcript.segments.flatMap(verboseWords);
  }
  return { ...body, ...usageField(transcript) };
}
