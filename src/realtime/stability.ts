// Which words of a turn still being spoken are safe to send. Each partial decode of the growing turn
// is forced to start with the text already sent (faster-whisper's `prefix`), so it only proposes a
// continuation. A word is stable once two consecutive partials propose it at the same place, spelled
// the same, punctuation included ("local agreement", as in whisper_streaming): the last words of a cut
// turn and the punctuation after them change as more audio arrives, and agreement filters exactly
// those. Sent words are never taken back, and the final decode is forced to start with them too, so
// the deltas of a turn put together are its completed transcript.

/** A text as words that keep their leading space: joining them gives the text back. */
export function words(text: string): string[] {
  return text.match(/\s*\S+/g) ?? [];
}

/**
 * The part of a decoded text after what was already sent. The decoder was forced to start with
 * `sent`, so the text normally starts with it; if the tokenizer's round trip changed its spacing, the
 * sent words are skipped by count instead.
 */
export function continuationAfter(decoded: string, sent: string): string {
  const text = decoded.trimStart();
  if (text.startsWith(sent)) return text.slice(sent.length);
  return words(text).slice(words(sent).length).join('');
}

/** The words two consecutive continuations agree on, from their start. */
export function agreedWords(previous: readonly string[], current: readonly string[]): string[] {
  const agreed: string[] = [];
  for (let i = 0; i < Math.min(previous.length, current.length); i++) {
    if (previous[i]!.trim() !== current[i]!.trim()) break;
    agreed.push(current[i]!);
  }
  return agreed;
}

/** A turn's sent text and the last partial's unconfirmed proposal. */
export class StableText {
  /** The text sent so far as deltas (its first word without a leading space). */
  sent = '';
  private proposal: string[] = [];

  /** Takes a partial decode's text; returns the newly stable text to send as a delta ('' if none). */
  offer(decoded: string): string {
    const continuation = words(continuationAfter(decoded, this.sent));
    const agreed = agreedWords(this.proposal, continuation);
    this.proposal = continuation.slice(agreed.length);
    return this.append(agreed.join(''));
  }

  /** Takes the final decode's text; returns the rest of the turn to send. */
  finish(decoded: string): string {
    this.proposal = [];
    return this.append(continuationAfter(decoded, this.sent));
  }

  /** Appends decoded text as it is (a segment of a decode that had nothing to agree with). */
  add(text: string): string {
    return this.append(text);
  }

  private append(text: string): string {
    const delta = this.sent === '' ? text.trimStart() : text;
    this.sent += delta;
    return delta;
  }
}
