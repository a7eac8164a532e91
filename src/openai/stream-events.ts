// Server-sent events of a streamed transcription, as OpenAI sends them:
//   data: {"type":"transcript.text.delta","delta":"…"}          as text is decoded
//   data: {"type":"transcript.text.done","text":"…","usage":…}   once, at the end
//   data: [DONE]
// A failure after the stream has started is sent as data: {"error":{…}}, which both SDKs raise.
// With response_format=diarized_json, instead of deltas (as OpenAI's recorded streams):
//   data: {"type":"transcript.text.segment","text","speaker","start","end","id"}   per speaker's part
// With verbose_json (an earshot extension) each decoded segment is also sent as OpenAI's segment event,
//   data: {"type":"transcript.text.segment","text","start","end","id":"seg_0"}   after its deltas
// and the done event carries the whole verbose_json body (its `text` and `usage` are the done event's own).
import type { EngineSegment, TokenLogprob, Transcript } from '../engine/index.ts';
import type { OpenAIErrorBody } from '../api-errors.ts';
import {
  segmentEventId,
  speakerSegments,
  transcriptLogprobs,
  transcriptText,
  usageField,
  verboseJson,
  verboseWords,
  type FormatOptions,
  type TimedText,
} from './formatters.ts';

export interface TextDelta {
  delta: string;
  logprobs?: TokenLogprob[];
}

function event(payload: unknown): string {
  return `data: ${JSON.stringify(payload)}\n\n`;
}

export function deltaEvent(delta: TextDelta): string {
  return event({
    type: 'transcript.text.delta',
    delta: delta.delta,
    ...(delta.logprobs && { logprobs: delta.logprobs }),
  });
}

export function doneEvent(transcript: Transcript, includeLogprobs: boolean): string {
  return event({
    type: 'transcript.text.done',
    text: transcriptText(transcript),
    ...(includeLogprobs && { logprobs: transcriptLogprobs(transcript) }),
    // Translations carry no usage, streamed or not, as OpenAI's answers.
    ...usageField(transcript),
  });
}

/** The done event of a verbose_json stream: the verbose_json body, as the event. */
export function verboseDoneEvent(transcript: Transcript, options: FormatOptions): string {
  return event({ type: 'transcript.text.done', ...verboseJson(transcript, options) });
}

/**
 * Decoded segments as OpenAI's `transcript.text.segment` events, numbered across a stream as the
 * answer's body numbers its segments. OpenAI sends them for diarized streams: with `speakers`
 * (diarized_json), an event per speaker's part of a segment, with its `speaker`, as the diarized_json
 * body splits them. Without (verbose_json, an earshot extension), an event per segment, as verbose_json
 * numbers its segments, with `words` when word timestamps were asked for.
 */
export class SegmentEvents {
  private count = 0;

  constructor(private readonly shape: { speakers: true } | { speakers: false; words: boolean }) {}

  push(segment: EngineSegment): string[] {
    const { shape } = this;
    const parts: TimedText[] = shape.speakers ? speakerSegments(segment) : [segment];
    return parts.map((part) =>
      event({
        type: 'transcript.text.segment',
        text: part.text,
        ...(shape.speakers && { speaker: part.speaker }),
        start: part.start,
        end: part.end,
        id: segmentEventId(this.count++),
        ...(!shape.speakers && shape.words && { words: verboseWords(segment) }),
      }),
    );
  }
}

export function errorEvent(error: OpenAIErrorBody): string {
  return event(error);
}

export const DONE_EVENT = 'data: [DONE]\n\n';

/**
 * A header of every streamed answer (an earshot extension): the audio's duration in seconds, as
 * verbose_json's `duration`. With the segment events' end times, it tells how much has been decoded.
 */
export const AUDIO_DURATION_HEADER = 'x-audio-duration';

/**
 * Splits segments into one delta per word as each segment arrives, so a client sees text word by
 * word rather than a sentence at a time. The deltas put together equal the done event's text
 * exactly: leading whitespace of the transcript is dropped, and a segment's trailing whitespace is
 * held back and sent in front of the next word (so none is left dangling at the end).
 */
export class DeltaSplitter {
  private started = false;
  private heldWhitespace = '';

  push(segment: EngineSegment, includeLogprobs: boolean): TextDelta[] {
    const text = segment.text;
    const words = [...text.matchAll(/\s*\S+/g)];
    const tokensPerWord = includeLogprobs ? assignTokens(text, words, segment.logprobs ?? []) : undefined;
    const deltas = words.map((match, index): TextDelta => {
      const piece = this.started ? this.heldWhitespace + match[0] : match[0].trimStart();
      this.started = true;
      this.heldWhitespace = '';
      const logprobs = tokensPerWord?.[index];
      return logprobs ? { delta: piece, logprobs } : { delta: piece };
    });
    const last = words.at(-1);
    const tail = last ? text.slice((last.index ?? 0) + last[0].length) : text;
    this.heldWhitespace += tail;
    return deltas;
  }
}

/**
 * Gives each word the tokens that start inside it, by UTF-8 byte offset: a segment's text is its
 * tokens' bytes put together. Should they not add up, the whole segment's tokens go with its first word.
 */
function assignTokens(text: string, words: RegExpExecArray[], logprobs: TokenLogprob[]): TokenLogprob[][] {
  const perWord = words.map((): TokenLogprob[] => []);
  if (words.length === 0) return perWord;
  const tokenBytes = logprobs.reduce((sum, token) => sum + token.bytes.length, 0);
  if (tokenBytes !== Buffer.byteLength(text)) {
    perWord[0] = [...logprobs];
    return perWord;
  }
  const wordStarts = words.map((match) => Buffer.byteLength(text.slice(0, match.index)));
  let offset = 0;
  let word = 0;
  for (const token of logprobs) {
    while (word + 1 < wordStarts.length && offset >= (wordStarts[word + 1] ?? Infinity)) word++;
    perWord[word]?.push(token);
    offset += token.bytes.length;
  }
  return perWord;
}
