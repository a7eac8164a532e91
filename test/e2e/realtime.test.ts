// Live transcription with the official Node SDK's realtime clients against the real server over wss://
// (the SDK knows no other) with a self-signed certificate the clients trust, on real recordings:
// OpenAIRealtimeWS with server VAD over several turns, a manual commit with logprobs, the metrics and
// the log line of each session, SIGTERM with sessions mid-turn; and with keys on, the browser-style
// OpenAIRealtimeWebSocket (key as subprotocol), a wrong key, ephemeral keys (one session, reuse, expiry).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI, { APIConnectionError } from 'openai';
import { OpenAIRealtimeWebSocket } from 'openai/realtime/websocket';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';
import type { ClientSecretCreateResponse } from 'openai/resources/realtime/client-secrets';
import type {
  RealtimeTranscriptionSessionAudioInput,
  RealtimeTranscriptionSessionCreateRequest,
} from 'openai/resources/realtime/realtime';
import { sleep, waitUntil } from '../support/processes.ts';
import {
  installBrowserWebSocket,
  RealtimeRecorder,
  refusedUpgrade,
  type ServerEventOf,
  silencePcm16,
  streamPcm16,
} from '../support/realtime-sdk.ts';
import { decodePcm16, testAudio } from '../support/reference-audio.ts';
import { JFK_TEXT, startServer, type RunningServer } from '../support/server.ts';
import { normalise, wordErrorRate } from '../support/text.ts';
import { fetchTrusting, httpsGet, selfSignedCertificate, type Certificate } from '../support/tls.ts';

/** The model the Node SDK puts in the URL (it always puts one): a realtime model earshot does not serve. */
const URL_MODEL = 'gpt-realtime';
const COMPLETED = 'conversation.item.input_audio_transcription.completed';
const DELTA = 'conversation.item.input_audio_transcription.delta';
const ONE_WORKER = { EARSHOT_WORKERS_PER_MODEL: '1' };

/** A GA transcription session: pcm16 at 24 kHz, English, whisper-1 (earshot's default model). */
function transcriptionSession(
  input: RealtimeTranscriptionSessionAudioInput = {},
  include?: RealtimeTranscriptionSessionCreateRequest['include'],
): RealtimeTranscriptionSessionCreateRequest {
  return {
    type: 'transcription',
    audio: {
      input: {
        format: { type: 'audio/pcm', rate: 24000 },
        transcription: { model: 'whisper-1', language: 'en' },
        ...input,
      },
    },
    ...(include && { include }),
  };
}

/** OpenAIRealtimeWS on `server` (trusting its certificate), recorded from the start. */
function connectWS(server: RunningServer, apiKey = 'not-needed'): RealtimeRecorder {
  const client = new OpenAI({ baseURL: server.baseURL, apiKey });
  return new RealtimeRecorder(new OpenAIRealtimeWS({ model: URL_MODEL, options: { ca: server.ca! } }, client));
}

/** Every turn begun is committed and completed (or failed). */
function allTurnsDone(live: RealtimeRecorder): boolean {
  const done = live.of(COMPLETED).length + live.of('conversation.item.input_audio_transcription.failed').length;
  const committed = live.of('input_audio_buffer.committed').length;
  return done >= 1 && done === committed && committed === live.of('input_audio_buffer.speech_started').length;
}

async function metricsOf(server: RunningServer): Promise<string> {
  const response = await httpsGet(`${server.url}/metrics`, server.ca!);
  assert.equal(response.status, 200);
  return response.body;
}

/** The value of one sample line (`name{labels} value`) of the metrics text; 0 if absent. */
function sample(metrics: string, series: string): number {
  const line = metrics.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

/**
 * The `sess_…` id a session.created carries, as api.openai.com's does (the SDK types the event's
 * session as the create request, which has no id).
 */
const sessionId = (created: ServerEventOf<'session.created'>) => (created.session as { id?: string }).id ?? '';

let jfk: Buffer;
let hotwords: Buffer;
let certificate: Certificate;

before(async () => {
  jfk = decodePcm16(testAudio('jfk.flac'));
  hotwords = decodePcm16(testAudio('hotwords.mp3'));
  certificate = await selfSignedCertificate();
});

describe('realtime transcription with OpenAIRealtimeWS over wss://', () => {
  let server: RunningServer;
  let tmpDir: string;
  /** session.created's id → the completed turns the client saw, for the log lines. */
  const sessions = new Map<string, number>();

  before(async () => {
    tmpDir = mkdtempSync(path.join(os.tmpdir(), 'earshot-e2e-rt-'));
    server = await startServer({ ...ONE_WORKER, EARSHOT_TMP_DIR: tmpDir }, { tls: certificate });
  });

  after(async () => {
    try {
      assert.equal(await server.stop(), 0);
      assert.deepEqual(readdirSync(tmpDir), [], 'the upload directory is removed at shutdown');
    } finally {
      rmSync(tmpDir, { recursive: true, force: true });
    }
  });

  it('GA session (model in the URL, session.update of type transcription, server VAD) over several turns', async () => {
    const live = connectWS(server);
    assert.equal(live.client.url.protocol, 'wss:');
    assert.equal(live.client.url.searchParams.get('model'), URL_MODEL);
    assert.equal(live.client.url.searchParams.get('intent'), null);
    const created = await live.next('session.created');
    live.client.send({ type: 'session.update', session: transcriptionSession() });
    const updated = await live.next('session.updated');
    assert.equal(updated.session.type, 'transcription');
    // JFK (who pauses between his phrases), a pause, another speaker, a pause; at twice real time.
    const audio = Buffer.concat([silencePcm16(0.5), jfk, silencePcm16(1.5), hotwords, silencePcm16(1.5)]);
    await streamPcm16(live.client, audio, { pace: 0.5 });
    // Client events are handled in order: `cleared` says the server has read all the audio (the last
    // turn ended in the silence before it).
    live.client.send({ type: 'input_audio_buffer.clear' });
    await live.next('input_audio_buffer.cleared');
    await live.until(() => allTurnsDone(live), 'every turn completed');
    live.client.close();
    await live.closed;

    assert.deepEqual(live.errors, [], 'the SDK raised no error');
    assert.equal(live.types()[0], 'session.created');
    const started = live.of('input_audio_buffer.speech_started');
    const stopped = live.of('input_audio_buffer.speech_stopped');
    const committed = live.of('input_audio_buffer.committed');
    assert.ok(started.length >= 2, `several turns: ${live.types().join(', ')}`);
    assert.equal(stopped.length, started.length);
    assert.equal(committed.length, started.length);
    // Per turn, in order: started, stopped, committed, each naming the turn's item.
    assert.deepEqual(
      stopped.map((e) => e.item_id),
      started.map((e) => e.item_id),
    );
    assert.deepEqual(
      committed.map((e) => e.item_id),
      started.map((e) => e.item_id),
    );
    for (const [i, start] of started.entries()) {
      const at = (type: string) =>
        live.arrivedAt((e) => e.type === type && 'item_id' in e && e.item_id === start.item_id)!;
      assert.ok(at('input_audio_buffer.speech_started') <= at('input_audio_buffer.speech_stopped'));
      assert.ok(at('input_audio_buffer.speech_stopped') <= at('input_audio_buffer.committed'));
      assert.ok(start.audio_start_ms < stopped[i]!.audio_end_ms);
    }
    assert.equal(committed[0]!.previous_item_id, null);
    assert.deepEqual(
      committed.slice(1).map((e) => e.previous_item_id),
      committed.slice(0, -1).map((e) => e.item_id),
    );
    const completed = live.of(COMPLETED);
    assert.deepEqual(
      completed.map((e) => e.item_id),
      committed.map((e) => e.item_id),
    );
    for (const [i, event] of completed.entries()) {
      // The deltas of a turn put together are its transcript, exactly.
      assert.equal(live.deltasOf(event.item_id), event.transcript);
      // A turn's words come after the turn before it is completed (its partials may be decoded sooner).
      const firstDelta = live.events.findIndex((r) => r.event.type === DELTA && r.event.item_id === event.item_id);
      const previousDone =
        i === 0
          ? -1
          : live.events.findIndex((r) => r.event.type === COMPLETED && r.event.item_id === completed[i - 1]!.item_id);
      if (firstDelta !== -1)
        assert.ok(previousDone < firstDelta, `turn ${i}: a delta before the turn before it was completed`);
      assert.ok(event.usage.type === 'duration' && event.usage.seconds >= 1, JSON.stringify(event.usage));
    }
    const transcripts = live.transcripts();
    assert.ok(wordErrorRate(JFK_TEXT, transcripts.slice(0, -1).join(' ')) <= 0.15, transcripts.join(' | '));
    assert.match(normalise(transcripts.at(-1)!), /folder/, transcripts.join(' | '));
    assert.ok(
      live.events.every(
        (r) => 'event_id' in r.event && typeof r.event.event_id === 'string' && r.event.event_id !== '',
      ),
      'every server event has an event_id',
    );
    sessions.set(sessionId(created), completed.length);
  });

  it('manual commit with include logprobs: the completed turn carries its tokens', async () => {
    const live = connectWS(server);
    const created = await live.next('session.created');
    live.client.send({
      type: 'session.update',
      session: transcriptionSession({ turn_detection: null }, ['item.input_audio_transcription.logprobs']),
    });
    const updated = await live.next('session.updated');
    assert.deepEqual(updated.session.type === 'transcription' && updated.session.include, [
      'item.input_audio_transcription.logprobs',
    ]);
    await streamPcm16(live.client, jfk);
    live.client.send({ type: 'input_audio_buffer.commit' });
    const completed = await live.next(COMPLETED);
    live.client.close();
    await live.closed;

    assert.deepEqual(live.errors, []);
    assert.deepEqual(live.of('input_audio_buffer.speech_started'), []);
    const [committed] = live.of('input_audio_buffer.committed');
    assert.equal(completed.item_id, committed?.item_id);
    assert.ok(wordErrorRate(JFK_TEXT, completed.transcript) <= 0.15, completed.transcript);
    assert.equal(live.deltasOf(completed.item_id), completed.transcript);
    const logprobs = completed.logprobs ?? [];
    assert.ok(logprobs.length > 10, JSON.stringify(completed));
    for (const { token, logprob, bytes } of logprobs) {
      assert.equal(typeof token, 'string');
      assert.ok(Number.isFinite(logprob) && logprob <= 0, String(logprob));
      assert.deepEqual(bytes, [...Buffer.from(token, 'utf8')]);
    }
    // The tokens spell the transcript (its leading space aside, which the first delta drops).
    assert.equal(
      logprobs
        .map((p) => p.token)
        .join('')
        .trim(),
      completed.transcript,
    );
    sessions.set(sessionId(created), 1);
  });

  it('counts sessions and turns in the metrics, and logs one line per session with its turns', async () => {
    await waitUntil(
      async () => sample(await metricsOf(server), 'earshot_realtime_sessions') === 0,
      10_000,
      'no session is open',
    );
    const metrics = await metricsOf(server);
    const turns = [...sessions.values()].reduce((a, b) => a + b, 0);
    assert.equal(sample(metrics, 'earshot_realtime_turns_total{outcome="completed"}'), turns);
    assert.equal(sample(metrics, 'earshot_realtime_turn_latency_seconds_count'), turns);
    assert.ok(sample(metrics, 'earshot_realtime_turn_latency_seconds_sum') > 0);
    for (const [id, completed] of sessions) {
      const lines = server.logs.filter((e) => e.msg === 'realtime session done' && e.session === id);
      assert.equal(lines.length, 1, `one line for ${id}`);
      assert.equal(lines[0]!.turns, completed);
      assert.equal(lines[0]!.failedTurns, 0);
      assert.equal(lines[0]!.closeCode, 1000);
    }
    // As HTTP requests, the sessions were upgrades (101), not clients that went away (499).
    assert.equal(
      sample(metrics, 'earshot_http_requests_total{route="/v1/realtime",method="GET",status="101"}'),
      sessions.size,
    );
    assert.equal(sample(metrics, 'earshot_http_requests_total{route="/v1/realtime",method="GET",status="499"}'), 0);
    assert.equal(sample(metrics, 'earshot_http_errors_total{route="/v1/realtime",kind="client_disconnected"}'), 0);
    const requestLines = server.logs.filter((e) => e.msg === 'request done' && e.route === '/v1/realtime');
    assert.deepEqual(
      requestLines.map((e) => [e.status, e.error]),
      [...sessions.keys()].map(() => [101, undefined]),
    );
  });

  it('SIGTERM with two sessions mid-turn: each turn completes, then the socket closes with 1001', async () => {
    // One session has committed a long buffer by hand; the other is mid-word under server VAD (the first
    // 1.5 s of JFK: "And so my fellow…"), with no audio after, so only the shutdown can end its turn.
    const manual = connectWS(server);
    const vad = connectWS(server);
    await Promise.all([manual.next('session.created'), vad.next('session.created')]);
    manual.client.send({ type: 'session.update', session: transcriptionSession({ turn_detection: null }) });
    vad.client.send({ type: 'session.update', session: transcriptionSession() });
    await Promise.all([manual.next('session.updated'), vad.next('session.updated')]);
    await streamPcm16(manual.client, Buffer.concat([hotwords, jfk]));
    manual.client.send({ type: 'input_audio_buffer.commit' });
    await streamPcm16(vad.client, jfk.subarray(0, 2 * Math.round(24_000 * 1.5)));
    await Promise.all([manual.next('input_audio_buffer.committed'), vad.next('input_audio_buffer.speech_started')]);
    const from = server.logs.length;
    const exited = once(server.process, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    const signalledAt = performance.now() - vad.began;
    server.process.kill('SIGTERM');

    const [manualClose, vadClose] = await Promise.all([manual.closed, vad.closed]);
    for (const [live, close] of [
      [manual, manualClose],
      [vad, vadClose],
    ] as const) {
      assert.equal(close.code, 1001, `${close.code} ${close.reason}`);
      assert.deepEqual(live.errors, []);
      const committed = live.of('input_audio_buffer.committed');
      const completed = live.of(COMPLETED);
      assert.deepEqual(
        completed.map((e) => e.item_id),
        committed.map((e) => e.item_id),
        `every turn committed completed: ${live.types().join(', ')}`,
      );
      for (const event of completed) assert.equal(live.deltasOf(event.item_id), event.transcript);
    }
    assert.match(normalise(manual.transcripts().join(' ')), /folder.*fellow americans/);
    // The VAD session's turn was ended by the shutdown: it stopped after the signal, and was transcribed.
    const [started] = vad.of('input_audio_buffer.speech_started');
    assert.equal(vad.of('input_audio_buffer.speech_stopped').length, 1);
    const stoppedAt = vad.arrivedAt((e) => e.type === 'input_audio_buffer.speech_stopped');
    assert.ok(stoppedAt !== undefined && stoppedAt >= signalledAt, `${stoppedAt} ${signalledAt}`);
    assert.deepEqual(
      vad.of(COMPLETED).map((e) => e.item_id),
      [started?.item_id],
    );
    assert.match(normalise(vad.transcripts()[0]!), /and so my/);
    assert.deepEqual(await exited, [0, null]);
    assert.equal(
      server.logs.slice(from).filter((e) => e.msg === 'realtime session done').length,
      2,
      'both sessions logged as done',
    );
    assert.deepEqual(readdirSync(tmpDir), [], 'the upload directory is removed');
  });
});

describe('realtime keys: API key as the browser subprotocol, ephemeral keys', () => {
  const API_KEY = 'sk-earshot-realtime-test-key';
  let server: RunningServer;
  let client: OpenAI;
  let restoreWebSocket: () => void;
  /** Minted first with the shortest lifetime the API allows (10 s), tried last. */
  let expiring: ClientSecretCreateResponse;

  before(async () => {
    server = await startServer({ ...ONE_WORKER, EARSHOT_API_KEYS: API_KEY }, { tls: certificate });
    client = new OpenAI({ baseURL: server.baseURL, apiKey: API_KEY, fetch: fetchTrusting(server.ca!), maxRetries: 0 });
    restoreWebSocket = installBrowserWebSocket(server.ca!);
    expiring = await client.realtime.clientSecrets.create({
      expires_after: { anchor: 'created_at', seconds: 10 },
      session: transcriptionSession(),
    });
  });

  after(async () => {
    restoreWebSocket();
    assert.equal(await server.stop(), 0);
  });

  /** The browser-style client (key as the `openai-insecure-api-key.KEY` subprotocol), recorded. */
  function connectBrowser(apiKey: string): RealtimeRecorder {
    const browserClient = new OpenAI({ baseURL: server.baseURL, apiKey, dangerouslyAllowBrowser: true });
    return new RealtimeRecorder(new OpenAIRealtimeWebSocket({ model: URL_MODEL }, browserClient));
  }

  it('the certificate is really checked: a client that does not trust it cannot connect', async () => {
    const untrusting = new OpenAI({ baseURL: server.baseURL, apiKey: API_KEY, maxRetries: 0 });
    await assert.rejects(untrusting.models.list(), APIConnectionError);
  });

  it('OpenAIRealtimeWebSocket with the API key as subprotocol: `realtime` selected, transcribes', async () => {
    const live = connectBrowser(API_KEY);
    await live.next('session.created');
    assert.equal((live.client.socket as { protocol: string }).protocol, 'realtime');
    live.client.send({ type: 'session.update', session: transcriptionSession({ turn_detection: null }) });
    await live.next('session.updated');
    await streamPcm16(live.client, hotwords);
    live.client.send({ type: 'input_audio_buffer.commit' });
    const completed = await live.next(COMPLETED);
    live.client.close();
    await live.closed;
    assert.match(normalise(completed.transcript), /folder/);
    assert.deepEqual(live.errors, []);
  });

  it('a wrong key: the upgrade is refused with 401, no session starts', async () => {
    const live = connectBrowser('sk-wrong-key-0000');
    const close = await live.closed;
    assert.deepEqual(live.types(), []);
    assert.equal(live.errors.length, 1);
    assert.match(live.errors[0]!.message, /Unexpected server response: 401/);
    assert.notEqual(close.code, 1000);
  });

  it('an ephemeral key opens one session, which starts with its config and transcribes; used again, 401', async () => {
    const secret = await client.realtime.clientSecrets.create({
      session: {
        type: 'transcription',
        audio: { input: { transcription: { model: 'whisper-1', language: 'en' } } },
      },
    });
    assert.match(secret.value, /^ek_/);
    assert.ok(secret.expires_at > Date.now() / 1000);
    // What a browser does: the ephemeral key as the subprotocol, no session.update.
    const live = connectBrowser(secret.value);
    const created = await live.next('session.created');
    assert.equal(created.session.type, 'transcription');
    assert.equal(sessionId(created), secret.session.id);
    const input = created.session.type === 'transcription' ? created.session.audio?.input : undefined;
    assert.deepEqual(input?.transcription, { model: 'whisper-1', language: 'en', prompt: null });
    assert.equal(input?.turn_detection?.type, 'server_vad');
    await streamPcm16(live.client, Buffer.concat([hotwords, silencePcm16(1.5)]));
    const completed = await live.next(COMPLETED);
    live.client.close();
    await live.closed;
    assert.match(normalise(completed.transcript), /folder/);
    assert.deepEqual(live.errors, []);

    // Used again (as a server-side client would, in the Authorization header): refused at the upgrade.
    const again = new OpenAIRealtimeWS(
      { model: URL_MODEL, options: { ca: server.ca! } },
      new OpenAI({ baseURL: server.baseURL, apiKey: secret.value }),
    );
    const errors: unknown[] = [];
    again.on('error', (error) => errors.push(error));
    const refusal = await refusedUpgrade(again);
    assert.equal(refusal.status, 401);
    assert.equal(refusal.body.error.code, 'invalid_client_secret');
    assert.match(refusal.body.error.message, /has already opened a session/);
    assert.ok(!refusal.body.error.message.includes(secret.value), 'the key is not repeated whole');
  });

  it('an expired ephemeral key is refused with 401', async () => {
    const expiresAtMs = expiring.expires_at * 1000;
    await sleep(Math.max(0, expiresAtMs - Date.now() + 100));
    const late = new OpenAIRealtimeWS(
      { model: URL_MODEL, options: { ca: server.ca! } },
      new OpenAI({ baseURL: server.baseURL, apiKey: expiring.value }),
    );
    late.on('error', () => undefined);
    const refusal = await refusedUpgrade(late);
    assert.equal(refusal.status, 401);
    assert.equal(refusal.body.error.code, 'invalid_client_secret');
    assert.match(refusal.body.error.message, /expired at/);
  });
});
