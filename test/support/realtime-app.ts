// The stub app (test/support/stub-app.ts) with a minimal realtime route, for tests of the WebSocket
// handshake alone: keys, subprotocols, ephemeral keys, TLS. The route answers one message, what the key
// check left on the request, and closes. A WebSocket client helper reports either the open socket
// (its subprotocol and that message) or the HTTP answer that refused the upgrade.
import websocket from '@fastify/websocket';
import type { FastifyPluginAsync } from 'fastify';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { ApiError } from '../../src/api-errors.ts';
import { REALTIME_ROUTE } from '../../src/realtime/client-secrets.ts';
import { selectSubprotocol, type SessionConfig } from '../../src/realtime/protocol.ts';
import { stubApp, type StubApp } from './stub-app.ts';

export interface RealtimeStub extends StubApp {
  /** `http://127.0.0.1:PORT` (https with TLS). */
  url: string;
  /** While true, the route refuses upgrades with 429 too_many_sessions (after the key check). */
  full: { value: boolean };
}

/** What the route tells the client: the key check's results (as JSON: undefined fields left out). */
export interface RouteReport {
  apiKeyId: string | null;
  ephemeralSession: {
    config: Partial<SessionConfig>;
    dialect: string;
    sessionId: string;
    mintedBy?: string;
  } | null;
}

export async function realtimeStub(
  env: Record<string, string> = {},
  deps: Parameters<typeof stubApp>[1] = {},
): Promise<RealtimeStub> {
  const full = { value: false };
  // In place of the real route (realtime/route.ts): one message, what the key check left on the request.
  const realtimeRoute: FastifyPluginAsync = async (app) => {
    await app.register(websocket, { options: { handleProtocols: (offered) => selectSubprotocol(offered) } });
    app.get(
      REALTIME_ROUTE,
      {
        websocket: true,
        preHandler: async () => {
          if (full.value) throw new ApiError('too_many_sessions', { max: 1 });
        },
      },
      (socket, request) => {
        socket.send(
          JSON.stringify({ apiKeyId: request.apiKeyId ?? null, ephemeralSession: request.ephemeralSession ?? null }),
        );
        socket.close(1000);
      },
    );
  };
  const stub = await stubApp(env, { ...deps, realtimeRoute });
  await stub.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = stub.app.server.address() as AddressInfo;
  return { ...stub, url: `${deps.tls ? 'https' : 'http'}://127.0.0.1:${port}`, full };
}

export type Handshake =
  | { opened: true; protocol: string; report: RouteReport }
  | { opened: false; status: number; body: { error: { message: string; code: string | null; type: string } } };

/** Opens `path` of the stub as a WebSocket (ws:// or wss://) and reports how the handshake went. */
export async function handshake(
  stub: RealtimeStub,
  options: { path?: string; protocols?: string[]; headers?: Record<string, string>; ca?: string } = {},
): Promise<Handshake> {
  const url = stub.url.replace(/^http/, 'ws') + (options.path ?? `${REALTIME_ROUTE}?intent=transcription`);
  const socket = new WebSocket(url, options.protocols ?? [], {
    ...(options.headers && { headers: options.headers }),
    ...(options.ca && { ca: options.ca }),
  });
  return new Promise<Handshake>((resolve, reject) => {
    socket.once('unexpected-response', (request, response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => {
        // ws leaves a refused handshake's connection to the listener of this event.
        request.destroy();
        const refusal = JSON.parse(body) as Extract<Handshake, { opened: false }>['body'];
        resolve({ opened: false, status: response.statusCode ?? 0, body: refusal });
      });
    });
    socket.once('message', (data: Buffer) => {
      const report = JSON.parse(data.toString('utf8')) as RouteReport;
      resolve({ opened: true, protocol: socket.protocol, report });
    });
    socket.once('error', reject);
  }).finally(async () => {
    if (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CLOSING) await once(socket, 'close');
  });
}
