// Which words of a turn still being spoken are safe to send. Each partial decode of the growing turn
// is forced to start with the text already sent (faster-whisper's `prefix`), so it only proposes a
// continuation. A word is stable once two consecutive partials propose it at the same place, with the
// same letters and digits ("local agreement", as in whisper_streaming; case and punctuation aside, and
// sent as the later partial spells it), and a word after it is agreed too: the last agreed word is
// held back. Decodes of the first second or two of a turn are unreliable at their end and at their
// start ("Had he married" was "How do you marry" in five consecutive partials of 0.85-2.2 s of audio),
// and a sent word is never taken back, so besides the held-back word a turn's first words must be ones
// both partials are reasonably sure of (FIRST_WORDS_MIN_PROBABILITY); bench/README.md has the numbers.
// The final decode of the
// committed turn is not forced to start with the sent text (a wrong forced prefix made it repeat the
// sentence once): its words are aligned with the sent ones and what follows them is the turn's last
// delta, so the deltas of a turn put together are its completed transcript.

/** A text as words that keep their leading space: joining them gives the text back. */
export function words(text: string): string[] {
  return text.match(/\s*\S+/g) ?? [];
}

/**
 * The probability of each of `words(text)` from the engine's words of the same text (faster-whisper's
 * words do not always split as `words` does: punctuation merged into a neighbour, one word per
 * character in Chinese or Japanese): a word gets the least probability of the engine words it overlaps.
 * Undefined when the engine's words do not spell the text.
 */
export function wordProbabilities(
  text: string,
  spoken: readonly { word: string; probability: number }[],
): number[] | undefined {
  const joined = spoken.map((word) => word.word).join('');
  const skipped = joined.length - joined.trimStart().length;
  if (joined.trimStart() !== text.trimStart()) return undefined;
  const offset = text.length - text.trimStart().length - skipped;
  const ends: number[] = [];
  let at = offset;
  for (const word of spoken) ends.push((at += word.word.length));
  let start = 0;
  return words(text).map((word) => {
    const from = start + word.length - word.trimStart().length;
    const to = (start += word.length);
    let least = 1;
    for (const [index, end] of ends.entries()) {
      const begin = end - spoken[index]!.word.trimStart().length;
      if (begin < to && end > from) least = Math.min(least, spoken[index]!.probability);
    }
    return least;
  });
}

/** Agreed words held back from each offer until a later word is agreed after them. */
export const HELD_BACK_WORDS = 1;

/**
 * A turn's first delta is sent only when both partials that propose it are at least this sure of each
 * of its words after the first (faster-whisper's word probability). A guess made from the first second
 * or two of audio waits for more: "How do you marry" for "Had he married" came in five consecutive
 * partials, with "do" at 0.41-0.62, each partial a little surer or less sure than the one before. The
 * first word is judged by the word after it when there is one: it
 * begins at the very start of the audio and is often unsure however right ("Unless" 0.42-0.64, "What"
 * 0.25-0.62, "Had" 0.31-0.55 over 1-3 s of audio); alone, it must be sure itself. bench/README.md has
 * the numbers.
 */
export const FIRST_WORDS_MIN_PROBABILITY = 0.6;

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

/** A word as compared when aligning: lower case, letters, digits and apostrophes only. */
function comparable(word: string): string {
  return word.toLowerCase().replace(/[^\p{L}\p{N}']/gu, '');
}

/**
 * The part of a decode of the whole turn (not forced to start with the sent text) that comes after
 * what was already sent: the sent words are aligned with the decode's first words by word-level edit
 * distance, case and punctuation ignored, and the rest is what follows the decode's best-matching
 * start (of equal matches, the one nearest the sent text's length in words). A sent word the decode
 * has otherwise ("marry" for "married") is thus not repeated, nor is the turn.
 */
export function restAfter(decoded: string, sent: string): string {
  const decodedWords = words(decoded);
  const sentKeys = words(sent).map(comparable);
  const decodedKeys = decodedWords.map(comparable);
  // distances[j]: edit distance between the sent words and the decode's first j words.
  let distances = decodedKeys.map((_, j) => j).concat(decodedKeys.length);
  for (const [i, sentKey] of sentKeys.entries()) {
    const next = [i + 1];
    for (const [j, decodedKey] of decodedKeys.entries()) {
      next.push(Math.min(distances[j + 1]! + 1, next[j]! + 1, distances[j]! + (sentKey === decodedKey ? 0 : 1)));
    }
    distances = next;
  }
  let best = 0;
  for (let j = 1; j < distances.length; j++) {
    const nearer = Math.abs(j - sentKeys.length) < Math.abs(best - sentKeys.length);
    if (distances[j]! < distances[best]! || (distances[j] === distances[best] && nearer)) best = j;
  }
  return decodedWords.slice(best).join('');
}

/** Whether two partials propose the same word: the same letters and digits, case and punctuation aside. */
function sameWord(a: string, b: string): boolean {
  const key = comparable(a);
  return key === '' ? a.trim() === b.trim() : key === comparable(b);
}

/** The words two consecutive continuations agree on, from their start, as the later one spells them. */
export function agreedWords(previous: readonly string[], current: readonly string[]): string[] {
  const agreed: string[] = [];
  for (let i = 0; i < Math.min(previous.length, current.length); i++) {
    if (!sameWord(previous[i]!, current[i]!)) break;
    agreed.push(current[i]!);
  }
  return agreed;
}

/** A partial's proposal: its words after the sent text, and their probabilities when it has them. */
interface Proposal {
  words: string[];
  probabilities?: readonly number[] | undefined;
}

/** A turn's sent text and the last partial's unconfirmed proposal. */
export class StableText {
  /** The text sent so far as deltas (its first word without a leading space). */
  sent = '';
  private proposal: Proposal = { words: [] };

  /** @param firstWordsMinProbability see FIRST_WORDS_MIN_PROBABILITY; 0 turns the rule off. */
  constructor(readonly firstWordsMinProbability = FIRST_WORDS_MIN_PROBABILITY) {}

  /**
   * Takes a partial decode's text, and while nothing is sent yet the probability of each of its words
   * (one per word of the text; without them the words are not held for it); returns the newly stable
   * text to send as a delta ('' if none).
   */
  offer(decoded: string, probabilities?: readonly number[]): string {
    const previous = this.proposal;
    const current: Proposal = { words: words(continuationAfter(decoded, this.sent)), probabilities };
    const agreed = agreedWords(previous.words, current.words);
    let stable = agreed.slice(0, Math.max(0, agreed.length - HELD_BACK_WORDS));
    const least = this.sent === '' ? this.firstWordsMinProbability : 0;
    if (least > 0) {
      // Sure in both partials that propose it (a partial whose probabilities do not match its words
      // holds nothing).
      const sure = (index: number): boolean =>
        [previous, current].every(
          ({ words, probabilities }) => probabilities?.length !== words.length || probabilities[index]! >= least,
        );
      const unsure = stable.findIndex((_, index) => index > 0 && !sure(index));
      if (unsure !== -1) stable = stable.slice(0, unsure);
      if (stable.length === 1 && !sure(0)) stable = [];
    }
    this.proposal = stable.length === 0 ? current : { words: current.words.slice(stable.length) };
    return this.append(stable.join(''));
  }

  /** Takes the final decode of the whole turn (not forced to start with the sent text); returns the rest of the turn to send. */
  finish(decoded: string): string {
    this.proposal = { words: [] };
    return this.append(this.sent === '' ? decoded : restAfter(decoded, this.sent));
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
