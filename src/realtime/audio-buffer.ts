// A session's input audio buffer: 16 kHz samples addressed by their index in the session's audio
// (so VAD times and buffer positions are one number), holding what has not been committed or dropped.

export class AudioBuffer {
  private chunks: Float32Array[] = [];
  /** Session index of the first sample held. */
  private first = 0;
  private held = 0;

  /** Session index one past the last sample received. */
  get end(): number {
    return this.first + this.held;
  }

  /** Session index of the first sample still held. */
  get start(): number {
    return this.first;
  }

  append(samples: Float32Array): void {
    if (samples.length === 0) return;
    this.chunks.push(samples);
    this.held += samples.length;
  }

  /** The samples in [from, to) that are still held, in one array. */
  slice(from: number, to: number = this.end): Float32Array {
    const begin = Math.max(from, this.first);
    const finish = Math.min(to, this.end);
    const out = new Float32Array(Math.max(0, finish - begin));
    let offset = this.first;
    for (const chunk of this.chunks) {
      const chunkEnd = offset + chunk.length;
      if (chunkEnd > begin && offset < finish) {
        const a = Math.max(begin, offset) - offset;
        const b = Math.min(finish, chunkEnd) - offset;
        out.set(chunk.subarray(a, b), offset + a - begin);
      }
      offset = chunkEnd;
    }
    return out;
  }

  /** Forgets the samples before `index` (they were committed, or are older than any turn needs). */
  dropBefore(index: number): void {
    while (this.chunks.length > 0 && this.first < index) {
      const chunk = this.chunks[0]!;
      const drop = Math.min(chunk.length, index - this.first);
      if (drop === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(drop);
      this.first += drop;
      this.held -= drop;
    }
  }

  /** Forgets everything held; the session's audio clock goes on. */
  clear(): void {
    this.dropBefore(this.end);
  }
}
