// GET /health (alive, and the default model can serve), GET /ready (and its queue has room), GET /metrics.
import type { FastifyInstance } from 'fastify';
import { operationSchemas } from '../api-schemas.ts';
import type { AppDependencies } from '../context.ts';

export async function healthRoutes(app: FastifyInstance, deps: AppDependencies): Promise<void> {
  const defaultPool = async () => {
    const model = await deps.registry.resolve(deps.registry.defaultModel);
    return { id: model?.id ?? deps.registry.defaultModel, pool: model ? deps.engine.modelStatus(model.id) : undefined };
  };

  /** 200 once the default model can serve, 503 (with the reason) before that or while it reloads. */
  app.get('/health', { schema: operationSchemas.health }, async (_request, reply) => {
    const { id, pool } = await defaultPool();
    const ready = pool?.state === 'ready' && pool.workers > 0;
    return reply.code(ready ? 200 : 503).send({
      status: ready ? 'ok' : 'loading',
      defaultModel: id,
      ...(pool?.lastError && { reason: pool.lastError }),
      models: deps.engine.status(),
    });
  });

  /** For load balancers: 200 only while the default model serves and its queue is not full. */
  app.get('/ready', { schema: operationSchemas.ready }, async (_request, reply) => {
    const { id, pool } = await defaultPool();
    const reason =
      pool?.state !== 'ready' || pool.workers === 0
        ? (pool?.lastError ?? `model ${id} is loading`)
        : pool.queued >= pool.maxQueued
          ? `the queue of model ${id} is full (${pool.queued} jobs)`
          : undefined;
    return reply.code(reason ? 503 : 200).send(reason ? { status: 'not ready', reason } : { status: 'ready' });
  });

  const metrics = deps.metrics;
  if (metrics) {
    app.get('/metrics', { schema: operationSchemas.metrics }, async (_request, reply) =>
      reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
    );
  }
}
