// GET /v1/models and GET /v1/models/{id}: what this server can serve right now, in OpenAI's shape.
import type { FastifyInstance } from 'fastify';
import type { ModelEntry } from '../../engine/models.ts';
import { ApiError } from '../../errors.ts';
import type { AppDependencies } from '../app.ts';

export async function modelRoutes(app: FastifyInstance, deps: AppDependencies): Promise<void> {
  /** OpenAI's fields, plus `state`: loaded (serving now), loading, or available (loads on first use). */
  const withState = (entry: ModelEntry) => {
    const resolved = deps.registry.resolve(entry.id);
    const pool = resolved ? deps.engine.modelStatus(resolved.id) : undefined;
    const state = pool?.state === 'ready' ? 'loaded' : pool?.state === 'loading' ? 'loading' : 'available';
    return { ...entry, state };
  };

  app.get('/v1/models', async () => ({ object: 'list', data: deps.registry.list().map(withState) }));

  // Ids may hold a "/" (Systran/faster-whisper-small), sent as is or, by newer SDKs, as %2F.
  app.get<{ Params: { '*': string } }>('/v1/models/*', async (request) => {
    const id = request.params['*'];
    const model = deps.registry.list().find((entry) => entry.id === id);
    if (!model) {
      throw new ApiError('model_not_found', `The model \`${id}\` does not exist or you do not have access to it.`);
    }
    return withState(model);
  });
}
