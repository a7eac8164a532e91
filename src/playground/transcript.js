// A transcript with its timings: words that light up while the recording plays and seek it when
// clicked, the segment table (each row seeks too), and the downloads, written as the server writes them.

/** @typedef {import('./api.js').VerboseTranscript} VerboseTranscript */
/** @typedef {import('./api.js').Segment} Segment */

/**
 * The index of the last item that has started at `seconds` (items sorted by start), -1 before the first.
 * @param {readonly { start: number }[]} items
 * @param {number} seconds
 */
export function startedAt(items, seconds) {
  let low = 0;
  let high = items.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if ((items[middle]?.start ?? Infinity) <= seconds) low = middle + 1;
    else high = middle;
  }
  return low - 1;
}

/**
 * A time for people: 7.25 → "0:07.3", 3725 → "1:02:05.0".
 * @param {number} seconds
 */
export function clock(seconds) {
  const tenths = Math.round(seconds * 10);
  const s = (tenths % 600) / 10;
  const minutes = Math.floor(tenths / 600);
  const ss = s.toFixed(1).padStart(4, '0');
  return minutes >= 60
    ? `${Math.floor(minutes / 60)}:${String(minutes % 60).padStart(2, '0')}:${ss}`
    : `${minutes}:${ss}`;
}

// srt and vtt as the server writes them (src/openai/formatters.ts): a cue per segment with text, blank
// lines dropped, times rounded to the millisecond. test/browser/playground.test.ts checks that the
// downloads equal the server's own srt and vtt of the same recording.

/** @param {readonly Segment[]} segments */
function cuesOf(segments) {
  return segments.flatMap((segment) => {
    const text = segment.text
      .trim()
      .split(/\r\n|\r|\n/)
      .filter((line) => line.trim() !== '')
      .join('\n');
    return text === '' ? [] : [{ start: segment.start, end: segment.end, text }];
  });
}

/**
 * @param {number} seconds
 * @param {',' | '.'} separator
 */
function timestamp(seconds, separator) {
  const totalMs = Math.max(0, Math.round(seconds * 1000));
  const ms = totalMs % 1000;
  const totalSeconds = (totalMs - ms) / 1000;
  const pad = (/** @type {number} */ value, /** @type {number} */ width) => String(value).padStart(width, '0');
  const hms = `${pad(Math.floor(totalSeconds / 3600), 2)}:${pad(Math.floor(totalSeconds / 60) % 60, 2)}:${pad(totalSeconds % 60, 2)}`;
  return `${hms}${separator}${pad(ms, 3)}`;
}

/** @param {readonly Segment[]} segments */
export function toSrt(segments) {
  return cuesOf(segments)
    .map((cue, index) => `${index + 1}\n${timestamp(cue.start, ',')} --> ${timestamp(cue.end, ',')}\n${cue.text}\n\n`)
    .join('');
}

/** @param {readonly Segment[]} segments */
export function toVtt(segments) {
  const cues = cuesOf(segments).map(
    (cue) => `${timestamp(cue.start, '.')} --> ${timestamp(cue.end, '.')}\n${cue.text}\n\n`,
  );
  return `WEBVTT\n\n${cues.join('')}`;
}

/**
 * The words laid out with the transcript's own spacing between them: the server's words are bare
 * (OpenAI's shape), and some languages put no space between words.
 * @param {string} text
 * @param {readonly { word: string }[]} words
 * @returns {string[]} what goes before each word
 */
function separators(text, words) {
  let at = 0;
  return words.map((word, index) => {
    const found = text.indexOf(word.word, at);
    if (found < 0) return index === 0 ? '' : ' ';
    const before = text.slice(at, found);
    at = found + word.word.length;
    return index === 0 ? '' : before;
  });
}

/** Shows one timed transcript and keeps it in step with the audio element. */
export class TimedTranscript {
  /**
   * @param {{ textBox: HTMLElement, segmentRows: HTMLTableSectionElement, audio: HTMLAudioElement }} elements
   */
  constructor({ textBox, segmentRows, audio }) {
    this.textBox = textBox;
    this.segmentRows = segmentRows;
    this.audio = audio;
    /** @type {{ start: number, element: HTMLElement }[]} */
    this.words = [];
    /** @type {{ start: number, element: HTMLElement }[]} */
    this.segments = [];
    /** @type {HTMLElement | undefined} */
    this.currentWord = undefined;
    /** @type {HTMLElement | undefined} */
    this.currentSegment = undefined;
    this.frame = 0;

    textBox.addEventListener('click', (event) => {
      const word = event.target instanceof HTMLElement ? event.target.closest('.word') : null;
      if (word instanceof HTMLElement && word.dataset.start !== undefined) this.playFrom(Number(word.dataset.start));
    });
    segmentRows.addEventListener('click', (event) => {
      const button = event.target instanceof HTMLElement ? event.target.closest('button') : null;
      if (button instanceof HTMLElement && button.dataset.start !== undefined)
        this.playFrom(Number(button.dataset.start));
    });
    // While playing, every frame: timeupdate alone comes only about four times a second.
    const follow = () => {
      this.update();
      this.frame = requestAnimationFrame(follow);
    };
    audio.addEventListener('play', () => {
      cancelAnimationFrame(this.frame);
      this.frame = requestAnimationFrame(follow);
    });
    for (const stop of ['pause', 'ended', 'emptied']) {
      audio.addEventListener(stop, () => {
        cancelAnimationFrame(this.frame);
        this.update();
      });
    }
    audio.addEventListener('seeked', () => this.update());
  }

  /** @param {number} seconds */
  playFrom(seconds) {
    this.audio.currentTime = seconds;
    this.update();
    void this.audio.play().catch(() => undefined);
  }

  clear() {
    this.textBox.replaceChildren();
    this.segmentRows.replaceChildren();
    this.words = [];
    this.segments = [];
    this.currentWord = undefined;
    this.currentSegment = undefined;
  }

  /** @param {VerboseTranscript} transcript */
  show(transcript) {
    this.clear();
    const words = transcript.words ?? [];
    if (words.length === 0) {
      this.textBox.textContent = transcript.text;
    } else {
      const before = separators(transcript.text, words);
      words.forEach((word, index) => {
        const element = document.createElement('span');
        element.className = 'word';
        element.textContent = word.word;
        element.dataset.start = String(word.start);
        element.title = `${clock(word.start)} – ${clock(word.end)}`;
        this.textBox.append(before[index] ?? ' ', element);
        this.words.push({ start: word.start, element });
      });
    }
    for (const segment of transcript.segments ?? []) {
      const row = document.createElement('tr');
      const time = document.createElement('td');
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'seek';
      button.dataset.start = String(segment.start);
      button.textContent = clock(segment.start);
      button.setAttribute('aria-label', `Play from ${clock(segment.start)}`);
      time.append(button);
      const end = document.createElement('td');
      end.textContent = clock(segment.end);
      const text = document.createElement('td');
      text.textContent = segment.text.trim();
      row.append(time, end, text);
      this.segmentRows.append(row);
      this.segments.push({ start: segment.start, element: row });
    }
    this.update();
  }

  /** Lights up the word and the segment being heard. */
  update() {
    const now = this.audio.currentTime;
    this.currentWord = mark(this.words, startedAt(this.words, now), this.currentWord);
    this.currentSegment = mark(this.segments, startedAt(this.segments, now), this.currentSegment);
  }
}

/**
 * Moves the `current` mark to items[index] (none for -1); returns the element marked.
 * @param {readonly { element: HTMLElement }[]} items
 * @param {number} index
 * @param {HTMLElement | undefined} previous
 */
function mark(items, index, previous) {
  const element = items[index]?.element;
  if (element === previous) return previous;
  previous?.classList.remove('current');
  previous?.removeAttribute('aria-current');
  element?.classList.add('current');
  element?.setAttribute('aria-current', 'true');
  return element;
}
