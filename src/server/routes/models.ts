// GET /v1/models and GET /v1/models/{id}: what this server can serve, in OpenAI's shape. The list
// holds what serves without a download; one model by id answers for every name a transcription
// would accept (the same resolver decides both), 404 for every name it would refuse.
import type { FastifyInstance } from 'fastify';
import { needsDownload, type ModelListing } from '../../engine/index.ts';
import { ApiError } from '../../api-errors.ts';
import { modelSchemas } from '../api-schemas.ts';
import type { AppDependencies } from '../context.ts';

export async function modelRoutes(app: FastifyInstance, deps: AppDependencies): Promise<void> {
  /**
   * OpenAI's fields, plus `state`: loaded (serving now), loading, available (loads on first use) or
   * downloadable (downloads from the hub, then loads, on first use).
   */
  const withState = ({ entry, model }: ModelListing) => {
    const pool = deps.engine.modelStatus(model.id);
    const state =
      pool?.state === 'ready'
        ? 'loaded'
        : pool?.state === 'loading'
          ? 'loading'
          : needsDownload(model)
            ? 'downloadable'
            : 'available';
    return { ...entry, state };
  };

  app.get('/v1/models', { schema: modelSchemas.list }, async () => ({
    object: 'list',
    data: (await deps.registry.list()).map(withState),
  }));

  // Ids may hold a "/" (Systran/faster-whisper-small), sent as is or, by newer SDKs, as %2F.
  app.get<{ Params: { '*': string } }>('/v1/models/*', { schema: modelSchemas.retrieve }, async (request) => {
    const id = request.params['*'];
    const listing = await deps.registry.describe(id);
    if (!listing) {
      throw new ApiError('model_not_found', { model: id });
    }
    return withState(listing);
  });
}
