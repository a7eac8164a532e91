// The API's description, generated from the routes' own schemas (api-schemas.ts) by @fastify/swagger:
// GET /openapi.json, and an interactive page at /docs (@fastify/swagger-ui, its files served from the
// package: no network needed). Public by default (EARSHOT_PUBLIC_DOCS): it describes an open-source API,
// holds nothing of this server's (no keys, no model list), and a browser cannot send a key with a page.
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { earshotVersion } from '../version.ts';
import { sharedSchemas } from './api-schemas.ts';

export const API_DOCS_PAGE = '/docs';
export const API_DESCRIPTION_PATH = '/openapi.json';
/** What EARSHOT_PUBLIC_DOCS opens: the document, and the page (whose files are under API_DOCS_PAGE/). */
export const API_DOCS_PATHS = [API_DESCRIPTION_PATH, API_DOCS_PAGE];

/** Routes that hold a model name end in a wildcard; the document names it. */
const WILDCARD_NAME = 'model';

/**
 * Registers the description on the root instance, before the routes (whose schemas it collects as they
 * are added). Route schemas only describe: requests are validated by hand, so that errors keep OpenAI's
 * shape and wording, and answers are sent as built, never filtered through a schema.
 */
export async function describeApi(app: FastifyInstance): Promise<void> {
  app.setValidatorCompiler(() => () => true);
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  for (const schema of sharedSchemas) app.addSchema(schema);

  await app.register(swagger, {
    // Shared schemas appear under their own names (ErrorResponse, Model, …), not def-0, def-1, ….
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`),
    },
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'earshot',
        version: earshotVersion,
        description: [
          "A self-hosted, OpenAI-compatible speech-to-text server for faster-whisper: OpenAI's audio API (transcriptions, translations, models, realtime transcription sessions), with earshot's extensions marked as such.",
          'Errors are OpenAI-shaped (ErrorResponse); each answer lists the codes it may carry.',
          'When keys are configured (EARSHOT_API_KEYS), every route but the public ones takes `Authorization: Bearer KEY`.',
        ].join('\n\n'),
        license: { name: 'MIT', identifier: 'MIT' },
      },
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', description: 'An API key (EARSHOT_API_KEYS).' },
        },
      },
      tags: [
        { name: 'audio', description: 'Speech to text.' },
        { name: 'models', description: 'What this server serves.' },
        { name: 'realtime', description: 'Live transcription over a WebSocket, and its short-lived keys.' },
        { name: 'admin', description: 'Loading and unloading models (EARSHOT_ADMIN_API_KEYS).' },
        { name: 'operations', description: 'Health, readiness, metrics.' },
      ],
    },
    // Fastify's wildcard is `*`; OpenAPI paths template named parameters.
    transform: ({ schema, url }) => {
      if (!schema || !url.endsWith('/*')) return { schema, url };
      const params = schema.params as { properties: Record<string, unknown>; required?: string[] } | undefined;
      const properties = { ...params?.properties };
      const wildcard = properties['*'];
      delete properties['*'];
      return {
        schema: {
          ...schema,
          params: { ...params, properties: { ...properties, [WILDCARD_NAME]: wildcard }, required: [WILDCARD_NAME] },
        },
        url: `${url.slice(0, -1)}{${WILDCARD_NAME}}`,
      };
    },
  });
  await app.register(swaggerUi, {
    routePrefix: API_DOCS_PAGE,
    // Offline: no call to swagger.io's validator badge.
    uiConfig: { validatorUrl: null, deepLinking: true, tryItOutEnabled: false },
  });
  app.get(API_DESCRIPTION_PATH, { schema: { hide: true } }, async () => app.swagger());
}
