// Live transcription from the microphone over earshot's realtime WebSocket (README, "Live
// transcription"): the microphone's audio as 24 kHz pcm16 appends, 100 ms at a time; the server's
// voice detection cuts it into turns and sends each turn's words while it is spoken, then its
// transcript. The socket opens with an ephemeral key minted for it (a browser cannot set headers, and
// the API key itself never goes into a WebSocket subprotocol).
import { mintClientSecret, parseJson } from './api.js';

const RATE = 24_000;
// Sent at the end, as a pause would be: the server's voice detection then ends the turn being spoken
// (after its 500 ms of silence) and transcribes it.
const CLOSING_SILENCE_SECONDS = 1;
const FINISH_TIMEOUT_MS = 20_000;

/**
 * @typedef {{ type: string, item_id?: string, delta?: string, transcript?: string,
 *   error?: { message: string, code?: string | null } }} RealtimeEvent
 * @typedef {{ model: string, language: string, prompt: string }} LiveSettings
 */

/** @param {ArrayBuffer} buffer */
function base64(buffer) {
  const bytes = new Uint8Array(buffer);
  let binary = '';
  for (let at = 0; at < bytes.length; at += 0x8000) binary += String.fromCharCode(...bytes.subarray(at, at + 0x8000));
  return btoa(binary);
}

/**
 * Opens the realtime socket with an ephemeral key; rejects if it closes before opening (a browser
 * tells no more than the close code: the key was minted just before, so a refusal is rare).
 * @param {string} key
 * @returns {Promise<WebSocket>}
 */
function openSocket(key) {
  const url = new URL('/v1/realtime?intent=transcription', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const socket = new WebSocket(url, ['realtime', `openai-insecure-api-key.${key}`]);
  return new Promise((resolve, reject) => {
    socket.addEventListener('open', () => resolve(socket), { once: true });
    socket.addEventListener(
      'close',
      (event) => reject(new Error(`The realtime connection was refused (WebSocket close ${event.code}).`)),
      { once: true },
    );
  });
}

/** One live session: the microphone, the socket, the turns still being transcribed. */
export class LiveTranscription {
  /**
   * @param {{ onEvent: (event: RealtimeEvent) => void, onClose: (why: string | undefined) => void }} handlers
   *   onClose: why the server ended the session; undefined when stop() did
   */
  constructor(handlers) {
    this.handlers = handlers;
    /** @type {MediaStream | undefined} */
    this.stream = undefined;
    /** @type {AudioContext | undefined} */
    this.context = undefined;
    /** @type {WebSocket | undefined} */
    this.socket = undefined;
    /** Turns started (or committed) and not yet completed or failed. @type {Set<string>} */
    this.pending = new Set();
    /** @type {(() => void) | undefined} */
    this.onSettled = undefined;
    this.stopping = false;
  }

  /** @param {LiveSettings} settings */
  async start(settings) {
    if (!window.isSecureContext || !navigator.mediaDevices) {
      throw new Error(
        'Browsers give the microphone only to pages served over HTTPS or from localhost: open the playground that way (README, "HTTPS").',
      );
    }
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
    try {
      const transcription = {
        model: settings.model,
        ...(settings.language !== '' && { language: settings.language }),
        ...(settings.prompt !== '' && { prompt: settings.prompt }),
      };
      const key = await mintClientSecret({
        type: 'transcription',
        audio: {
          input: { format: { type: 'audio/pcm', rate: RATE }, transcription, turn_detection: { type: 'server_vad' } },
        },
      });
      const socket = await openSocket(key);
      this.socket = socket;
      socket.addEventListener('message', (message) => this.receive(message));
      socket.addEventListener('close', (event) => {
        this.releaseAudio();
        this.onSettled?.();
        this.handlers.onClose(this.stopping ? undefined : event.reason || `the connection closed (${event.code})`);
      });
      await this.capture(this.stream);
    } catch (error) {
      this.releaseAudio();
      this.socket?.close();
      throw error;
    }
  }

  /** @param {MessageEvent} message */
  receive(message) {
    if (typeof message.data !== 'string') return;
    const event = /** @type {RealtimeEvent} */ (parseJson(message.data));
    const item = event.item_id;
    if (item !== undefined) {
      if (event.type === 'input_audio_buffer.speech_started' || event.type === 'input_audio_buffer.committed') {
        this.pending.add(item);
      } else if (
        event.type === 'conversation.item.input_audio_transcription.completed' ||
        event.type === 'conversation.item.input_audio_transcription.failed'
      ) {
        this.pending.delete(item);
        if (this.pending.size === 0) this.onSettled?.();
      }
    }
    this.handlers.onEvent(event);
  }

  /**
   * The microphone through an AudioWorklet that posts pcm16 chunks, each sent as an append. A 24 kHz
   * context, where the browser allows one from this device; else the worklet resamples.
   * @param {MediaStream} stream
   */
  async capture(stream) {
    let context = new AudioContext({ sampleRate: RATE });
    let source;
    try {
      source = context.createMediaStreamSource(stream);
    } catch {
      await context.close();
      context = new AudioContext();
      source = context.createMediaStreamSource(stream);
    }
    this.context = context;
    await context.audioWorklet.addModule('/playground/pcm-worklet.js');
    const capture = new AudioWorkletNode(context, 'pcm16-capture', { channelCount: 1, channelCountMode: 'explicit' });
    capture.port.onmessage = (message) => {
      if (message.data instanceof ArrayBuffer) this.append(message.data);
    };
    source.connect(capture);
    // Its output is silence; connected so that the graph keeps pulling it.
    capture.connect(context.destination);
    if (context.state === 'suspended') await context.resume();
  }

  /** @param {ArrayBuffer} pcm16 little-endian, as the worklet writes it (every platform a browser runs on) */
  append(pcm16) {
    if (this.socket?.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify({ type: 'input_audio_buffer.append', audio: base64(pcm16) }));
    }
  }

  releaseAudio() {
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.stream = undefined;
    void this.context?.close().catch(() => undefined);
    this.context = undefined;
  }

  /** Stops the microphone, lets the turn being spoken finish and be transcribed, then closes. */
  async stop() {
    this.stopping = true;
    this.releaseAudio();
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      this.handlers.onClose(undefined);
      return;
    }
    this.append(new Int16Array(RATE * CLOSING_SILENCE_SECONDS).buffer);
    // The server's answers to the last appends (a turn committed by the silence) are on their way.
    await new Promise((resolve) => setTimeout(resolve, 800));
    if (this.pending.size > 0) {
      await new Promise((resolve) => {
        this.onSettled = () => resolve(undefined);
        setTimeout(resolve, FINISH_TIMEOUT_MS);
      });
    }
    socket.close(1000, 'stopped');
  }
}
