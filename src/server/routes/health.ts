import type { FastifyInstance } from 'fastify';
import type { AppDependencies } from '../app.ts';

/** 200 once the default model can serve, 503 (with the reason) before that or while it reloads. */
export async function healthRoutes(app: FastifyInstance, deps: AppDependencies): Promise<void> {
  app.get('/health', async (_request, reply) => {
    const defaultModel = deps.registry.resolve(deps.registry.defaultModel);
    const pool = defaultModel ? deps.engine.modelStatus(defaultModel.id) : undefined;
    const ready = pool?.state === 'ready' && pool.workers > 0;
    return reply.code(ready ? 200 : 503).send({
      status: ready ? 'ok' : 'loading',
      defaultModel: defaultModel?.id ?? deps.registry.defaultModel,
      ...(pool?.lastError && { reason: pool.lastError }),
      models: deps.engine.status(),
    });
  });
}
