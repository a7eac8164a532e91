// Silero VAD in the gateway (src/realtime/vad.ts) against faster-whisper's own SileroVADModel and
// get_speech_timestamps, on real recordings; and the turn rules (OpenAI's server_vad) on their own.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sileroVadModelPath } from '../../src/engine/index.ts';
import { SAMPLE_RATE } from '../../src/realtime/audio.ts';
import {
  SileroVad,
  TurnDetector,
  VAD_CHUNK_MS,
  VAD_CHUNK_SAMPLES,
  type TurnDetectorOptions,
  type TurnEvent,
  type VadStream,
} from '../../src/realtime/vad.ts';
import {
  concat,
  decodeAudio,
  referenceProbabilities,
  referenceSpeech,
  silence16k,
  testAudio,
} from '../support/reference-audio.ts';

let vad: SileroVad;
before(async () => {
  vad = await SileroVad.load(sileroVadModelPath());
});
after(() => vad.close());

const OPENAI_DEFAULTS: TurnDetectorOptions = { threshold: 0.5, prefixPaddingMs: 300, silenceDurationMs: 500 };
// JFK with silence around it: four utterances, the gaps between them 1.09 s, 1.09 s and 0.61 s.
let jfkPadded: Float32Array | undefined;
const jfk = () =>
  (jfkPadded ??= concat(silence16k(1000), decodeAudio(testAudio('jfk.flac'), SAMPLE_RATE), silence16k(2000)));

/** Uneven pieces, as appends resampled to 16 kHz come: under, at and over a chunk, and a long one. */
const PIECES = [1, 100, 511, 512, 513, 2000, 7, 4096, 320];

/** Every call made before any is awaited (calls of one stream may overlap); the results in order. */
async function probabilities(stream: VadStream, samples: Float32Array): Promise<Float32Array> {
  const calls: Promise<Float32Array>[] = [];
  for (let at = 0, i = 0; at < samples.length; i++) {
    const size = PIECES[i % PIECES.length]!;
    calls.push(stream.process(samples.subarray(at, at + size)));
    at += size;
  }
  return concat(...(await Promise.all(calls)));
}

function assertClose(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: number of chunks`);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  assert.ok(worst <= 1e-3, `${what}: a probability differs from faster-whisper's by ${worst}`);
}

test("the stream's probabilities are faster-whisper's, chunk by chunk, fed in uneven pieces", async () => {
  const samples = jfk();
  const expected = referenceProbabilities(samples);
  assert.equal(expected.length, Math.floor(samples.length / VAD_CHUNK_SAMPLES));
  // Speech and silence both: the comparison is not of two flat lines.
  assert.ok(expected.some((p) => p > 0.9) && expected.some((p) => p < 0.05));
  assertClose(await probabilities(vad.createStream(), samples), expected, 'jfk.flac');
});

test('streams share the model but not their state: two recordings interleaved give their own probabilities', async () => {
  const first = jfk();
  const second = decodeAudio(testAudio('stereo_diarization.wav'), SAMPLE_RATE);
  const [a, b] = await Promise.all([
    probabilities(vad.createStream(), first),
    probabilities(vad.createStream(), second),
  ]);
  assertClose(a, referenceProbabilities(first), 'jfk.flac beside another stream');
  assertClose(b, referenceProbabilities(second), 'stereo_diarization.wav beside another stream');
});

interface Turn {
  /** The start of the chunk where speech was detected; audioStartMs is this less the padding. */
  speechMs: number;
  audioStartMs: number;
  audioEndMs?: number;
  /** The end of the chunk where the stop was decided. */
  stoppedAtMs?: number;
}

/**
 * The turns a detector finds in 16 kHz audio, fed through a VAD stream as a session feeds it; with
 * what holds for every turn checked on the way: events alternate, the padding reaches back
 * prefixPaddingMs but not before 0 or the previous stop, and the silence that ends a turn was
 * announced (silenceStartedMs) on the chunks before.
 */
async function turns(samples: Float32Array, options: TurnDetectorOptions): Promise<Turn[]> {
  const detector = new TurnDetector(options);
  const found: Turn[] = [];
  let chunks = 0;
  for (const probability of await probabilities(vad.createStream(), samples)) {
    chunks += 1;
    const chunkEndMs = chunks * VAD_CHUNK_MS;
    const silenceBefore = detector.silenceStartedMs;
    for (const event of detector.push(probability, chunkEndMs)) {
      const last = found.at(-1);
      if (event.type === 'speech_started') {
        assert.ok(!last || last.stoppedAtMs !== undefined, 'speech started twice');
        const speechMs = chunkEndMs - VAD_CHUNK_MS;
        const earliest = Math.max(last?.stoppedAtMs ?? 0, speechMs - options.prefixPaddingMs, 0);
        assert.equal(event.audioStartMs, earliest);
        found.push({ speechMs, audioStartMs: event.audioStartMs });
      } else {
        assert.ok(last && last.stoppedAtMs === undefined, 'speech stopped without a start');
        assert.equal(event.audioEndMs, silenceBefore);
        assert.ok(chunkEndMs - event.audioEndMs >= options.silenceDurationMs);
        last.audioEndMs = event.audioEndMs;
        last.stoppedAtMs = chunkEndMs;
      }
    }
  }
  return found;
}

/** The same turns as faster-whisper's speech timestamps, each start and end within 100 ms. */
function assertSameTurns(actual: Turn[], expected: { startMs: number; endMs: number }[]): void {
  assert.equal(
    actual.length,
    expected.length,
    `turns ${JSON.stringify(actual)}, faster-whisper ${JSON.stringify(expected)}`,
  );
  for (const [i, turn] of actual.entries()) {
    const reference = expected[i]!;
    assert.ok(
      Math.abs(turn.speechMs - reference.startMs) <= 100,
      `turn ${i} starts ${turn.speechMs}, ${reference.startMs}`,
    );
    assert.ok(
      turn.audioEndMs !== undefined && Math.abs(turn.audioEndMs - reference.endMs) <= 100,
      `turn ${i} ends ${turn.audioEndMs}, ${reference.endMs}`,
    );
  }
}

test("jfk.flac padded with silence: OpenAI's default turns, where faster-whisper's VAD puts the speech", async () => {
  const samples = jfk();
  const found = await turns(samples, OPENAI_DEFAULTS);
  const expected = referenceSpeech(samples, 0.5, 500);
  assert.equal(expected.length, 4);
  assertSameTurns(found, expected);
  // The first turn's audio starts 300 ms before its speech, inside the leading second of silence.
  assert.equal(found[0]!.audioStartMs, found[0]!.speechMs - 300);
  assert.ok(found[0]!.audioStartMs > 1000 - 300);
});

test('a turn needs silence_duration_ms of silence to stop: longer silences merge utterances as faster-whisper does', async () => {
  const samples = jfk();
  // 700 ms: the 0.61 s gap no longer ends a turn; 1200 ms: none of them does.
  for (const [silenceDurationMs, count] of [
    [700, 3],
    [1200, 1],
  ] as const) {
    const expected = referenceSpeech(samples, 0.5, silenceDurationMs);
    assert.equal(expected.length, count, `faster-whisper at ${silenceDurationMs} ms`);
    assertSameTurns(await turns(samples, { ...OPENAI_DEFAULTS, silenceDurationMs }), expected);
  }
});

test('two recordings with 1.5 s of silence between them are two turns, at their times', async () => {
  const samples = concat(
    silence16k(500),
    decodeAudio(testAudio('hotwords.mp3'), SAMPLE_RATE),
    silence16k(1500),
    decodeAudio(testAudio('stereo_diarization.wav'), SAMPLE_RATE),
    silence16k(1000),
  );
  const expected = referenceSpeech(samples, 0.5, 800);
  assert.equal(expected.length, 2);
  assertSameTurns(await turns(samples, { threshold: 0.5, prefixPaddingMs: 100, silenceDurationMs: 800 }), expected);
});

/** A detector fed these probabilities, one per 32 ms chunk from 0. */
function feed(options: TurnDetectorOptions, probabilities: number[]): { events: TurnEvent[]; atChunk: number[] } {
  const detector = new TurnDetector(options);
  const events: TurnEvent[] = [];
  const atChunk: number[] = [];
  probabilities.forEach((p, i) => {
    for (const event of detector.push(p, (i + 1) * VAD_CHUNK_MS)) {
      events.push(event);
      atChunk.push(i);
    }
  });
  return { events, atChunk };
}

const repeat = (p: number, n: number) => Array<number>(n).fill(p);

test('stopping: exactly silence_duration_ms of silence, counted from the first chunk under the exit threshold', () => {
  // Speech in chunks 10–19, silence from chunk 20 (640 ms). 500 ms = 15.6 chunks: the 16th silent chunk.
  const { events, atChunk } = feed(OPENAI_DEFAULTS, [...repeat(0.05, 10), ...repeat(0.9, 10), ...repeat(0.05, 30)]);
  assert.deepEqual(events, [
    { type: 'speech_started', audioStartMs: 320 - 300 },
    { type: 'speech_stopped', audioEndMs: 640 },
  ]);
  assert.deepEqual(atChunk, [10, 35]);
  // 15 silent chunks (480 ms) are not enough.
  assert.deepEqual(feed(OPENAI_DEFAULTS, [...repeat(0.9, 10), ...repeat(0.05, 15)]).events, [
    { type: 'speech_started', audioStartMs: 0 },
  ]);
});

test('hysteresis: a dip between the exit threshold and the threshold neither starts nor resets a silence', () => {
  const detector = new TurnDetector(OPENAI_DEFAULTS); // exit threshold 0.35
  let ms = 0;
  const push = (p: number) => detector.push(p, (ms += VAD_CHUNK_MS));
  assert.equal(detector.speaking, false);
  assert.equal(push(0.49).length, 0); // not yet speech
  assert.equal(push(0.5)[0]?.type, 'speech_started');
  assert.equal(detector.speaking, true);
  for (let i = 0; i < 40; i++) assert.deepEqual(push(0.4), []); // a long dip is still the turn
  assert.equal(detector.silenceStartedMs, undefined);
  push(0.3); // under 0.35: silence begins at this chunk's start
  const silenceStart = ms - VAD_CHUNK_MS;
  assert.equal(detector.silenceStartedMs, silenceStart);
  push(0.45); // not speech enough to end the silence
  assert.equal(detector.silenceStartedMs, silenceStart);
  push(0.5); // speech again
  assert.equal(detector.silenceStartedMs, undefined);
  // Threshold 0.1: the exit threshold stays above 0 (0.01, as faster-whisper's).
  const low = feed({ ...OPENAI_DEFAULTS, threshold: 0.1 }, [0.2, ...repeat(0.02, 20)]);
  assert.deepEqual(low.events, [{ type: 'speech_started', audioStartMs: 0 }]);
});

test('the prefix padding stops at 0 and at the end of the turn before', () => {
  const options = { threshold: 0.5, prefixPaddingMs: 1000, silenceDurationMs: 200 };
  // Speech at 64 ms: padded start 0. Silence from 128 ms; the stop is decided at the end of chunk 10
  // (352 ms). Speech again at chunk 16 (512 ms): its padding would reach back to −488, but the audio
  // before 352 went with the turn before.
  const { events } = feed(options, [0, 0, 0.9, 0.9, ...repeat(0, 10), 0, 0, 0.9]);
  assert.deepEqual(events, [
    { type: 'speech_started', audioStartMs: 0 },
    { type: 'speech_stopped', audioEndMs: 128 },
    { type: 'speech_started', audioStartMs: 352 },
  ]);
});
