// POST /v1/audio/transcriptions and /v1/audio/translations: thin glue from the form to the engine
// to a formatter. Validation lives in protocol/, scheduling in engine/, rendering in formatters.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../../errors.ts';
import { renderTranscript, type RenderedBody } from '../../protocol/formatters.ts';
import { parseTranscriptionRequest, unknownFields, type Task } from '../../protocol/transcription-request.ts';
import type { AppDependencies } from '../app.ts';
import { receiveForm, type UploadDirectory } from '../uploads.ts';

/** An AbortSignal that fires when the client goes away before its response is complete. */
function clientGone(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  // request.signal fires once the multipart body has been read, so watch the response instead.
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  return controller.signal;
}

export async function transcriptionRoutes(
  app: FastifyInstance,
  deps: AppDependencies & { uploads: UploadDirectory },
): Promise<void> {
  async function handle(task: Task, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const form = await receiveForm(request, deps.uploads, deps.config.maxUploadBytes);
    let rendered: RenderedBody;
    // The upload is removed before the response is sent, so a client that has its answer never
    // finds its audio still on the server.
    try {
      const ignored = unknownFields(form.fields, task);
      if (ignored.length > 0) request.log.warn({ fields: ignored }, 'ignoring unknown form fields');
      const parsed = parseTranscriptionRequest(form.fields, task);
      if (!form.file) throw new ApiError('missing_required_parameter', "Missing required parameter: 'file'.", 'file');
      const model = deps.registry.resolve(parsed.model);
      if (!model) {
        throw new ApiError('model_not_found', `The model '${parsed.model}' does not exist.`, 'model');
      }
      request.log.info({ model: model.id, task, bytes: form.file.bytes, format: parsed.responseFormat }, 'job queued');
      const transcript = await deps.engine.transcribe(
        model,
        { id: request.id, audioPath: form.file.path, task, options: parsed.options },
        clientGone(reply),
      );
      request.log.info({ model: model.id, audioSeconds: transcript.info.duration }, 'job done');
      rendered = renderTranscript(transcript, parsed.responseFormat, { granularities: parsed.granularities });
    } finally {
      await form.file?.remove();
    }
    return reply.type(rendered.contentType).send(rendered.body);
  }

  app.post('/v1/audio/transcriptions', (request, reply) => handle('transcribe', request, reply));
  app.post('/v1/audio/translations', (request, reply) => handle('translate', request, reply));
}
