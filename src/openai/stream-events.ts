// Server-sent events of a streamed transcription, as OpenAI sends them:
//   data: {"type":"transcript.text.delta","delta":"…"}          as text is decoded
//   data: {"type":"transcript.text.done","text":"…","usage":…}   once, at the end
//   data: [DONE]
// With response_format=diarized_json, instead of deltas (as OpenAI's recorded streams):
//   data: {"type":"transcript.text.segment","text","speaker","start","end","id"}   per speaker's part
// A failure after the stream has started is sent as data: {"error":{…}}, which both SDKs raise.
import type { EngineSegment, TokenLogprob, Transcript } from '../engine/index.ts';
import type { OpenAIErrorBody } from '../api-errors.ts';
import { diarizedSegmentId, speakerSegments, transcriptLogprobs, transcriptText, usageOf } from './formatters.ts';

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
    usage: usageOf(transcript),
  });
}

/** Numbers the speakers' parts of segments across a stream, as the diarized_json body numbers them. */
export class SegmentEvents {
  private count = 0;

  push(segment: EngineSegment): string[] {
    return speakerSegments(segment).map((part) =>
      event({
        type: 'transcript.text.segment',
        text: part.text,
        speaker: part.speaker,
        start: part.start,
        end: part.end,
        id: diarizedSegmentId(this.count++),
      }),
    );
  }
}

export function errorEvent(error: OpenAIErrorBody): string {
  return event(error);
}

export const DONE_EVENT = 'data: [DONE]\n\n';

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
