// The model admin API, after speaches' /api/ps: which models are loaded, load one, unload one.
// Behind the same API keys as everything else.
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../../api-errors.ts';
import { adminSchemas } from '../api-schemas.ts';
import type { AppDependencies } from '../context.ts';

export async function adminRoutes(app: FastifyInstance, deps: AppDependencies): Promise<void> {
  const { engine, registry } = deps;

  const resolve = async (id: string) => {
    const model = await registry.resolve(id);
    if (!model) {
      throw new ApiError('model_not_found', { model: id });
    }
    return model;
  };

  app.get('/api/ps', { schema: adminSchemas.list }, async () => ({ object: 'list', data: engine.status() }));

  /** 201 once the model has loaded (200 if it already was); 503 if it cannot be loaded. */
  app.post<{ Params: { '*': string } }>('/api/ps/*', { schema: adminSchemas.load }, async (request, reply) => {
    const model = await resolve(request.params['*']);
    const wasLoaded = engine.isLoaded(model.id);
    await engine.load(model);
    return reply.code(wasLoaded ? 200 : 201).send(engine.modelStatus(model.id));
  });

  app.delete<{ Params: { '*': string } }>('/api/ps/*', { schema: adminSchemas.unload }, async (request, reply) => {
    const model = await resolve(request.params['*']);
    const status = engine.modelStatus(model.id);
    if (!status) throw new ApiError('model_not_loaded', { model: model.id });
    if (status.pinned) {
      throw new ApiError('model_pinned', { model: model.id });
    }
    // Waits while the model's running and waiting jobs finish (up to the unload grace).
    const outcome = await engine.unload(model.id, { by: 'admin' });
    if (!outcome) throw new ApiError('model_not_loaded', { model: model.id });
    return reply.code(200).send({ model: model.id, unloaded: true, ...outcome });
  });
}
