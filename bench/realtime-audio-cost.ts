// What one live session's audio costs the gateway's event loop, per second of audio: the resampler of
// src/realtime/audio.ts (each libsamplerate converter, to show the choice) and Silero VAD
// (src/realtime/vad.ts) at several append sizes, one stream and many interleaved. CPU time of this
// process (user + system), so other work on the machine matters less than for wall time; the load is
// printed. Run: node --import tsx bench/realtime-audio-cost.ts
import libsamplerate from '@alexanderolsen/libsamplerate-js';
import os from 'node:os';
import { sileroVadModelPath } from '../src/engine/index.ts';
import { AudioInput, SAMPLE_RATE } from '../src/realtime/audio.ts';
import { SileroVad, TurnDetector, type VadStream } from '../src/realtime/vad.ts';
import { decodeAudio, testAudio } from '../test/support/reference-audio.ts';

const recording = testAudio('multilingual.mp3'); // 60 s of speech
const cpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

async function measure(what: string, seconds: number, work: () => Promise<void> | void): Promise<void> {
  await work(); // warm up (JIT, first allocations)
  const [load] = os.loadavg();
  const cpu = cpuMs();
  const wall = performance.now();
  await work();
  const perSecond = (cpuMs() - cpu) / seconds;
  const wallPerSecond = (performance.now() - wall) / seconds;
  console.log(
    `${what.padEnd(58)} ${(perSecond * 1000).toFixed(0).padStart(6)} µs CPU / s of audio` +
      `  (wall ${(wallPerSecond * 1000).toFixed(0)} µs; load ${load?.toFixed(2)})`,
  );
}

const at16k = decodeAudio(recording, SAMPLE_RATE);
const seconds = at16k.length / SAMPLE_RATE;

for (const [rate, format] of [
  [24_000, 'audio/pcm'],
  [8_000, 'audio/pcmu'],
] as const) {
  const input = decodeAudio(recording, rate);
  const appendSamples = rate / 10; // 100 ms appends
  for (const [name, type] of Object.entries(libsamplerate.ConverterType)) {
    if (name === 'SRC_ZERO_ORDER_HOLD' || name === 'SRC_LINEAR') continue;
    const converter = await libsamplerate.create(1, rate, SAMPLE_RATE, { converterType: type });
    await measure(`resample ${rate / 1000} kHz → 16 kHz, ${name}, 100 ms appends`, seconds, () => {
      for (let at = 0; at < input.length; at += appendSamples) converter.full(input.subarray(at, at + appendSamples));
    });
  }
  // What AudioInput.push does in all: base64, the samples, the converter it uses.
  const bytesPerSample = format === 'audio/pcm' ? 2 : 1;
  const wire = Buffer.alloc(input.length * bytesPerSample);
  for (let i = 0; i < input.length; i++) {
    if (format === 'audio/pcm') wire.writeInt16LE(Math.round(input[i]! * 32767), i * 2);
    else wire[i] = i & 0xff;
  }
  const payloads: string[] = [];
  for (let at = 0; at < wire.length; at += (rate / 10) * bytesPerSample) {
    payloads.push(wire.subarray(at, at + (rate / 10) * bytesPerSample).toString('base64'));
  }
  const audio = await AudioInput.create(format);
  await measure(`AudioInput.push ${format}, 100 ms appends (all of it)`, seconds, () => {
    for (const payload of payloads) audio.push(payload);
  });
}

const vad = await SileroVad.load(sileroVadModelPath());
async function feed(stream: VadStream, appendMs: number): Promise<void> {
  const size = (appendMs * SAMPLE_RATE) / 1000;
  const detector = new TurnDetector({ threshold: 0.5, prefixPaddingMs: 300, silenceDurationMs: 500 });
  let chunks = 0;
  for (let at = 0; at < at16k.length; at += size) {
    for (const probability of await stream.process(at16k.subarray(at, at + size))) {
      chunks += 1;
      detector.push(probability, chunks * 32);
    }
  }
}
for (const appendMs of [20, 40, 100, 200, 1000]) {
  await measure(`VAD + TurnDetector, one stream, ${appendMs} ms appends`, seconds, () =>
    feed(vad.createStream(), appendMs),
  );
}
for (const streams of [8, 32]) {
  await measure(`VAD, ${streams} streams interleaved, 40 ms appends (per stream)`, seconds * streams, async () => {
    await Promise.all(Array.from({ length: streams }, () => feed(vad.createStream(), 40)));
  });
}
await vad.close();
