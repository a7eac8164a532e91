// The Fastify application: plugins, the one error handler that speaks OpenAI's error shape, routes.
// Built by a factory so tests can start it on a free port with any engine.
import multipart from '@fastify/multipart';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { randomUUID } from 'node:crypto';
import type { Config } from '../config.ts';
import type { Engine } from '../engine/engine.ts';
import type { ModelRegistry } from '../engine/models.ts';
import { ApiError, JobCancelledError } from '../errors.ts';
import { healthRoutes } from './routes/health.ts';
import { modelRoutes } from './routes/models.ts';
import { transcriptionRoutes } from './routes/transcriptions.ts';
import { UploadDirectory } from './uploads.ts';
import { toApiError } from './errors.ts';

export interface AppDependencies {
  config: Config;
  engine: Engine;
  registry: ModelRegistry;
  /** The process's logger; tests leave it out and get one at the configured level. */
  logger?: FastifyBaseLogger;
}

// Request ids a client may set with x-request-id: short and printable, so they are safe in logs.
const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export async function buildApp(deps: AppDependencies): Promise<FastifyInstance> {
  const app = Fastify({
    ...(deps.logger ? { loggerInstance: deps.logger } : { logger: { level: deps.config.logLevel } }),
    requestIdHeader: false,
    genReqId: (request) => {
      const fromClient = request.headers['x-request-id'];
      return typeof fromClient === 'string' && CLIENT_REQUEST_ID.test(fromClient) ? fromClient : randomUUID();
    },
    // The upload limit is enforced per file by the multipart reader; this bounds every other body.
    bodyLimit: 1024 * 1024,
  });

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  await app.register(multipart, {
    limits: { fileSize: deps.config.maxUploadBytes, files: 1, fields: 100, fieldSize: 1024 * 1024, parts: 110 },
  });

  const uploads = await UploadDirectory.create(deps.config.tmpDir);
  app.addHook('onClose', async () => uploads.close());

  app.setErrorHandler(async (error, request, reply) => {
    if (error instanceof JobCancelledError) {
      request.log.info('client disconnected; job cancelled');
      return reply.code(499).send();
    }
    const apiError = toApiError(error);
    if (apiError.status >= 500) {
      request.log.error({ err: error }, apiError.message);
    } else {
      request.log.info({ code: apiError.code, param: apiError.param }, apiError.message);
    }
    return reply.code(apiError.status).type('application/json; charset=utf-8').send(apiError.toJSON());
  });

  app.setNotFoundHandler(async (request, reply) => {
    const error = new ApiError('not_found', `Unknown route: ${request.method} ${request.url.split('?')[0] ?? ''}`);
    return reply.code(error.status).send(error.toJSON());
  });

  await app.register(healthRoutes, deps);
  await app.register(modelRoutes, deps);
  await app.register(transcriptionRoutes, { ...deps, uploads });
  return app;
}
