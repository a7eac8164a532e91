// The audio of a live session: what a client sends in `input_audio_buffer.append` (base64 of pcm16 at
// 24 kHz or of G.711 at 8 kHz, OpenAI's realtime input formats) turned into what the VAD and Whisper
// take, 16 kHz mono float samples in [-1, 1]; and the WAV a turn's audio is sent to the engine as.
import libsamplerate from '@alexanderolsen/libsamplerate-js';
import alawmulaw from 'alawmulaw';

export const SAMPLE_RATE = 16_000;

/** OpenAI's realtime input formats (the beta names pcm16, g711_ulaw, g711_alaw map to these). */
export type InputAudioFormat = 'audio/pcm' | 'audio/pcmu' | 'audio/pcma';

/** What each format is on the wire: its sample rate and bytes per sample (mono). */
const FORMATS: Record<InputAudioFormat, { rate: number; bytesPerSample: number; name: string }> = {
  'audio/pcm': { rate: 24_000, bytesPerSample: 2, name: 'pcm16 (16-bit little-endian mono, 24 kHz)' },
  'audio/pcmu': { rate: 8_000, bytesPerSample: 1, name: 'G.711 µ-law (8 kHz)' },
  'audio/pcma': { rate: 8_000, bytesPerSample: 1, name: 'G.711 A-law (8 kHz)' },
};

// libsamplerate's medium sinc converter: against the 16 kHz decode of the same recording by PyAV (what
// file transcriptions get), correlation 0.99985 or better from 24 kHz, at about 6.5 ms of CPU per second
// of audio here (the fastest sinc: 0.9996, 3 ms; the best: 21 ms). Its 90 % passband keeps speech up to
// 7.2 kHz, close to what Whisper's features see in files.
const CONVERTER = libsamplerate.ConverterType.SRC_SINC_MEDIUM_QUALITY;

// Standard base64, padded (what btoa, Buffer and Python's b64encode give): Node's decoder would skip
// any other character silently and turn a corrupt payload into noise.
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const NOT_BASE64 = /[^A-Za-z0-9+/=]/;

/** A payload that is not audio of the session's format; the message says what to send instead. */
export class InvalidAudioError extends Error {}

type Resampler = Awaited<ReturnType<typeof libsamplerate.create>>;

/**
 * One session's input audio (a format change makes a new one). Made by `AudioInput.create`:
 * libsamplerate-js builds its converter asynchronously (about 15 ms, a 26 MB WebAssembly heap of which
 * about 2 MB is ever touched; freed by the garbage collector with the object, nothing to close).
 */
export class AudioInput {
  private constructor(
    readonly format: InputAudioFormat,
    private readonly resampler: Resampler,
  ) {}

  static async create(format: InputAudioFormat): Promise<AudioInput> {
    const resampler = await libsamplerate.create(1, FORMATS[format].rate, SAMPLE_RATE, { converterType: CONVERTER });
    return new AudioInput(format, resampler);
  }

  /**
   * One input_audio_buffer.append payload → 16 kHz mono samples in [-1, 1]. The resampler keeps its
   * state across calls, so a stream cut into payloads anywhere gives the samples it gives whole; it
   * holds back its last few milliseconds (its filter's delay, 46 samples at 16 kHz) until more comes.
   */
  push(base64Audio: string): Float32Array {
    const bytes = decodeBase64(base64Audio);
    const { bytesPerSample, name } = FORMATS[this.format];
    if (bytes.length % bytesPerSample !== 0) {
      throw new InvalidAudioError(
        `The audio is ${name}, ${bytesPerSample} bytes a sample, but this payload has ${bytes.length} bytes: ` +
          'send whole samples (an even number of bytes) in each append.',
      );
    }
    return this.resampler.full(this.samplesOf(bytes));
  }

  /** Seconds of input audio a payload of this many decoded bytes is (for usage and limits). */
  secondsOf(decodedBytes: number): number {
    const { rate, bytesPerSample } = FORMATS[this.format];
    return decodedBytes / bytesPerSample / rate;
  }

  private samplesOf(bytes: Buffer): Float32Array {
    switch (this.format) {
      case 'audio/pcm': {
        const samples = new Float32Array(bytes.length / 2);
        for (let i = 0; i < samples.length; i++) samples[i] = bytes.readInt16LE(i * 2) / 32768;
        return samples;
      }
      case 'audio/pcmu':
        return toFloat(alawmulaw.mulaw.decode(bytes));
      case 'audio/pcma':
        return toFloat(alawmulaw.alaw.decode(bytes));
    }
  }
}

function decodeBase64(text: string): Buffer {
  if (text.length % 4 !== 0 || !BASE64.test(text)) {
    const bad = NOT_BASE64.exec(text);
    const where = bad
      ? `character ${bad.index + 1} (${JSON.stringify(bad[0])}) is not one of base64's`
      : text.length % 4 !== 0
        ? `its length (${text.length} characters) is not a multiple of 4`
        : '"=" may only pad its end, at most twice';
    throw new InvalidAudioError(
      `The audio is not valid base64: ${where}. Send the raw audio bytes base64-encoded with the standard ` +
        'alphabet (A-Z a-z 0-9 + /), padded with "=", no line breaks.',
    );
  }
  return Buffer.from(text, 'base64');
}

function toFloat(pcm16: Int16Array): Float32Array {
  const samples = new Float32Array(pcm16.length);
  for (let i = 0; i < pcm16.length; i++) samples[i] = pcm16[i]! / 32768;
  return samples;
}

/**
 * 16 kHz mono samples → a pcm16 little-endian WAV file. By hand: a canonical WAV header is 44 fixed
 * bytes, less code than a dependency's API, and the engine decodes it with FFmpeg like any upload.
 * Samples are scaled by 32768 (clipped), the inverse of the decoding above, so pcm16 input comes back
 * bit for bit.
 */
export function encodeWav16k(samples: Float32Array): Buffer {
  const dataBytes = samples.length * 2;
  const wav = Buffer.alloc(44 + dataBytes);
  wav.write('RIFF', 0, 'ascii');
  wav.writeUInt32LE(36 + dataBytes, 4);
  wav.write('WAVE', 8, 'ascii');
  wav.write('fmt ', 12, 'ascii');
  wav.writeUInt32LE(16, 16); // size of the fmt chunk
  wav.writeUInt16LE(1, 20); // PCM
  wav.writeUInt16LE(1, 22); // mono
  wav.writeUInt32LE(SAMPLE_RATE, 24);
  wav.writeUInt32LE(SAMPLE_RATE * 2, 28); // bytes per second
  wav.writeUInt16LE(2, 32); // bytes per frame
  wav.writeUInt16LE(16, 34); // bits per sample
  wav.write('data', 36, 'ascii');
  wav.writeUInt32LE(dataBytes, 40);
  for (let i = 0; i < samples.length; i++) {
    wav.writeInt16LE(Math.max(-32768, Math.min(32767, Math.round(samples[i]! * 32768))), 44 + i * 2);
  }
  return wav;
}
