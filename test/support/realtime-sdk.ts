// The official Node SDK's realtime clients against a server with a self-signed certificate (the SDK
// always connects with wss://): a browser-style global WebSocket that trusts it, a recorder of every
// server event a client gets (when, the SDK's own errors, the close), and streaming of pcm16 audio in
// input_audio_buffer.append events.
import { Buffer } from 'node:buffer';
import type { OpenAIRealtimeError } from 'openai/realtime/internal-base';
import type { OpenAIRealtimeWebSocket } from 'openai/realtime/websocket';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';
import type { RealtimeServerEvent } from 'openai/resources/realtime/realtime';
import WebSocket from 'ws';
import { sleep } from './processes.ts';

/** The Realtime API's `audio/pcm`: pcm16 LE mono at 24 kHz. */
export const REALTIME_PCM_RATE = 24_000;

/** Silence as `audio/pcm`. */
export const silencePcm16 = (seconds: number) => Buffer.alloc(2 * Math.round(seconds * REALTIME_PCM_RATE));

/**
 * Sets a global `WebSocket` (Node 20 has none; the SDK's browser-style OpenAIRealtimeWebSocket uses it)
 * that is `ws` trusting `ca` alone, with the browser's constructor (url, protocols). Returns the undo.
 */
export function installBrowserWebSocket(ca: string): () => void {
  const global = globalThis as { WebSocket?: unknown };
  const before = global.WebSocket;
  global.WebSocket = class TrustingWebSocket extends WebSocket {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols, { ca });
    }
  };
  return () => {
    global.WebSocket = before;
  };
}

type ServerEventType = RealtimeServerEvent['type'];
export type ServerEventOf<T extends ServerEventType> = Extract<RealtimeServerEvent, { type: T }>;

export interface Received {
  /** ms since the recorder began. */
  at: number;
  event: RealtimeServerEvent;
}

type RealtimeClient = OpenAIRealtimeWS | OpenAIRealtimeWebSocket;

/** Everything one realtime client receives, in order, and waiting for what is to come. */
export class RealtimeRecorder {
  readonly events: Received[] = [];
  /** What the SDK's emitter raised as 'error' (error events from the server, socket errors). */
  readonly errors: OpenAIRealtimeError[] = [];
  /** The socket's close: its code and reason. */
  readonly closed: Promise<{ code: number; reason: string }>;
  private closeSeen = false;
  /** performance.now() when the recorder began (`at` counts from it). */
  readonly began = performance.now();
  private readonly waiters = new Set<() => void>();

  constructor(readonly client: RealtimeClient) {
    client.on('event', (event) => {
      this.events.push({ at: performance.now() - this.began, event });
      this.notify();
    });
    client.on('error', (error) => {
      this.errors.push(error);
      this.notify();
    });
    this.closed = new Promise((resolve) => {
      const done = (code: number, reason: string) => {
        this.closeSeen = true;
        resolve({ code, reason });
        this.notify();
      };
      if (client instanceof OpenAIRealtimeWS) {
        client.socket.on('close', (code, reason) => done(code, reason.toString('utf8')));
      } else {
        (client.socket as unknown as WebSocket).addEventListener('close', (event) => done(event.code, event.reason));
      }
    });
  }

  private notify(): void {
    for (const waiter of this.waiters) waiter();
  }

  of<T extends ServerEventType>(type: T): ServerEventOf<T>[] {
    return this.events.map((r) => r.event).filter((event): event is ServerEventOf<T> => event.type === type);
  }

  types(): string[] {
    return this.events.map((r) => r.event.type);
  }

  /** The completed transcripts, in order. */
  transcripts(): string[] {
    return this.of('conversation.item.input_audio_transcription.completed').map((event) => event.transcript);
  }

  /** The deltas of an item, joined. */
  deltasOf(itemId: string): string {
    return this.of('conversation.item.input_audio_transcription.delta')
      .filter((event) => event.item_id === itemId)
      .map((event) => event.delta)
      .join('');
  }

  /**
   * Resolves once `condition` holds (checked now and at every event, error and the close); rejects if
   * the socket closes first (unless `afterClose`) or after `timeoutMs`, listing what arrived.
   */
  until(condition: () => boolean, what: string, { timeoutMs = 60_000, afterClose = false } = {}): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => finish(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)),
        timeoutMs,
      );
      const finish = (error?: Error) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        if (error) reject(new Error(`${error.message}; received: ${this.types().join(', ')}`));
        else resolve();
      };
      const check = () => {
        if (condition()) finish();
        else if (this.closeSeen && !afterClose) finish(new Error(`the socket closed before ${what}`));
      };
      this.waiters.add(check);
      check();
    });
  }

  /** The first event of this type (and matching `match`), once it has arrived. */
  async next<T extends ServerEventType>(
    type: T,
    { match, timeoutMs }: { match?: (event: ServerEventOf<T>) => boolean; timeoutMs?: number } = {},
  ): Promise<ServerEventOf<T>> {
    const find = () => this.of(type).find((event) => match?.(event) ?? true);
    await this.until(() => find() !== undefined, type, timeoutMs === undefined ? {} : { timeoutMs });
    return find()!;
  }

  /** ms since the recorder began at which the first event matching `predicate` arrived. */
  arrivedAt(predicate: (event: RealtimeServerEvent) => boolean): number | undefined {
    return this.events.find((r) => predicate(r.event))?.at;
  }
}

/**
 * Sends `pcm` as input_audio_buffer.append events of `appendSeconds` each; `pace` = seconds of wall
 * clock per second of audio (0: as fast as the socket takes them).
 */
export async function streamPcm16(
  client: RealtimeClient,
  pcm: Buffer,
  { pace = 0, appendSeconds = 0.1 }: { pace?: number; appendSeconds?: number } = {},
): Promise<void> {
  const step = 2 * Math.round(REALTIME_PCM_RATE * appendSeconds);
  const started = performance.now();
  for (let offset = 0; offset < pcm.length; offset += step) {
    client.send({ type: 'input_audio_buffer.append', audio: pcm.subarray(offset, offset + step).toString('base64') });
    if (pace > 0) {
      const due = started + (pace * 1000 * (offset + step)) / (2 * REALTIME_PCM_RATE);
      await sleep(Math.max(0, due - performance.now()));
    } else if (offset % (step * 10) === 0) {
      // Let the socket's writes and the incoming events through now and then.
      await sleep(0);
    }
  }
}

/** An upgrade the server refused with an HTTP answer: its status and OpenAI-shaped error body. */
export interface RefusedUpgrade {
  status: number;
  body: { error: { message: string; type: string; code: string | null } };
}

/**
 * The HTTP answer that refuses the upgrade of an OpenAIRealtimeWS's socket (read through ws's
 * 'unexpected-response', which leaves the connection to its listener; the SDK then reports an error).
 * Call right after constructing the client, before its handshake is answered.
 */
export function refusedUpgrade(client: OpenAIRealtimeWS): Promise<RefusedUpgrade> {
  return new Promise((resolve, reject) => {
    client.socket.once('open', () => reject(new Error('the upgrade was accepted')));
    client.socket.once('unexpected-response', (request, response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => {
        request.destroy();
        try {
          resolve({ status: response.statusCode ?? 0, body: JSON.parse(body) as RefusedUpgrade['body'] });
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      });
    });
  });
}
