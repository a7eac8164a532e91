// faster-whisper's own answers on real recordings, for the live-transcription tests: its decoding (PyAV),
// its Silero VAD probabilities and speech timestamps, and FFmpeg's G.711 (test/support/silero_reference.py,
// run with the project's Python).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { projectRoot, projectVenvPython, workerEnvironment } from '../../src/paths.ts';

const script = path.join(projectRoot, 'test', 'support', 'silero_reference.py');
export const testAudio = (name: string) => path.join(projectRoot, 'test', 'audio', name);

function runReference(args: string[], input?: Uint8Array | Float32Array): Buffer {
  const result = spawnSync(projectVenvPython, [script, ...args], {
    cwd: projectRoot,
    env: workerEnvironment(),
    ...(input && { input: Buffer.from(input.buffer, input.byteOffset, input.byteLength) }),
    maxBuffer: 1 << 30,
    timeout: 120_000,
  });
  if (result.status !== 0) {
    throw new Error(
      `silero_reference.py ${args.join(' ')} failed: ${result.error?.message ?? result.stderr.toString()}`,
    );
  }
  return result.stdout;
}

function float32s(bytes: Buffer): Float32Array {
  const copy = new Float32Array(bytes.length / 4);
  for (let i = 0; i < copy.length; i++) copy[i] = bytes.readFloatLE(i * 4);
  return copy;
}

/** A recording decoded by faster_whisper.decode_audio: mono float32 at `sampleRate` (pcm16 values / 32768). */
export function decodeAudio(file: string, sampleRate: number): Float32Array {
  return float32s(runReference(['decode', file, String(sampleRate)]));
}

export type G711Codec = 'pcm_mulaw' | 'pcm_alaw';

/** A recording decoded at 8 kHz and encoded by FFmpeg's G.711 encoder. */
export function encodeG711(file: string, codec: G711Codec): Buffer {
  return runReference(['g711-encode', file, codec]);
}

/** G.711 bytes decoded by FFmpeg's decoder. */
export function decodeG711(bytes: Uint8Array, codec: G711Codec): Int16Array {
  const out = runReference(['g711-decode', codec], bytes);
  const samples = new Int16Array(out.length / 2);
  for (let i = 0; i < samples.length; i++) samples[i] = out.readInt16LE(i * 2);
  return samples;
}

/** faster-whisper's SileroVADModel on 16 kHz audio: the probability of every complete 512-sample chunk. */
export function referenceProbabilities(samples: Float32Array): Float32Array {
  return float32s(runReference(['probs'], samples));
}

/** faster-whisper's get_speech_timestamps (speech_pad_ms 0), in ms. */
export function referenceSpeech(
  samples: Float32Array,
  threshold: number,
  minSilenceMs: number,
): { startMs: number; endMs: number }[] {
  const speeches = JSON.parse(
    runReference(['speech', String(threshold), String(minSilenceMs)], samples).toString(),
  ) as {
    start: number;
    end: number;
  }[];
  return speeches.map(({ start, end }) => ({ startMs: start / 16, endMs: end / 16 }));
}

/** Silence (zeros) of this many ms at 16 kHz. */
export const silence16k = (ms: number) => new Float32Array((ms * 16_000) / 1000);

export function concat(...parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
