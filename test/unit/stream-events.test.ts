import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { EngineSegment, TokenLogprob, Transcript } from '../../src/engine/index.ts';
import { renderTranscript, transcriptText } from '../../src/openai/formatters.ts';
import {
  DeltaSplitter,
  deltaEvent,
  DONE_EVENT,
  doneEvent,
  errorEvent,
  SegmentEvents,
  verboseDoneEvent,
  type TextDelta,
} from '../../src/openai/stream-events.ts';

let nextId = 1;

function segment(text: string, logprobs: TokenLogprob[] | null = null): EngineSegment {
  return {
    id: nextId++,
    seek: 0,
    start: 0,
    end: 1,
    text,
    tokens: [50364],
    temperature: 0,
    avg_logprob: -0.2,
    compression_ratio: 1.2,
    no_speech_prob: 0.01,
    words: null,
    logprobs,
  };
}

function transcript(segments: EngineSegment[], duration = 10.2): Transcript {
  return {
    task: 'transcribe',
    info: { language: 'en', language_probability: 0.99, duration, duration_after_vad: duration },
    segments,
  };
}

/** A token from raw bytes; its `token` is what a tokenizer would show (lossy for partial characters). */
function token(bytes: number[], logprob = -0.5): TokenLogprob {
  return { token: Buffer.from(bytes).toString('utf8'), logprob, bytes };
}

/** A token from text, as its UTF-8 bytes. */
function textToken(text: string, logprob = -0.25): TokenLogprob {
  return token([...Buffer.from(text, 'utf8')], logprob);
}

/** Every delta of the segments, pushed one after another through one splitter. */
function split(texts: readonly string[], includeLogprobs = false): TextDelta[] {
  const splitter = new DeltaSplitter();
  return texts.flatMap((text) => splitter.push(segment(text), includeLogprobs));
}

/** The deltas put together equal the done event's text, exactly. */
function assertJoinsToDoneText(texts: readonly string[]): TextDelta[] {
  const deltas = split(texts);
  const done = transcriptText(transcript(texts.map((text) => segment(text))));
  assert.equal(deltas.map((delta) => delta.delta).join(''), done, JSON.stringify(texts));
  return deltas;
}

const decode = (tokens: readonly TokenLogprob[]) => Buffer.from(tokens.flatMap((t) => t.bytes)).toString('utf8');

describe('DeltaSplitter: deltas put together equal the done text', () => {
  it('sends one delta per word, the first without its leading space', () => {
    const deltas = assertJoinsToDoneText([
      ' And so my fellow Americans,',
      ' ask not what your country can do for you,',
      ' ask what you can do for your country.',
    ]);
    assert.deepEqual(
      deltas.map((delta) => delta.delta),
      [
        'And',
        ' so',
        ' my',
        ' fellow',
        ' Americans,',
        ' ask',
        ' not',
        ' what',
        ' your',
        ' country',
        ' can',
        ' do',
        ' for',
        ' you,',
        ' ask',
        ' what',
        ' you',
        ' can',
        ' do',
        ' for',
        ' your',
        ' country.',
      ],
    );
    assert.ok(
      deltas.every((delta) => !('logprobs' in delta)),
      'no logprobs unless asked for',
    );
  });

  it("carries a segment's trailing whitespace to the next word, and drops it at the end", () => {
    const deltas = assertJoinsToDoneText([' Hello world. ', ' Next one.\n', '\tLast  ']);
    assert.deepEqual(
      deltas.map((delta) => delta.delta),
      ['Hello', ' world.', '  Next', ' one.', '\n\tLast'],
    );
  });

  it('sends nothing for whitespace-only and empty segments, keeping their whitespace for the next word', () => {
    const deltas = assertJoinsToDoneText(['', ' Hello', '   ', '', ' world', ' \n ', '']);
    assert.deepEqual(
      deltas.map((delta) => delta.delta),
      ['Hello', '    world'],
    );
    assert.deepEqual(split(['', '  ', '\n']), [], 'a transcript of nothing but whitespace sends no delta');
    assertJoinsToDoneText(['', '  ', '\n']);
    assertJoinsToDoneText([]);
  });

  it('drops leading whitespace spread over several segments', () => {
    const deltas = assertJoinsToDoneText(['  ', '\n', ' \t Hello there']);
    assert.deepEqual(
      deltas.map((delta) => delta.delta),
      ['Hello', ' there'],
    );
  });

  it('keeps whitespace inside a segment (newlines, tabs, runs of spaces) with the word after it', () => {
    const deltas = assertJoinsToDoneText([' line one\nline  two\t three']);
    assert.deepEqual(
      deltas.map((delta) => delta.delta),
      ['line', ' one', '\nline', '  two', '\t three'],
    );
  });

  it('handles unicode: accents, emoji (surrogate pairs), CJK, RTL and no-break spaces', () => {
    const texts = [' café naïve', ' 🎉👍🏽 done', ' 世界你好。', ' こんにちは 世界', ' مرحبا بالعالم', ' a\u00a0b'];
    const deltas = assertJoinsToDoneText(texts);
    assert.deepEqual(
      deltas.map((delta) => delta.delta),
      [
        'café',
        ' naïve',
        ' 🎉👍🏽',
        ' done',
        ' 世界你好。',
        ' こんにちは',
        ' 世界',
        ' مرحبا',
        ' بالعالم',
        // U+00A0 is whitespace to JavaScript's \s, so it separates words too.
        ' a',
        '\u00a0b',
      ],
    );
    for (const delta of deltas) {
      assert.ok(!/\uFFFD/.test(delta.delta), 'no character is broken');
    }
  });

  it('puts together to the done text for many generated transcripts', () => {
    // A small deterministic generator (LCG), so a failure is reproducible.
    let state = 12345;
    const random = (n: number) => {
      state = (state * 1103515245 + 12345) % 2147483648;
      return state % n;
    };
    const pieces = [' ', '  ', '\n', '\t', '', 'word', 'é', '世界', '🎉', ',', 'x.', ' \n '];
    for (let run = 0; run < 300; run++) {
      const texts = Array.from({ length: random(5) }, () =>
        Array.from({ length: random(6) }, () => pieces[random(pieces.length)]).join(''),
      );
      const deltas = assertJoinsToDoneText(texts);
      // One delta per word of each segment (segments that meet without whitespace are not merged).
      const words = texts.reduce((count, text) => count + (text.match(/\S+/g) ?? []).length, 0);
      assert.equal(deltas.length, words, JSON.stringify(texts));
      for (const delta of deltas) assert.match(delta.delta, /^\s*\S+$/u, 'each delta is one word');
    }
  });

  it('starts afresh with a new splitter', () => {
    const first = new DeltaSplitter();
    first.push(segment(' one '), false);
    assert.deepEqual(new DeltaSplitter().push(segment(' two'), false), [{ delta: 'two' }]);
  });
});

describe('DeltaSplitter: logprobs by UTF-8 byte offset', () => {
  it('gives each word the tokens that start inside it, with its leading space', () => {
    const tokens = [textToken(' And', -0.1), textToken(' so', -0.2), textToken(' my', -0.3), textToken(' fel', -0.4)];
    tokens.push(textToken('low', -0.5), textToken(' Americans', -0.6), textToken(',', -0.7));
    const deltas = new DeltaSplitter().push(segment(' And so my fellow Americans,', tokens), true);
    assert.deepEqual(deltas, [
      { delta: 'And', logprobs: [tokens[0]] },
      { delta: ' so', logprobs: [tokens[1]] },
      { delta: ' my', logprobs: [tokens[2]] },
      { delta: ' fellow', logprobs: [tokens[3], tokens[4]] },
      { delta: ' Americans,', logprobs: [tokens[5], tokens[6]] },
    ]);
  });

  it('keeps a multi-byte character split across tokens with its word ("é")', () => {
    // " café au": é is C3 A9, sent as two tokens of one byte each.
    const tokens = [textToken(' caf'), token([0xc3], -1.5), token([0xa9], -0.01), textToken(' au')];
    const deltas = new DeltaSplitter().push(segment(' café au', tokens), true);
    assert.deepEqual(deltas, [
      { delta: 'café', logprobs: tokens.slice(0, 3) },
      { delta: ' au', logprobs: [tokens[3]] },
    ]);
    assert.equal(decode(deltas[0]?.logprobs ?? []), ' café');
  });

  it('keeps a CJK character split across tokens with its word ("世" = E4 B8 96)', () => {
    // " 世界 hi": the space and the first byte of 世 share a token; 界 is one token of three bytes.
    const tokens = [token([0x20, 0xe4]), token([0xb8, 0x96]), token([0xe7, 0x95, 0x8c]), textToken(' hi')];
    const splitter = new DeltaSplitter();
    const deltas = splitter.push(segment(' 世界 hi', tokens), true);
    assert.deepEqual(deltas, [
      { delta: '世界', logprobs: tokens.slice(0, 3) },
      { delta: ' hi', logprobs: [tokens[3]] },
    ]);
    assert.equal(decode(deltas[0]?.logprobs ?? []), ' 世界');

    // Byte offsets start again at each segment.
    const next = [textToken(' 🎉'), textToken(' ok')];
    assert.deepEqual(splitter.push(segment(' 🎉 ok', next), true), [
      { delta: ' 🎉', logprobs: [next[0]] },
      { delta: ' ok', logprobs: [next[1]] },
    ]);
  });

  it('gives a token that runs over a word boundary to the word it starts in', () => {
    // " café au": "é " (C3 A9 20) starts inside "café" and ends in the space before "au".
    const tokens = [textToken(' caf'), token([0xc3, 0xa9, 0x20]), textToken('au')];
    assert.deepEqual(new DeltaSplitter().push(segment(' café au', tokens), true), [
      { delta: 'café', logprobs: tokens.slice(0, 2) },
      { delta: ' au', logprobs: [tokens[2]] },
    ]);
  });

  it("the tokens' bytes of each delta decode to the delta (the first delta's leading space aside)", () => {
    const texts = [' Grüße aus', ' 東京 und', ' 🎉 party.'];
    const splitter = new DeltaSplitter();
    const deltas = texts.flatMap((text) => {
      // One token per character, so multi-byte characters are whole tokens here.
      const tokens = [...text].map((character) => textToken(character));
      return splitter.push(segment(text, tokens), true);
    });
    assert.equal(deltas.map((delta) => delta.delta).join(''), 'Grüße aus 東京 und 🎉 party.');
    deltas.forEach((delta, index) => {
      const expected = index === 0 ? ` ${delta.delta}` : delta.delta;
      assert.equal(decode(delta.logprobs ?? []), expected);
    });
  });

  it('puts every token on the first word when the token bytes do not add up to the text', () => {
    const tokens = [textToken(' Hello'), textToken(' wor')]; // " world" is missing "ld"
    const deltas = new DeltaSplitter().push(segment(' Hello world again', tokens), true);
    assert.deepEqual(deltas, [
      { delta: 'Hello', logprobs: tokens },
      { delta: ' world', logprobs: [] },
      { delta: ' again', logprobs: [] },
    ]);
    const tooMany = [textToken(' Hi'), textToken(' there'), textToken('!')];
    assert.deepEqual(new DeltaSplitter().push(segment(' Hi', tooMany), true), [{ delta: 'Hi', logprobs: tooMany }]);
  });

  it('sends empty logprobs when a segment has none, and no logprobs when they were not asked for', () => {
    assert.deepEqual(new DeltaSplitter().push(segment(' a b', null), true), [
      { delta: 'a', logprobs: [] },
      { delta: ' b', logprobs: [] },
    ]);
    assert.deepEqual(new DeltaSplitter().push(segment(' a b', [textToken(' a'), textToken(' b')]), false), [
      { delta: 'a' },
      { delta: ' b' },
    ]);
  });
});

describe('server-sent event strings', () => {
  it('frames a delta as one data line', () => {
    assert.equal(deltaEvent({ delta: 'Hello' }), 'data: {"type":"transcript.text.delta","delta":"Hello"}\n\n');
    assert.equal(
      deltaEvent({ delta: ' wörld', logprobs: [{ token: ' wörld', logprob: -0.125, bytes: [32, 119] }] }),
      'data: {"type":"transcript.text.delta","delta":" wörld","logprobs":[{"token":" wörld","logprob":-0.125,"bytes":[32,119]}]}\n\n',
    );
    assert.equal(
      deltaEvent({ delta: 'a', logprobs: [] }),
      'data: {"type":"transcript.text.delta","delta":"a","logprobs":[]}\n\n',
    );
  });

  it('escapes newlines and quotes, so an event is never cut short', () => {
    const event = deltaEvent({ delta: '\n"quoted"\r\n\ttab' });
    assert.equal(event, 'data: {"type":"transcript.text.delta","delta":"\\n\\"quoted\\"\\r\\n\\ttab"}\n\n');
    assert.equal(event.indexOf('\n'), event.length - 2, 'the only newlines end the event');
    assert.ok(!event.includes('\r'));
  });

  it('ends with the done event (text, usage in whole seconds rounded up) and [DONE]', () => {
    const finished = transcript([segment(' Hello there. '), segment(' General 🎉.')], 10.2);
    assert.equal(
      doneEvent(finished, false),
      'data: {"type":"transcript.text.done","text":"Hello there.  General 🎉.","usage":{"type":"duration","seconds":11}}\n\n',
    );
    assert.equal(
      doneEvent(transcript([segment(' x')], 11), false),
      'data: {"type":"transcript.text.done","text":"x","usage":{"type":"duration","seconds":11}}\n\n',
    );
    assert.equal(DONE_EVENT, 'data: [DONE]\n\n');
  });

  it('carries every token of every segment in the done event when logprobs are asked for', () => {
    const first = [textToken(' Hi', -0.5)];
    const second = [token([0x20, 0xc3]), token([0xa9], -2)];
    const finished = transcript([segment(' Hi', first), segment('', null), segment(' é', second)], 3.01);
    const event = doneEvent(finished, true);
    assert.ok(event.startsWith('data: ') && event.endsWith('\n\n'));
    assert.deepEqual(JSON.parse(event.slice('data: '.length)), {
      type: 'transcript.text.done',
      text: 'Hi é',
      logprobs: [...first, ...second],
      usage: { type: 'duration', seconds: 4 },
    });
    assert.deepEqual(Object.keys(JSON.parse(event.slice('data: '.length)) as object), [
      'type',
      'text',
      'logprobs',
      'usage',
    ]);
    assert.ok(!doneEvent(finished, false).includes('logprobs'));
  });

  it("gives a translation's done event no usage, as a translation's answer has none", () => {
    const translated: Transcript = { ...transcript([segment(' Hello.')]), task: 'translate' };
    assert.equal(doneEvent(translated, false), 'data: {"type":"transcript.text.done","text":"Hello."}\n\n');
  });

  it("sends a verbose_json stream's segments as OpenAI's segment event, numbered as verbose_json does", () => {
    const decoded: EngineSegment = {
      ...segment(' Ask not.'),
      start: 1.5,
      end: 3.25,
      words: [
        { word: ' Ask', start: 1.5, end: 2, probability: 0.9 },
        { word: ' not.', start: 2, end: 3.25, probability: 0.8 },
      ],
    };
    const events = new SegmentEvents({ speakers: false, words: false });
    const [first, second] = [...events.push(segment(' Before.')), ...events.push(decoded)];
    assert.ok(first?.includes('"id":"seg_0"'), first);
    assert.equal(
      second,
      'data: {"type":"transcript.text.segment","text":" Ask not.","start":1.5,"end":3.25,"id":"seg_1"}\n\n',
    );
    const [withWords] = new SegmentEvents({ speakers: false, words: true }).push(decoded);
    assert.deepEqual((JSON.parse(withWords?.slice(6) ?? '') as { words: unknown }).words, [
      { word: 'Ask', start: 1.5, end: 2 },
      { word: 'not.', start: 2, end: 3.25 },
    ]);
  });

  it('ends a verbose_json stream with the verbose_json answer as its done event', () => {
    const finished = transcript([segment(' One.'), segment(' Two.')], 4.5);
    for (const granularities of [new Set(['segment'] as const), new Set(['word', 'segment'] as const)]) {
      const event = verboseDoneEvent(finished, { granularities });
      const { type, ...body } = JSON.parse(event.slice('data: '.length)) as Record<string, unknown>;
      assert.equal(type, 'transcript.text.done');
      assert.equal(JSON.stringify(body), renderTranscript(finished, 'verbose_json', { granularities }).body);
    }
  });

  it('sends an error as an OpenAI error body', () => {
    assert.equal(
      errorEvent({ error: { message: 'boom', type: 'server_error', param: null, code: 'engine_crashed' } }),
      'data: {"error":{"message":"boom","type":"server_error","param":null,"code":"engine_crashed"}}\n\n',
    );
  });
});

describe('SegmentEvents: diarized streams', () => {
  it('sends one transcript.text.segment event per speaker part, numbered across segments as the body numbers them', () => {
    const events = new SegmentEvents({ speakers: true });
    const words = (spoken: [string, number, number, string][]) =>
      spoken.map(([word, start, end, speaker]) => ({ word, start, end, probability: 1, speaker }));
    const first: EngineSegment = {
      ...segment(' One two.'),
      end: 2,
      speaker: 'A',
      words: words([
        [' One', 0, 1, 'A'],
        [' two.', 1, 2, 'B'],
      ]),
    };
    const second: EngineSegment = { ...segment(' Three.'), start: 2.5, end: 3, speaker: 'B', words: null };
    const sent = [...events.push(first), ...events.push(second)].map(
      (line) => JSON.parse(line.slice('data: '.length)) as Record<string, unknown>,
    );
    assert.deepEqual(sent, [
      { type: 'transcript.text.segment', text: ' One', speaker: 'A', start: 0, end: 1, id: 'seg_0' },
      { type: 'transcript.text.segment', text: ' two.', speaker: 'B', start: 1, end: 2, id: 'seg_1' },
      { type: 'transcript.text.segment', text: ' Three.', speaker: 'B', start: 2.5, end: 3, id: 'seg_2' },
    ]);
  });
});
