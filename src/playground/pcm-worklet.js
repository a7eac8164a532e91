// The microphone's samples as the realtime API takes them: mono pcm16 at 24 kHz, posted to the page
// 100 ms at a time (2400 samples, 4800 bytes). Runs on the audio thread (an AudioWorklet). The page
// asks for a 24 kHz AudioContext, so usually nothing is resampled here; where the browser keeps the
// device's rate, samples are interpolated linearly to 24 kHz (speech has little above 8 kHz to alias).

const TARGET_RATE = 24_000;
const CHUNK_SAMPLES = 2_400;

class Pcm16Capture extends AudioWorkletProcessor {
  constructor() {
    super();
    /** Input samples per output sample. */
    this.step = sampleRate / TARGET_RATE;
    /** Where the next output sample falls, in input samples from the start of the next block (-1: the last sample of the block before). */
    this.position = 0;
    this.previous = 0;
    this.chunk = new Int16Array(CHUNK_SAMPLES);
    this.filled = 0;
  }

  /** @param {Float32Array[][]} inputs */
  process(inputs) {
    const block = inputs[0]?.[0];
    if (!block || block.length === 0) return true;
    let position = this.position;
    for (;;) {
      const index = Math.floor(position);
      const next = block[index + 1];
      if (next === undefined) break;
      const current = index < 0 ? this.previous : (block[index] ?? 0);
      this.push(current + (next - current) * (position - index));
      position += this.step;
    }
    this.previous = block[block.length - 1] ?? 0;
    this.position = position - block.length;
    return true;
  }

  /** @param {number} sample */
  push(sample) {
    const clamped = Math.max(-1, Math.min(1, sample));
    this.chunk[this.filled++] = clamped < 0 ? clamped * 0x8000 : clamped * 0x7fff;
    if (this.filled === CHUNK_SAMPLES) {
      this.port.postMessage(this.chunk.buffer, [this.chunk.buffer]);
      this.chunk = new Int16Array(CHUNK_SAMPLES);
      this.filled = 0;
    }
  }
}

registerProcessor('pcm16-capture', Pcm16Capture);
