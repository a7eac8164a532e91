// Ephemeral keys for realtime transcription sessions, in OpenAI's two shapes: GA
// POST /v1/realtime/client_secrets (`{expires_after?, session?}` → `{value, expires_at, session}`) and
// beta POST /v1/realtime/transcription_sessions (the flat session → the session with its
// `client_secret: {value, expires_at}`). The session is validated as a WebSocket session.update would
// be; the key opens one session, which starts with it. Minting takes an API key (the key check refuses
// an ephemeral key anywhere but the realtime route).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../../api-errors.ts';
import type { ClientSecretStore } from '../../realtime/client-secrets.ts';
import {
  betaSessionObject,
  gaSessionObject,
  newSessionId,
  parseClientSecretRequest,
  parseTranscriptionSessionRequest,
  type ClientSecretRequest,
  type SessionFacts,
} from '../../realtime/protocol.ts';
import { realtimeSecretSchemas } from '../api-schemas.ts';
import type { AppDependencies } from '../context.ts';

export async function realtimeSecretRoutes(
  app: FastifyInstance,
  deps: AppDependencies & { clientSecrets: ClientSecretStore },
): Promise<void> {
  /** Checks the transcription model names one earshot serves, then mints the key. */
  async function mint(request: FastifyRequest, asked: ClientSecretRequest, modelParam: string) {
    const { config } = asked;
    if (config.model !== undefined && !(await deps.registry.resolve(config.model))) {
      throw new ApiError('model_not_found', { model: config.model }, { param: modelParam });
    }
    const sessionId = newSessionId();
    const { value, expiresAt } = deps.clientSecrets.issue(
      { config, dialect: asked.dialect, sessionId, mintedBy: request.apiKeyId },
      asked.expiresAfterSeconds ?? deps.config.realtimeClientSecretSeconds,
    );
    request.summary.model = config.model ?? deps.config.defaultModel;
    // The session has not started: its own expiry is set when the key opens it (OpenAI answers 0 too).
    const facts: SessionFacts = { id: sessionId, expiresAt: 0, defaultModel: deps.config.defaultModel };
    return { value, expiresAt, facts };
  }

  app.post('/v1/realtime/client_secrets', { schema: realtimeSecretSchemas.clientSecrets }, async (request) => {
    const asked = parseClientSecretRequest(request.body);
    const { value, expiresAt, facts } = await mint(request, asked, 'session.audio.input.transcription.model');
    return { value, expires_at: expiresAt, session: gaSessionObject(asked.config, facts) };
  });

  app.post(
    '/v1/realtime/transcription_sessions',
    { schema: realtimeSecretSchemas.transcriptionSessions },
    async (request) => {
      const asked = parseTranscriptionSessionRequest(request.body);
      const { value, expiresAt, facts } = await mint(request, asked, 'input_audio_transcription.model');
      return { ...betaSessionObject(asked.config, facts), client_secret: { value, expires_at: expiresAt } };
    },
  );
}
