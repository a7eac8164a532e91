// The Fastify application: limits, auth, CORS, the one error handler that speaks OpenAI's error
// shape, one log line and one metrics sample per request, routes. Built by a factory so tests can
// start it on a free port.
import cors from '@fastify/cors';
import multipart from '@fastify/multipart';
import rateLimit from '@fastify/rate-limit';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { ApiError } from '../api-errors.ts';
import { isEngineError } from '../engine/index.ts';
import type { Metrics } from '../metrics.ts';
import { AUDIO_DURATION_HEADER } from '../openai/stream-events.ts';
import { ClientSecretStore } from '../realtime/client-secrets.ts';
import { realtimeRoutes } from '../realtime/route.ts';
import { API_DOCS_PAGE, API_DOCS_PATHS, describeApi } from './api-docs.ts';
import type { AppDependencies, RequestSummary } from './context.ts';
import { rateLimitedError, toApiError } from './error-translation.ts';
import {
  ApiKeyChecker,
  AuthFailureLimiter,
  clientAddress,
  clientIdentity,
  installApiKeyCheck,
} from './plugins/auth.ts';
import { adminRoutes } from './routes/admin.ts';
import { healthRoutes } from './routes/health.ts';
import { modelRoutes } from './routes/models.ts';
import { PLAYGROUND_PATHS, playgroundRoutes } from './routes/playground.ts';
import { realtimeSecretRoutes } from './routes/realtime-secrets.ts';
import { transcriptionRoutes } from './routes/transcriptions.ts';
import { MAX_FIELD_BYTES, UploadDirectory, uploadStarted } from './uploads.ts';

// Request ids a client may set with x-request-id: short and printable, so they are safe in logs.
const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

// Not an HTTP status sent to anyone: nginx's code for a client that closed the connection first.
const CLIENT_CLOSED = 499;
const SWITCHING_PROTOCOLS = 101;

/**
 * Logs the request's one line and counts it, once: when its response finished (streamed ones
 * included), or when its client went away before that.
 */
function recordRequest(
  request: FastifyRequest,
  reply: FastifyReply,
  status: number,
  metrics: Metrics | undefined,
  /** For a request that matched no route context at all (a bad URL): Fastify has none to ask. */
  knownRoute?: string,
): void {
  if (request.summary.recorded) return;
  request.summary.recorded = true;
  const seconds = reply.elapsedTime / 1000;
  const route = knownRoute ?? request.routeOptions.url ?? 'unknown';
  metrics?.observeRequest(route, request.method, status, seconds, request.summary.error);
  request.log.info(
    { method: request.method, route, status, ms: Math.round(seconds * 1000), ...request.summary, recorded: undefined },
    'request done',
  );
}

/**
 * Requests Node's HTTP parser refuses before Fastify sees them (oversized headers, broken framing,
 * a request that took too long to arrive) still get an OpenAI-shaped error with an x-request-id and
 * their one log line, then the socket closes.
 */
function answerClientError(
  error: Error & { code?: string },
  socket: Socket,
  log: FastifyBaseLogger,
  metrics: Metrics | undefined,
): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const apiError = toApiError(error, { source: 'client' });
  const body = JSON.stringify(apiError.toJSON());
  const id = randomUUID();
  socket.end(
    `HTTP/1.1 ${apiError.status} ${STATUS_CODES[apiError.status] ?? 'Error'}\r\n` +
      'content-type: application/json; charset=utf-8\r\n' +
      `x-request-id: ${id}\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    // Then closed both ways: a request cut off part way (a timeout) must not keep being read.
    () => socket.destroy(),
  );
  // Node's parser gave up on the request, so its method and route are unknown.
  metrics?.observeRequest('unknown', 'unknown', apiError.status, 0);
  log.info(
    { reqId: id, method: 'unknown', route: 'unknown', status: apiError.status, ms: 0, error: apiError.kind },
    'request done',
  );
}

/**
 * Fastify's framework errors (frameworkErrors option): a path with a bad percent-escape, a path
 * parameter over the router's length limit. Fastify answers them before any hook runs, so without
 * this they would get Fastify's own error shape, no x-request-id and no log line.
 */
function answerFrameworkError(
  error: Error & { code?: string },
  request: FastifyRequest,
  reply: FastifyReply,
  metrics: Metrics | undefined,
): void {
  request.summary = {};
  const apiError = toApiError(error, { source: 'router', method: request.method });
  request.summary.error = apiError.kind;
  if (apiError.status >= 500) request.log.error({ err: error }, apiError.message);
  reply.raw.once('finish', () => recordRequest(request, reply, apiError.status, metrics, 'unknown'));
  void reply
    .code(apiError.status)
    .header('x-request-id', request.id)
    .type('application/json; charset=utf-8')
    .send(apiError.toJSON());
}

/**
 * Caps the connections one client address holds open. Each holds a file descriptor until it closes
 * (an idle one until Node's 60 s headers timeout), so without a cap one client could take every
 * descriptor the process may open, and the server could accept no other connection, open no upload
 * and start no worker. A connection past the cap gets a 429 and is closed; it is not logged (that
 * would let a flood write the log), only counted.
 */
function capConnectionsPerAddress(app: FastifyInstance, max: number, metrics: Metrics | undefined, tls: boolean): void {
  const open = new Map<string, number>();
  app.server.on('connection', (socket: Socket) => {
    const address = clientAddress(socket.remoteAddress);
    const count = open.get(address) ?? 0;
    if (count >= max) {
      const error = new ApiError('too_many_connections', { max });
      const body = JSON.stringify(error.toJSON());
      metrics?.observeRequest('unknown', 'unknown', error.status, 0);
      socket.on('error', () => socket.destroy());
      // Under TLS this is the raw socket, before the handshake: plain text would reach no one.
      if (tls) {
        socket.destroy();
        return;
      }
      socket.end(
        `HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json; charset=utf-8\r\n` +
          `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
        () => socket.destroy(),
      );
      return;
    }
    open.set(address, count + 1);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left > 0) open.set(address, left);
      else open.delete(address);
    });
  });
}

export async function buildApp(deps: AppDependencies): Promise<FastifyInstance> {
  const { config } = deps;
  // Node checks requestTimeout (the headers' deadline; the body's is kept in uploads.ts) only
  // every connectionsCheckingInterval, 30 s by default: check every second so it fires on time.
  // requireHostHeader: Node's own 400 for an HTTP/1.1 request without Host has no body, no
  // x-request-id and no log line; the hook below answers it in OpenAI's shape instead.
  const serverOptions = {
    maxHeaderSize: config.maxHeaderBytes,
    connectionsCheckingInterval: 1000,
    requireHostHeader: false,
  };
  const app = Fastify({
    ...(deps.logger ? { loggerInstance: deps.logger } : { logger: { level: config.logLevel } }),
    // Each request is logged once, by recordRequest, rather than by Fastify's two lines.
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: false,
    genReqId: (request) => {
      const fromClient = request.headers['x-request-id'];
      return typeof fromClient === 'string' && CLIENT_REQUEST_ID.test(fromClient) ? fromClient : randomUUID();
    },
    // The upload limit is enforced per file by the multipart reader; this bounds every other body.
    bodyLimit: 1024 * 1024,
    // With a certificate, the same server options go to https.createServer (Fastify passes only
    // `https` there, not `http`). Typed as the HTTP server: the instance's API is the same.
    ...((deps.tls ? { https: { ...serverOptions, ...deps.tls } } : { http: serverOptions }) as {
      http: typeof serverOptions;
    }),
    requestTimeout: config.requestTimeoutMs,
    // Refused during shutdown by the hook below, in OpenAI's shape rather than Fastify's.
    return503OnClosing: false,
    clientErrorHandler: (error, socket) => answerClientError(error, socket, app.log, deps.metrics),
    frameworkErrors: (error, request, reply) => answerFrameworkError(error, request, reply, deps.metrics),
  });

  if (config.maxConnectionsPerAddress > 0) {
    capConnectionsPerAddress(app, config.maxConnectionsPerAddress, deps.metrics, deps.tls !== undefined);
  }

  app.decorateRequest('summary', null as unknown as RequestSummary);
  app.addHook('onRequest', async (request, reply) => {
    request.summary = {};
    reply.header('x-request-id', request.id);
    reply.raw.on('close', () => {
      if (reply.raw.writableFinished) return;
      if (request.summary.upgraded) return recordRequest(request, reply, SWITCHING_PROTOCOLS, deps.metrics);
      request.summary.error ??= 'client_disconnected';
      recordRequest(request, reply, CLIENT_CLOSED, deps.metrics);
    });
  });
  // A WebSocket upgrade refused with an HTTP answer (a 401, a 429): its socket left Node's HTTP server
  // at the upgrade, so no keep-alive timeout or request deadline would ever close it. The answer is the
  // last thing it carries. (An upgrade that succeeds is answered by ws, never through this reply.)
  app.addHook('onRequest', async (request, reply) => {
    if (request.headers.upgrade === undefined) return;
    reply.header('connection', 'close');
    reply.raw.once('finish', () => request.raw.socket.end());
  });
  app.addHook('onRequest', async (request, reply) => {
    if (request.raw.httpVersion !== '1.1' || request.headers.host !== undefined) return;
    reply.header('connection', 'close');
    throw new ApiError('malformed_http', { problem: 'an HTTP/1.1 request needs a Host header' });
  });
  app.addHook('onResponse', async (request, reply) => recordRequest(request, reply, reply.statusCode, deps.metrics));

  if (config.corsOrigins.length > 0) {
    await app.register(cors, {
      origin: config.corsOrigins.includes('*') ? true : config.corsOrigins,
      exposedHeaders: ['x-request-id', 'retry-after', AUDIO_DURATION_HEADER],
      // Strict, an OPTIONS request that is not a preflight (no Origin) got a text/plain 400, not
      // OpenAI's shape; answered as a preflight instead, it still allows no origin.
      strictPreflight: false,
    });
  }

  const publicPaths = new Set([
    // The playground page: it holds no secret, and asks its user for a key when the API needs one.
    ...PLAYGROUND_PATHS,
    ...(config.publicHealth ? ['/health', '/ready'] : []),
    ...(config.publicMetrics ? ['/metrics'] : []),
    ...(config.publicDocs ? API_DOCS_PATHS : []),
  ]);
  // The docs page's own files are under its path.
  const isPublic = (path: string) =>
    publicPaths.has(path) || (config.publicDocs && path.startsWith(`${API_DOCS_PAGE}/`));
  const checker = new ApiKeyChecker([...(deps.apiKeys ?? []), ...config.adminApiKeys]);
  const clientSecrets = deps.clientSecrets ?? new ClientSecretStore();
  installApiKeyCheck(app, {
    checker,
    isPublic,
    clientSecrets,
    ...(config.adminApiKeys.length > 0 && { admin: new ApiKeyChecker(config.adminApiKeys) }),
    ...(config.authFailuresPerMinute > 0 && { failures: new AuthFailureLimiter(config.authFailuresPerMinute) }),
  });

  if (config.rateLimitPerMinute > 0) {
    await app.register(rateLimit, {
      max: config.rateLimitPerMinute,
      timeWindow: 60_000,
      allowList: (request) => isPublic(request.url.split('?')[0] ?? ''),
      // Per key when keys are in use, else per address. The key check (which runs first) sets the
      // key's identity: a hash of the parsed key, the same however the header spells it, so the
      // limiter's store never holds a key and `bearer K` shares `Bearer  K`'s allowance.
      keyGenerator: clientIdentity,
      errorResponseBuilder: (_request, context) => rateLimitedError(context),
    });
  }

  await app.register(multipart, {
    limits: { fileSize: config.maxUploadBytes, files: 1, fields: 100, fieldSize: MAX_FIELD_BYTES, parts: 110 },
  });

  const uploads = await UploadDirectory.create(config.tmpDir, {
    maxConcurrent: config.maxConcurrentUploads,
    maxConcurrentPerClient: config.maxConcurrentUploadsPerClient,
    maxDiskBytes: config.maxUploadDiskBytes,
    maxDiskBytesPerClient: config.maxUploadDiskBytesPerClient,
  });
  app.addHook('onClose', async () => uploads.close());
  // Closing waits for every connection to end. A response finished after close began (a request in
  // flight at SIGTERM) leaves its keep-alive connection open until the keep-alive timeout (72 s),
  // past the shutdown grace period: close connections as soon as they are idle.
  let closing = false;
  app.addHook('onRequest', async (_request, reply) => {
    if (!closing) return;
    reply.header('connection', 'close');
    throw new ApiError('server_not_ready', { whileReceiving: true });
  });
  const unused = trackUnusedConnections(app.server, deps.tls !== undefined);
  app.addHook('preClose', async () => {
    closing = true;
    const sweep = setInterval(() => {
      app.server.closeIdleConnections();
      for (const socket of unused) socket.destroy();
    }, 100).unref();
    app.server.once('close', () => clearInterval(sweep));
  });

  app.setErrorHandler(async (error, request, reply) => {
    if (isEngineError(error, 'job_cancelled')) {
      request.summary.error = 'client_disconnected';
      request.log.info('client disconnected; job cancelled');
      return reply.code(499).send();
    }
    const apiError = toApiError(error);
    request.summary.error = apiError.kind;
    if (apiError.status >= 500) {
      request.log.error({ err: error }, apiError.message);
    } else {
      request.log.info({ error: apiError.kind, param: apiError.param }, apiError.message);
    }
    if (apiError.retryAfterSeconds !== undefined) reply.header('retry-after', String(apiError.retryAfterSeconds));
    // The body of an upload stopped part way is still arriving: the connection cannot be reused, and
    // closing it is what stops a client that keeps sending.
    const cutOff = uploadStarted(request) && !request.raw.complete;
    if (apiError.kind === 'upload_timeout' || apiError.kind === 'file_too_large' || cutOff) {
      reply.header('connection', 'close');
    }
    return reply.code(apiError.status).type('application/json; charset=utf-8').send(apiError.toJSON());
  });

  app.setNotFoundHandler(async (request, reply) => {
    const error = new ApiError('not_found', { method: request.method, path: request.url.split('?')[0] ?? '' });
    request.summary.error = error.kind;
    return reply.code(error.status).send(error.toJSON());
  });

  await describeApi(app);
  await app.register(healthRoutes, deps);
  await app.register(playgroundRoutes);
  await app.register(modelRoutes, deps);
  await app.register(adminRoutes, deps);
  await app.register(transcriptionRoutes, { ...deps, uploads });
  await app.register(realtimeSecretRoutes, { ...deps, clientSecrets });
  await app.register(deps.realtimeRoute ?? realtimeRoutes, { ...deps, newFilePath: () => uploads.newFilePath() });
  return app;
}

/**
 * The connections that have not begun a request yet. Node's closeIdleConnections() leaves them open
 * (a connection counts as idle only after a request), so one of them (a browser's preconnect, a
 * client's spare socket) held the shutdown until its grace ran out. Over TLS, the connections that
 * carry requests are the TLS sockets ('secureConnection'); one that never finishes its handshake is
 * not tracked (Node's TLS handshake timeout, 120 s, closes it, unless the shutdown grace ends first).
 */
function trackUnusedConnections(server: FastifyInstance['server'], tls: boolean): Set<Socket> {
  const unused = new Set<Socket>();
  server.on(tls ? 'secureConnection' : 'connection', (socket: Socket) => {
    unused.add(socket);
    socket.once('close', () => unused.delete(socket));
  });
  // A WebSocket upgrade is a request too: its socket is the session's, closed by the session's drain.
  const used = (request: IncomingMessage) => unused.delete(request.socket);
  server.on('request', used);
  server.on('upgrade', used);
  return unused;
}
