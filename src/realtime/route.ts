// GET /v1/realtime: OpenAI's realtime API for transcription sessions, over a WebSocket. Thin glue
// between the socket and a TranscriptionSession; auth happens on the upgrade request (plugins/auth.ts).
import websocket from '@fastify/websocket';
import type { FastifyInstance } from 'fastify';
import type { RawData, WebSocket } from 'ws';
import { ApiError } from '../api-errors.ts';
import { sileroVadModelPath } from '../engine/index.ts';
import { realtimeSchema } from '../server/api-schemas.ts';
import type { AppDependencies } from '../server/context.ts';
import { REALTIME_ROUTE } from './client-secrets.ts';
import * as protocol from './protocol.ts';
import { TranscriptionSession } from './session.ts';
import { SileroVad } from './vad.ts';

export interface RealtimeDependencies extends AppDependencies {
  newFilePath(): string;
}

/** A text message's payload as ws hands it over (one Buffer, unless fragmented). */
function textOf(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  return Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]).toString('utf8');
}

export async function realtimeRoutes(app: FastifyInstance, deps: RealtimeDependencies): Promise<void> {
  const { config } = deps;
  const sessions = new Set<TranscriptionSession>();
  // Loaded at the first session, once: HTTP-only use of the server never pays for it.
  let vad: Promise<SileroVad> | undefined;
  const loadVad = () => (vad ??= SileroVad.load(sileroVadModelPath()));
  let draining = false;

  await app.register(websocket, {
    options: {
      maxPayload: config.realtimeMaxFrameBytes,
      handleProtocols: (offered) => protocol.selectSubprotocol(offered),
    },
    // Shutdown: each open session finishes the turn in flight, then closes with 1001. Not awaited:
    // Fastify bounds preClose hooks by its pluginTimeout (10 s) and fails the whole close past it,
    // while a drain may take longer (turns queued behind others on a busy worker). The server's
    // close waits for the sockets anyway, within the shutdown grace period (EARSHOT_SHUTDOWN_GRACE_MS).
    preClose: async () => {
      draining = true;
      for (const session of sessions) {
        session.drain().catch((error: unknown) => app.log.error({ session: session.id, err: error }, 'drain failed'));
      }
    },
  });

  app.get(
    REALTIME_ROUTE,
    {
      websocket: true,
      schema: realtimeSchema,
      // @fastify/websocket hides its routes from the API's description; this one is the API.
      config: { swaggerTransform: ({ schema, url }) => ({ schema: { ...schema, hide: false }, url }) },
      preValidation: async (request) => {
        if (draining) throw new ApiError('server_not_ready', { whileReceiving: true });
        if (sessions.size >= config.realtimeMaxSessions) {
          throw new ApiError('too_many_sessions', { max: config.realtimeMaxSessions });
        }
        request.summary.task = 'realtime';
      },
    },
    // Synchronous: a message that arrives before its listener is attached would be lost.
    (socket: WebSocket, request) => {
      request.summary.upgraded = true;
      const query = request.query as Record<string, string | undefined>;
      const ephemeral = request.ephemeralSession;
      const initial = {
        config: ephemeral?.config ?? protocol.DEFAULT_SESSION_CONFIG,
        dialect: ephemeral?.dialect ?? protocol.upgradeDialect(request.headers),
        id: ephemeral?.sessionId,
      };
      // ?intent=transcription, or no intent and a session.update of type transcription to come; any
      // other intent is a conversation, which earshot does not serve.
      const refusal =
        query.intent !== undefined && query.intent !== 'transcription'
          ? new ApiError('unsupported_value', { asked: 'conversation_session' }, { param: 'intent' })
          : undefined;
      const log = request.log;
      const session = new TranscriptionSession(
        {
          engine: deps.engine,
          registry: deps.registry,
          vad: loadVad,
          newFilePath: () => deps.newFilePath(),
          defaultModel: config.defaultModel,
          firstWordsMinProbability: config.realtimeFirstWordsMinProbability,
          limits: {
            maxSessionSeconds: config.realtimeMaxSessionSeconds,
            idleSeconds: config.realtimeIdleSeconds,
            maxTurnSeconds: config.realtimeMaxTurnSeconds,
          },
          metrics: deps.metrics,
          log,
        },
        {
          send: (event) => {
            if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(event));
          },
          close: (code, reason) => socket.close(code, reason),
        },
        initial,
      );
      sessions.add(session);
      deps.metrics?.realtimeSessionOpened();
      log.info({ session: session.id, dialect: initial.dialect }, 'realtime session open');
      socket.on('message', (data, isBinary) => session.receive(isBinary ? undefined : textOf(data)));
      socket.on('close', (code) => {
        sessions.delete(session);
        deps.metrics?.realtimeSessionClosed();
        void session.dispose(code);
      });
      // A frame over the size limit: ws closes the socket with 1009 itself.
      socket.on('error', (error) => log.info({ session: session.id, err: error.message }, 'realtime socket error'));
      session.start({ refusal, urlModel: query.model });
    },
  );
}
