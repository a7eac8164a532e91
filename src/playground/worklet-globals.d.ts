// The AudioWorklet global scope (pcm-worklet.js runs there), which TypeScript ships no library for.
// For the type check only: this file is not served.
declare class AudioWorkletProcessor {
  readonly port: MessagePort;
}
declare function registerProcessor(name: string, processor: new () => AudioWorkletProcessor): void;
declare const sampleRate: number;
