// The realtime route at shutdown (app.close, as on SIGTERM) with a turn whose decode outlasts Fastify's
// pluginTimeout: Fastify bounds preClose hooks by it, and a drain awaited there failed the whole close
// (the server exited 1, and the turn was cut). The engine is a stand-in whose one job is held until
// the test releases it; everything else (the route, the session, the VAD) is real.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import Fastify from 'fastify';
import WebSocket from 'ws';
import { loadConfig } from '../../src/config.ts';
import type { Engine, EngineSegment, JobRequest, ModelRegistry, Transcript } from '../../src/engine/index.ts';
import { realtimeRoutes } from '../../src/realtime/route.ts';
import { describeApi } from '../../src/server/api-docs.ts';
import type { RequestSummary } from '../../src/server/context.ts';
import { sleep } from '../support/processes.ts';

const PLUGIN_TIMEOUT_MS = 200;
const TEXT = ' Ask not what your country can do for you.';

/** An engine whose jobs wait for `release()`, then answer TEXT as one segment. */
function heldEngine() {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const jobs: JobRequest[] = [];
  const engine = {
    async transcribe(_model: unknown, job: JobRequest, signal?: AbortSignal): Promise<Transcript> {
      jobs.push(job);
      await released;
      signal?.throwIfAborted();
      const segment = { text: TEXT } as EngineSegment;
      job.listener?.onSegment?.(segment);
      return { task: 'transcribe', info: {} as Transcript['info'], segments: [segment] };
    },
  };
  return { engine: engine as unknown as Engine, jobs, release };
}

test('a drain longer than Fastify’s pluginTimeout finishes the turn, closes with 1001, and the close succeeds', async () => {
  const { engine, jobs, release } = heldEngine();
  const app = Fastify({ pluginTimeout: PLUGIN_TIMEOUT_MS });
  // The route's schema refers to the API description's shared schemas.
  await describeApi(app);
  app.decorateRequest('summary', null as unknown as RequestSummary);
  app.addHook('onRequest', async (request) => {
    request.summary = {};
  });
  const registry = { resolve: async () => ({ id: 'base', source: { kind: 'bundled' } }) } as unknown as ModelRegistry;
  let file = 0;
  await app.register(realtimeRoutes, {
    config: loadConfig([], {}),
    engine,
    registry,
    newFilePath: () => path.join(os.tmpdir(), `earshot-shutdown-test-${process.pid}-${file++}.wav`),
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;

  const socket = new WebSocket(`ws://127.0.0.1:${port}/v1/realtime?intent=transcription`);
  const events: { type: string; transcript?: string }[] = [];
  socket.on('message', (data: Buffer) => events.push(JSON.parse(data.toString('utf8')) as { type: string }));
  const closed = once(socket, 'close') as Promise<[number, Buffer]>;
  await once(socket, 'open');
  socket.send(
    JSON.stringify({
      type: 'session.update',
      session: { type: 'transcription', audio: { input: { turn_detection: null } } },
    }),
  );
  // Half a second of a 440 Hz tone at 24 kHz, committed by hand: one turn, its decode held.
  const pcm = Buffer.alloc(2 * 12_000);
  for (let i = 0; i < 12_000; i++)
    pcm.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / 24_000)), 2 * i);
  socket.send(JSON.stringify({ type: 'input_audio_buffer.append', audio: pcm.toString('base64') }));
  socket.send(JSON.stringify({ type: 'input_audio_buffer.commit' }));
  while (jobs.length === 0) await sleep(10);

  const closing = app.close();
  closing.catch(() => undefined);
  // Past the plugin timeout, the turn still decoding.
  await sleep(PLUGIN_TIMEOUT_MS * 3);
  release();
  await assert.doesNotReject(closing);
  const [code] = await closed;
  assert.equal(code, 1001);
  const completed = events.find((e) => e.type === 'conversation.item.input_audio_transcription.completed');
  assert.equal(completed?.transcript, TEXT.trim(), `events: ${events.map((e) => e.type).join(', ')}`);
});
