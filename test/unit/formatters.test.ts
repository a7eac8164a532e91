import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import type { EngineSegment, EngineWord, Transcript } from '../../src/engine/index.ts';
import { renderTranscript, speakerSegments, transcriptText, usageOf } from '../../src/openai/formatters.ts';
import type { FormatOptions, ResponseFormat } from '../../src/openai/formatters.ts';
import { languageName, normaliseLanguage, supportedLanguageCodes } from '../../src/openai/languages.ts';

const SEGMENT_KEYS = [
  'id',
  'seek',
  'start',
  'end',
  'text',
  'tokens',
  'temperature',
  'avg_logprob',
  'compression_ratio',
  'no_speech_prob',
];

const NONE: FormatOptions = { granularities: new Set() };
const SEGMENTS: FormatOptions = { granularities: new Set(['segment']) };
const WORDS: FormatOptions = { granularities: new Set(['word']) };
const BOTH: FormatOptions = { granularities: new Set(['word', 'segment']) };

let nextId = 1;

function segment(start: number, end: number, text: string, words: EngineWord[] | null = null): EngineSegment {
  return {
    id: nextId++,
    seek: Math.floor(start * 100),
    start,
    end,
    text,
    tokens: [50364, 1000],
    temperature: 0,
    avg_logprob: -0.25,
    compression_ratio: 1.5,
    no_speech_prob: 0.01,
    words,
    logprobs: null,
  };
}

function transcript(segments: EngineSegment[], duration = 10.2, language = 'en'): Transcript {
  return {
    task: 'transcribe',
    info: { language, language_probability: 0.98, duration, duration_after_vad: duration },
    segments,
  };
}

function render(t: Transcript, format: ResponseFormat, options: FormatOptions = NONE): string {
  return renderTranscript(t, format, options).body;
}

function parse(t: Transcript, options: FormatOptions): Record<string, unknown> {
  return JSON.parse(render(t, 'verbose_json', options)) as Record<string, unknown>;
}

const threeSegments = (): Transcript =>
  transcript([segment(0, 2.5, ' Hello there.'), segment(2.5, 5.04, ' How are you?'), segment(5.04, 7.2, ' Fine.')]);

const emptyTranscript = (): Transcript => transcript([], 0);

describe('transcriptText and usageOf', () => {
  it('joins segment texts and trims the ends', () => {
    assert.equal(transcriptText(threeSegments()), 'Hello there. How are you? Fine.');
  });

  it('rounds the duration up to whole seconds', () => {
    assert.deepEqual(usageOf(transcript([], 10.2)), { type: 'duration', seconds: 11 });
    assert.deepEqual(usageOf(transcript([], 3)), { type: 'duration', seconds: 3 });
    assert.deepEqual(usageOf(transcript([], 0.01)), { type: 'duration', seconds: 1 });
  });
});

describe('json and text', () => {
  it('renders json with text and usage', () => {
    assert.deepEqual(renderTranscript(threeSegments(), 'json', NONE), {
      contentType: 'application/json; charset=utf-8',
      body: '{"text":"Hello there. How are you? Fine.","usage":{"type":"duration","seconds":11}}',
    });
  });

  it('renders text with a trailing newline', () => {
    assert.deepEqual(renderTranscript(threeSegments(), 'text', NONE), {
      contentType: 'text/plain; charset=utf-8',
      body: 'Hello there. How are you? Fine.\n',
    });
  });
});

describe('srt and vtt', () => {
  it('renders numbered srt cues', () => {
    assert.deepEqual(renderTranscript(threeSegments(), 'srt', NONE), {
      contentType: 'text/plain; charset=utf-8',
      body:
        '1\n00:00:00,000 --> 00:00:02,500\nHello there.\n\n' +
        '2\n00:00:02,500 --> 00:00:05,040\nHow are you?\n\n' +
        '3\n00:00:05,040 --> 00:00:07,200\nFine.\n\n',
    });
  });

  it('renders vtt cues after the header', () => {
    assert.deepEqual(renderTranscript(threeSegments(), 'vtt', NONE), {
      contentType: 'text/plain; charset=utf-8',
      body:
        'WEBVTT\n\n' +
        '00:00:00.000 --> 00:00:02.500\nHello there.\n\n' +
        '00:00:02.500 --> 00:00:05.040\nHow are you?\n\n' +
        '00:00:05.040 --> 00:00:07.200\nFine.\n\n',
    });
  });

  it('formats timestamps past one hour and past 100 hours', () => {
    const t = transcript([segment(3725.5, 3726.25, ' Late.'), segment(359999.9994, 360000, ' Very late.')], 360000);
    assert.equal(
      render(t, 'srt'),
      '1\n01:02:05,500 --> 01:02:06,250\nLate.\n\n2\n99:59:59,999 --> 100:00:00,000\nVery late.\n\n',
    );
    assert.equal(
      render(t, 'vtt'),
      'WEBVTT\n\n01:02:05.500 --> 01:02:06.250\nLate.\n\n99:59:59.999 --> 100:00:00.000\nVery late.\n\n',
    );
  });

  it('rounds to whole milliseconds before splitting, carrying into the minutes', () => {
    const t = transcript([segment(0.0005, 59.9996, ' Edge.'), segment(3599.9999, 3600.0004, ' Hour.')]);
    assert.equal(
      render(t, 'srt'),
      '1\n00:00:00,001 --> 00:01:00,000\nEdge.\n\n2\n01:00:00,000 --> 01:00:00,000\nHour.\n\n',
    );
    assert.equal(
      render(t, 'vtt'),
      'WEBVTT\n\n00:00:00.001 --> 00:01:00.000\nEdge.\n\n01:00:00.000 --> 01:00:00.000\nHour.\n\n',
    );
  });

  it('clamps negative times to zero', () => {
    assert.equal(
      render(transcript([segment(-0.3, 1, ' Early.')]), 'srt'),
      '1\n00:00:00,000 --> 00:00:01,000\nEarly.\n\n',
    );
  });

  it('keeps lines but drops blank lines inside a cue', () => {
    const t = transcript([
      segment(0, 2, ' First line\n\n\nsecond line\n   \nthird\r\n\r\nfourth \n'),
      segment(2, 3, ' Next.'),
    ]);
    assert.equal(
      render(t, 'srt'),
      '1\n00:00:00,000 --> 00:00:02,000\nFirst line\nsecond line\nthird\nfourth\n\n' +
        '2\n00:00:02,000 --> 00:00:03,000\nNext.\n\n',
    );
    assert.equal(
      render(t, 'vtt'),
      'WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nFirst line\nsecond line\nthird\nfourth\n\n' +
        '00:00:02.000 --> 00:00:03.000\nNext.\n\n',
    );
  });

  it('skips empty-text segments and keeps numbering consecutive', () => {
    const t = transcript([segment(0, 1, ' One.'), segment(1, 2, '  '), segment(2, 3, ''), segment(3, 4, ' Two.')]);
    assert.equal(
      render(t, 'srt'),
      '1\n00:00:00,000 --> 00:00:01,000\nOne.\n\n2\n00:00:03,000 --> 00:00:04,000\nTwo.\n\n',
    );
    assert.equal(
      render(t, 'vtt'),
      'WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nOne.\n\n00:00:03.000 --> 00:00:04.000\nTwo.\n\n',
    );
  });
});

describe('empty transcript', () => {
  it('renders every format', () => {
    const t = emptyTranscript();
    assert.equal(render(t, 'json'), '{"text":"","usage":{"type":"duration","seconds":0}}');
    assert.equal(render(t, 'text'), '\n');
    assert.equal(render(t, 'srt'), '');
    assert.equal(render(t, 'vtt'), 'WEBVTT\n\n');
    assert.equal(
      render(t, 'verbose_json', BOTH),
      '{"task":"transcribe","language":"english","duration":0,"text":"","segments":[],"words":[],' +
        '"usage":{"type":"duration","seconds":0}}',
    );
  });
});

describe('unicode', () => {
  const text = 'Grüße, 世界 🎉';
  const t = transcript(
    [segment(0, 1.5, ` ${text}`, [{ word: ' 🎉', start: 1, end: 1.5, probability: 0.9 }])],
    1.5,
    'de',
  );

  it('survives json, text, srt and vtt', () => {
    assert.equal(render(t, 'json'), `{"text":"${text}","usage":{"type":"duration","seconds":2}}`);
    assert.equal(render(t, 'text'), `${text}\n`);
    assert.equal(render(t, 'srt'), `1\n00:00:00,000 --> 00:00:01,500\n${text}\n\n`);
    assert.equal(render(t, 'vtt'), `WEBVTT\n\n00:00:00.000 --> 00:00:01.500\n${text}\n\n`);
  });

  it('survives verbose_json', () => {
    const body = parse(t, BOTH);
    assert.equal(body.language, 'german');
    assert.equal(body.text, text);
    assert.deepEqual(body.segments, [
      {
        id: 0,
        seek: 0,
        start: 0,
        end: 1.5,
        text: ` ${text}`,
        tokens: [50364, 1000],
        temperature: 0,
        avg_logprob: -0.25,
        compression_ratio: 1.5,
        no_speech_prob: 0.01,
      },
    ]);
    assert.deepEqual(body.words, [{ word: '🎉', start: 1, end: 1.5 }]);
  });
});

describe('verbose_json', () => {
  const words = (): Transcript => ({
    task: 'transcribe',
    info: { language: 'fr', language_probability: 0.9, duration: 4.0001, duration_after_vad: 4 },
    segments: [
      {
        id: 1,
        seek: 0,
        start: 0,
        end: 1.2,
        text: ' Bonjour tout',
        tokens: [1, 2, 3],
        temperature: 0.2,
        avg_logprob: -0.3,
        compression_ratio: 1.1,
        no_speech_prob: 0.02,
        words: [
          { word: ' Bonjour', start: 0, end: 0.6, probability: 0.9 },
          { word: ' tout ', start: 0.6, end: 1.2, probability: 0.8 },
        ],
        logprobs: null,
      },
      {
        id: 2,
        seek: 120,
        start: 1.2,
        end: 2,
        text: ' le',
        tokens: [4],
        temperature: 0,
        avg_logprob: -0.1,
        compression_ratio: 1,
        no_speech_prob: 0.03,
        words: null,
        logprobs: null,
      },
      {
        id: 3,
        seek: 200,
        start: 2,
        end: 4,
        text: ' monde.',
        tokens: [5, 6],
        temperature: 0,
        avg_logprob: -0.2,
        compression_ratio: 1.3,
        no_speech_prob: 0.04,
        words: [{ word: ' monde.', start: 2, end: 4, probability: 0.7 }],
        logprobs: null,
      },
    ],
  });

  it('has the content type and top-level keys in order, without segments or words unless asked', () => {
    const rendered = renderTranscript(words(), 'verbose_json', NONE);
    assert.equal(rendered.contentType, 'application/json; charset=utf-8');
    assert.equal(
      rendered.body,
      '{"task":"transcribe","language":"french","duration":4.0001,"text":"Bonjour tout le monde.",' +
        '"usage":{"type":"duration","seconds":5}}',
    );
  });

  it('renumbers segments from 0 with exactly the OpenAI keys, and omits words', () => {
    const body = parse(words(), SEGMENTS);
    assert.deepEqual(Object.keys(body), ['task', 'language', 'duration', 'text', 'segments', 'usage']);
    const segments = body.segments as Record<string, unknown>[];
    assert.deepEqual(
      segments.map((s) => Object.keys(s)),
      [SEGMENT_KEYS, SEGMENT_KEYS, SEGMENT_KEYS],
    );
    assert.deepEqual(segments, [
      {
        id: 0,
        seek: 0,
        start: 0,
        end: 1.2,
        text: ' Bonjour tout',
        tokens: [1, 2, 3],
        temperature: 0.2,
        avg_logprob: -0.3,
        compression_ratio: 1.1,
        no_speech_prob: 0.02,
      },
      {
        id: 1,
        seek: 120,
        start: 1.2,
        end: 2,
        text: ' le',
        tokens: [4],
        temperature: 0,
        avg_logprob: -0.1,
        compression_ratio: 1,
        no_speech_prob: 0.03,
      },
      {
        id: 2,
        seek: 200,
        start: 2,
        end: 4,
        text: ' monde.',
        tokens: [5, 6],
        temperature: 0,
        avg_logprob: -0.2,
        compression_ratio: 1.3,
        no_speech_prob: 0.04,
      },
    ]);
  });

  it('gives a translation the language of its output, English, and no usage, as OpenAI does', () => {
    const translation: Transcript = { ...words(), task: 'translate' };
    assert.deepEqual(parse(translation, NONE), {
      task: 'translate',
      language: 'english',
      duration: 4.0001,
      text: 'Bonjour tout le monde.',
    });
    assert.equal(render(translation, 'json'), '{"text":"Bonjour tout le monde."}');
  });

  it('flattens trimmed words and omits segments when only word granularity is asked', () => {
    const body = parse(words(), WORDS);
    assert.deepEqual(body, {
      task: 'transcribe',
      language: 'french',
      duration: 4.0001,
      text: 'Bonjour tout le monde.',
      words: [
        { word: 'Bonjour', start: 0, end: 0.6 },
        { word: 'tout', start: 0.6, end: 1.2 },
        { word: 'monde.', start: 2, end: 4 },
      ],
      usage: { type: 'duration', seconds: 5 },
    });
    assert.deepEqual(Object.keys(body), ['task', 'language', 'duration', 'text', 'words', 'usage']);
  });

  it('puts segments before words when both are asked', () => {
    const body = parse(words(), BOTH);
    assert.deepEqual(Object.keys(body), ['task', 'language', 'duration', 'text', 'segments', 'words', 'usage']);
    assert.equal((body.segments as unknown[]).length, 3);
    assert.equal((body.words as unknown[]).length, 3);
  });

  it('reports the transcribe task and passes an unknown language code through', () => {
    const body = parse(transcript([segment(0, 1, ' Hi.')], 1, 'xx'), NONE);
    assert.equal(body.task, 'transcribe');
    assert.equal(body.language, 'xx');
  });
});

describe('languages', () => {
  it('lists the 100 faster-whisper codes', () => {
    assert.equal(supportedLanguageCodes.length, 100);
    assert.equal(new Set(supportedLanguageCodes).size, 100);
    assert.equal(supportedLanguageCodes[0], 'af');
    assert.equal(supportedLanguageCodes.at(-1), 'yue');
    for (const code of ['haw', 'jw', 'yue', 'ba', 'ht', 'my', 'nn'])
      assert.ok(supportedLanguageCodes.includes(code), code);
  });

  it('names languages as whisper does', () => {
    assert.equal(languageName('en'), 'english');
    assert.equal(languageName('zh'), 'chinese');
    assert.equal(languageName('jw'), 'javanese');
    assert.equal(languageName('haw'), 'hawaiian');
    assert.equal(languageName('yue'), 'cantonese');
    assert.equal(languageName('ht'), 'haitian creole');
    assert.equal(languageName('my'), 'myanmar');
    assert.equal(languageName('es'), 'spanish');
    assert.equal(languageName('nn'), 'nynorsk');
    assert.equal(languageName('ps'), 'pashto');
    assert.equal(languageName('ba'), 'bashkir');
    assert.equal(languageName('xx'), 'xx');
    assert.equal(languageName('constructor'), 'constructor');
  });

  it('has a name for every code that normalises back to the code', () => {
    for (const code of supportedLanguageCodes) {
      const name = languageName(code);
      assert.notEqual(name, code, code);
      assert.equal(normaliseLanguage(name), code, name);
      assert.equal(normaliseLanguage(code), code, code);
    }
  });

  it('normalises codes case-insensitively and trimmed', () => {
    assert.equal(normaliseLanguage('en'), 'en');
    assert.equal(normaliseLanguage(' EN '), 'en');
    assert.equal(normaliseLanguage('Yue'), 'yue');
    assert.equal(normaliseLanguage('HAW'), 'haw');
  });

  it('normalises English names case-insensitively', () => {
    assert.equal(normaliseLanguage('English'), 'en');
    assert.equal(normaliseLanguage('CHINESE'), 'zh');
    assert.equal(normaliseLanguage('Haitian Creole'), 'ht');
    assert.equal(normaliseLanguage(' javanese\t'), 'jw');
  });

  it("normalises whisper's aliases", () => {
    const aliases: Record<string, string> = {
      burmese: 'my',
      valencian: 'ca',
      flemish: 'nl',
      haitian: 'ht',
      letzeburgesch: 'lb',
      pushto: 'ps',
      panjabi: 'pa',
      moldavian: 'ro',
      moldovan: 'ro',
      sinhalese: 'si',
      castilian: 'es',
      Mandarin: 'zh',
    };
    for (const [alias, code] of Object.entries(aliases)) assert.equal(normaliseLanguage(alias), code, alias);
  });

  it('returns undefined for unknown input', () => {
    assert.equal(normaliseLanguage('klingon'), undefined);
    assert.equal(normaliseLanguage('xx'), undefined);
    assert.equal(normaliseLanguage(''), undefined);
    assert.equal(normaliseLanguage('en-US'), undefined);
    assert.equal(normaliseLanguage('constructor'), undefined);
    assert.equal(normaliseLanguage('__proto__'), undefined);
  });
});

describe('diarized transcripts', () => {
  const word = (text: string, start: number, end: number, speaker?: string): EngineWord => ({
    word: text,
    start,
    end,
    probability: 0.9,
    ...(speaker !== undefined && { speaker }),
  });
  const labelled = (words: EngineWord[], speaker: string): EngineSegment => ({
    ...segment(words[0]?.start ?? 0, words.at(-1)?.end ?? 0, words.map((w) => w.word).join(''), words),
    speaker,
  });
  // A segment whose last two words are B's, then a segment of B alone.
  const conversation = () =>
    transcript(
      [
        labelled(
          [
            word(' Hello', 0, 0.5, 'A'),
            word(' there.', 0.5, 1.0, 'A'),
            word(' Hi', 1.4, 1.7, 'B'),
            word(' Ada.', 1.7, 2.1, 'B'),
          ],
          'A',
        ),
        labelled([word(' How', 2.5, 2.8, 'B'), word(' are you?', 2.8, 3.4, 'B')], 'B'),
      ],
      3.6,
    );

  it("answers OpenAI's diarized_json: segments split where the speaker changes, numbered seg_N, usage in seconds", () => {
    const body = JSON.parse(render(conversation(), 'diarized_json')) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body), ['task', 'duration', 'text', 'segments', 'usage']);
    assert.equal(body.task, 'transcribe');
    assert.equal(body.duration, 3.6);
    assert.equal(body.text, 'Hello there. Hi Ada. How are you?');
    assert.deepEqual(body.usage, { type: 'duration', seconds: 4 });
    assert.deepEqual(body.segments, [
      { type: 'transcript.text.segment', text: ' Hello there.', speaker: 'A', start: 0, end: 1.0, id: 'seg_0' },
      { type: 'transcript.text.segment', text: ' Hi Ada.', speaker: 'B', start: 1.4, end: 2.1, id: 'seg_1' },
      { type: 'transcript.text.segment', text: ' How are you?', speaker: 'B', start: 2.5, end: 3.4, id: 'seg_2' },
    ]);
    assert.equal(
      renderTranscript(conversation(), 'diarized_json', NONE).contentType,
      'application/json; charset=utf-8',
    );
  });

  it('keeps a segment whole when its words carry no speaker, with the segment speaker', () => {
    const whole = { ...segment(0, 2, ' Two words.', [word(' Two', 0, 1), word(' words.', 1, 2)]), speaker: 'C' };
    assert.deepEqual(speakerSegments(whole), [{ start: 0, end: 2, text: ' Two words.', speaker: 'C' }]);
    assert.deepEqual(speakerSegments(segment(0, 1, ' No words.')), [
      { start: 0, end: 1, text: ' No words.', speaker: 'A' },
    ]);
  });

  it('labels srt cues [A] and vtt cues with a voice span, one cue per speaker part; escapes voice names', () => {
    assert.equal(
      render(conversation(), 'srt'),
      '1\n00:00:00,000 --> 00:00:01,000\n[A] Hello there.\n\n' +
        '2\n00:00:01,400 --> 00:00:02,100\n[B] Hi Ada.\n\n' +
        '3\n00:00:02,500 --> 00:00:03,400\n[B] How are you?\n\n',
    );
    assert.equal(
      render(conversation(), 'vtt'),
      'WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n<v A>Hello there.\n\n' +
        '00:00:01.400 --> 00:00:02.100\n<v B>Hi Ada.\n\n' +
        '00:00:02.500 --> 00:00:03.400\n<v B>How are you?\n\n',
    );
    const odd = transcript([labelled([word(' Yes.', 0, 1, 'Tom & <Jerry>\n')], 'Tom & <Jerry>\n')]);
    assert.equal(render(odd, 'vtt'), 'WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n<v Tom &amp; &lt;Jerry&gt; >Yes.\n\n');
    // Without speakers, cues are unlabelled as before.
    assert.equal(render(transcript([segment(0, 1, ' Plain.')]), 'srt'), '1\n00:00:00,000 --> 00:00:01,000\nPlain.\n\n');
  });
});
