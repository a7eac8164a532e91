// GET /v1/realtime: OpenAI's realtime API for transcription sessions, over a WebSocket. Thin glue
// between the socket and a TranscriptionSession; auth happens on the upgrade request (plugins/auth.ts).
import websocket from '@fastify/websocket';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { ApiError } from '../api-errors.ts';
import type { AppDependencies } from '../server/context.ts';
import * as protocol from './protocol.ts';
import { TranscriptionSession } from './session.ts';
import type { SileroVad } from './vad.ts';

export interface RealtimeDependencies extends AppDependencies {
  vad: SileroVad;
  newFilePath(): string;
}

/** Which dialect a client speaks from the start: OpenAI's beta clients send `OpenAI-Beta: realtime=v1`. */
function dialectOf(request: FastifyRequest): protocol.Dialect {
  return /realtime=v1/i.test(String(request.headers['openai-beta'] ?? '')) ? 'beta' : 'ga';
}

export async function realtimeRoutes(app: FastifyInstance, deps: RealtimeDependencies): Promise<void> {
  const { config } = deps;
  const sessions = new Set<TranscriptionSession>();
  let draining = false;

  await app.register(websocket, {
    options: { maxPayload: config.realtimeMaxFrameBytes, handleProtocols: protocol.selectSubprotocol },
    // Shutdown: each open session finishes the turn in flight, then closes with 1001.
    preClose: async () => {
      draining = true;
      await Promise.all([...sessions].map((session) => session.drain()));
    },
  });

  app.get(
    '/v1/realtime',
    {
      websocket: true,
      preValidation: async (request) => {
        if (draining) throw new ApiError('server_not_ready', { whileReceiving: true });
        if (sessions.size >= config.realtimeMaxSessions) {
          throw new ApiError('too_many_sessions', { max: config.realtimeMaxSessions });
        }
        request.summary.task = 'realtime';
      },
    },
    async (socket: WebSocket, request) => {
      const query = request.query as Record<string, string | undefined>;
      const initial = protocol.initialSession({
        ephemeral: request.ephemeralSession,
        urlModel: query.model && (await deps.registry.resolve(query.model)) ? query.model : undefined,
        intent: query.intent,
        dialect: dialectOf(request),
      });
      const log = request.log;
      const session = new TranscriptionSession(
        {
          engine: deps.engine,
          registry: deps.registry,
          vad: deps.vad,
          newFilePath: deps.newFilePath,
          defaultModel: config.defaultModel,
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
      socket.on('message', (data, isBinary) => session.receive(isBinary ? undefined : data.toString()));
      socket.on('close', (code) => {
        sessions.delete(session);
        deps.metrics?.realtimeSessionClosed();
        void session.dispose(code);
      });
      // A frame over the size limit: ws closes the socket with 1009 itself.
      socket.on('error', (error) => log.info({ session: session.id, err: error.message }, 'realtime socket error'));
      session.start();
    },
  );
}
