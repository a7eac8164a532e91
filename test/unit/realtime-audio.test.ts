// A live session's input audio (src/realtime/audio.ts) on real recordings, against faster-whisper's own
// decoding (PyAV) of the same files and FFmpeg's G.711.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { AudioInput, encodeWav16k, InvalidAudioError, SAMPLE_RATE } from '../../src/realtime/audio.ts';
import { concat, decodeAudio, decodeG711, encodeG711, testAudio, type G711Codec } from '../support/reference-audio.ts';

const jfk = testAudio('jfk.flac');

/** Float samples (pcm16 values / 32768, as decode_audio gives them) as pcm16 little-endian bytes. */
function pcm16Bytes(samples: Float32Array): Buffer {
  const bytes = Buffer.alloc(samples.length * 2);
  for (let i = 0; i < samples.length; i++) bytes.writeInt16LE(Math.round(samples[i]! * 32768), i * 2);
  return bytes;
}

/** The bytes cut into payloads of these sizes, in turn, to the end. */
function pieces(bytes: Buffer, sizes: number[]): string[] {
  const payloads: string[] = [];
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const size = sizes[i % sizes.length]!;
    payloads.push(bytes.subarray(at, at + size).toString('base64'));
    at += size;
  }
  return payloads;
}

function pushAll(input: AudioInput, payloads: string[]): Float32Array {
  return concat(...payloads.map((payload) => input.push(payload)));
}

function correlation(a: Float32Array, b: Float32Array): number {
  const n = Math.min(a.length, b.length);
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < n; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return ab / Math.sqrt(aa * bb);
}

test('pcm16 at 24 kHz, appended in pieces, is the 16 kHz decode of the same recording', async () => {
  const reference = decodeAudio(jfk, SAMPLE_RATE);
  const input = await AudioInput.create('audio/pcm');
  // 20 ms, 100 ms, one sample, an odd 4 ms: as clients send it.
  const samples = pushAll(input, pieces(pcm16Bytes(decodeAudio(jfk, 24_000)), [960, 4800, 2, 194]));
  assert.ok(Math.abs(samples.length - reference.length) < 100, `${samples.length} samples, ${reference.length}`);
  const r = correlation(samples, reference);
  assert.ok(r > 0.9999, `correlation with PyAV's 16 kHz decode: ${r}`);
  assert.ok(samples.every((s) => s >= -1 && s <= 1));
});

test('chunked input gives the samples one push gives, up to what the resampler still holds', async () => {
  const bytes = pcm16Bytes(decodeAudio(jfk, 24_000));
  const whole = (await AudioInput.create('audio/pcm')).push(bytes.toString('base64'));
  const chunked = pushAll(await AudioInput.create('audio/pcm'), pieces(bytes, [2, 962, 4802, 38, 19_200]));
  // Its filter's delay: 46 samples at 16 kHz (2.9 ms) wait for more input.
  assert.ok(whole.length - chunked.length >= 0 && whole.length - chunked.length < 100);
  assert.ok(whole.length > 170_000);
  let worst = 0;
  for (let i = 0; i < chunked.length; i++) worst = Math.max(worst, Math.abs(whole[i]! - chunked[i]!));
  assert.ok(worst < 1e-6, `largest difference ${worst}`);
});

for (const [format, codec] of [
  ['audio/pcmu', 'pcm_mulaw'],
  ['audio/pcma', 'pcm_alaw'],
] as const satisfies [string, G711Codec][]) {
  test(`${format}: G.711 from FFmpeg's encoder decodes as FFmpeg does and is the recording at 16 kHz`, async () => {
    const g711 = encodeG711(jfk, codec);
    assert.equal(g711.length, 88_000);
    // The decoded law is FFmpeg's exactly: a 16-bit value per byte, then resampled (8 kHz → 16 kHz).
    const ffmpeg = decodeG711(g711, codec);
    const eightKHz = await AudioInput.create(format);
    const samples = pushAll(eightKHz, pieces(g711, [160, 800, 1, 33]));
    assert.ok(Math.abs(samples.length - 2 * ffmpeg.length) < 100);
    const reference16k = decodeAudio(jfk, SAMPLE_RATE);
    const r = correlation(samples, reference16k);
    // 8-bit companding and an 8 kHz band: close to, not the same as, the full recording.
    assert.ok(r > 0.995, `correlation with the 16 kHz decode: ${r}`);
    const everySecond = samples.filter((_, i) => i % 2 === 0);
    assert.ok(
      correlation(
        everySecond,
        Float32Array.from(ffmpeg, (v) => v / 32768),
      ) > 0.99,
    );
    // The other law read as this one is noise, not the recording.
    const wrong = pushAll(await AudioInput.create(format === 'audio/pcmu' ? 'audio/pcma' : 'audio/pcmu'), [
      g711.toString('base64'),
    ]);
    assert.ok(correlation(wrong, reference16k) < 0.9);
  });
}

test('G.711 decodes each byte as FFmpeg does', async () => {
  const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  for (const [format, codec] of [
    ['audio/pcmu', 'pcm_mulaw'],
    ['audio/pcma', 'pcm_alaw'],
  ] as const) {
    const ffmpeg = decodeG711(every, codec);
    // A long run of each byte: the resampler's output settles on the byte's value (to 1e-5, far under
    // the smallest step between two codes, 2.4e-4).
    const input = await AudioInput.create(format);
    for (let byte = 0; byte < 256; byte++) {
      const out = input.push(Buffer.alloc(400, byte).toString('base64'));
      const settled = out[Math.floor(out.length / 2)]!;
      assert.ok(Math.abs(settled - ffmpeg[byte]! / 32768) < 1e-5, `${format} byte ${byte}: ${settled}`);
    }
  }
});

test('bad base64 and half samples are refused with a message that says what to send', async () => {
  const input = await AudioInput.create('audio/pcm');
  const good = pcm16Bytes(decodeAudio(jfk, 24_000).subarray(0, 24_000));
  const expected = (await AudioInput.create('audio/pcm')).push(good.toString('base64'));
  const refusals: [string, RegExp][] = [
    ['AAAA-AAA', /character 5 \("-"\) is not one of base64's/],
    ['AAAA AAA', /character 5 \(" "\)/],
    ['AAAA\nAAA', /character 5 \("\\n"\)/],
    ['AAAAAAA', /length \(7 characters\) is not a multiple of 4/],
    ['AA=AAAAA', /"=" may only pad its end/],
    ['A===', /"=" may only pad its end/],
    ['AAAAAA-_', /character 7 \("-"\)/], // base64url is not base64
  ];
  for (const [payload, message] of refusals) {
    assert.throws(
      () => input.push(payload),
      (error: Error) =>
        error instanceof InvalidAudioError && message.test(error.message) && /standard alphabet/.test(error.message),
      payload,
    );
  }
  assert.throws(
    () => input.push(Buffer.alloc(4801).toString('base64')),
    (error: Error) =>
      error instanceof InvalidAudioError &&
      /pcm16 .*2 bytes a sample, but this payload has 4801 bytes: send whole samples/.test(error.message),
  );
  // A refused payload leaves the stream as it was.
  assert.deepEqual(input.push(good.toString('base64')), expected);
  assert.equal(input.push('').length, 0);
});

test('seconds of input audio by format', async () => {
  assert.equal((await AudioInput.create('audio/pcm')).secondsOf(48_000), 1);
  assert.equal((await AudioInput.create('audio/pcmu')).secondsOf(4_000), 0.5);
  assert.equal((await AudioInput.create('audio/pcma')).secondsOf(8_000), 1);
});

test('encodeWav16k writes a WAV that FFmpeg reads back sample for sample', () => {
  const samples = decodeAudio(jfk, SAMPLE_RATE);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'earshot-wav-'));
  try {
    const file = path.join(dir, 'turn.wav');
    const wav = encodeWav16k(samples);
    assert.equal(wav.length, 44 + samples.length * 2);
    writeFileSync(file, wav);
    assert.deepEqual(decodeAudio(file, SAMPLE_RATE), samples);
    // Out of range is clipped, not wrapped.
    const clipped = encodeWav16k(Float32Array.from([1.5, -1.5, 1, -1]));
    assert.deepEqual(
      [0, 1, 2, 3].map((i) => clipped.readInt16LE(44 + 2 * i)),
      [32767, -32768, 32767, -32768],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
