// POST /v1/audio/transcriptions and /v1/audio/translations: thin glue from the form to the engine
// to a formatter or an event stream. Validation lives in openai/, scheduling in engine/.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { PassThrough } from 'node:stream';
import { ApiError } from '../../api-errors.ts';
import {
  isEngineError,
  type EngineInfo,
  type JobListener,
  type ResolvedModel,
  type Transcript,
} from '../../engine/index.ts';
import { renderTranscript } from '../../openai/formatters.ts';
import {
  AUDIO_DURATION_HEADER,
  DeltaSplitter,
  deltaEvent,
  DONE_EVENT,
  doneEvent,
  errorEvent,
  SegmentEvents,
  verboseDoneEvent,
} from '../../openai/stream-events.ts';
import {
  parseTranscriptionRequest,
  unknownFields,
  type Task,
  type TranscriptionRequest,
} from '../../openai/transcription-request.ts';
import { audioRouteSchema } from '../api-schemas.ts';
import type { AppDependencies } from '../context.ts';
import { toApiError } from '../error-translation.ts';
import { clientIdentity } from '../plugins/auth.ts';
import { receiveForm, writeSpeakerReferences, type Upload, type UploadDirectory } from '../uploads.ts';

/** An AbortSignal that fires when the client goes away before its response is complete. */
function clientGone(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  // request.signal fires once the multipart body has been read, so watch the response instead.
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  return controller.signal;
}

interface Job {
  task: Task;
  request: TranscriptionRequest;
  /** The request's engine options, with the paths of its speaker reference files. */
  options: TranscriptionRequest['options'];
  model: ResolvedModel;
  /** The audio file, and the speaker reference files: removed with it. */
  upload: Upload;
}

export async function transcriptionRoutes(
  app: FastifyInstance,
  deps: AppDependencies & { uploads: UploadDirectory },
): Promise<void> {
  /** Runs a job to its transcript; the upload is removed before anything is sent back. */
  async function transcribe(
    job: Job,
    request: FastifyRequest,
    reply: FastifyReply,
    listener: JobListener = {},
  ): Promise<Transcript> {
    request.summary.model = job.model.id;
    request.summary.task = job.task;
    try {
      // The engine names the job: the client's x-request-id (reqId) need not be unique.
      const onQueued = (jobId: string) =>
        request.log.info(
          { jobId, model: job.model.id, task: job.task, bytes: job.upload.bytes, format: job.request.responseFormat },
          'job queued',
        );
      const transcript = await deps.engine.transcribe(
        job.model,
        {
          audioPath: job.upload.path,
          task: job.task,
          options: job.options,
          listener: { ...listener, onQueued },
        },
        clientGone(reply),
      );
      request.summary.audioSeconds = transcript.info.duration;
      return transcript;
    } finally {
      await job.upload.remove();
    }
  }

  async function respond(job: Job, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const transcript = await transcribe(job, request, reply);
    const rendered = renderTranscript(transcript, job.request.responseFormat, {
      granularities: job.request.granularities,
      includeLogprobs: job.request.includeLogprobs,
    });
    return reply.type(rendered.contentType).send(rendered.body);
  }

  /**
   * Server-sent events. The stream starts when the engine has decoded the audio, so a file that is
   * not audio still gets a plain 400; after that, text goes out word by word as segments are decoded.
   * Its head says how long the audio is (AUDIO_DURATION_HEADER), so that a client can tell how much
   * of it the segments so far cover (verbose_json's segment events carry their end times).
   */
  async function stream(job: Job, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const splitter = new DeltaSplitter();
    const { includeLogprobs, responseFormat, granularities } = job.request;
    const verbose = responseFormat === 'verbose_json';
    // diarized_json sends its speakers' parts instead of deltas, as OpenAI's recorded streams do;
    // verbose_json sends each segment after its deltas.
    const diarized = responseFormat === 'diarized_json';
    const segmentEvents = diarized
      ? new SegmentEvents({ speakers: true })
      : verbose
        ? new SegmentEvents({ speakers: false, words: granularities.has('word') })
        : undefined;
    // The events go out through Fastify (reply.send of a stream), never a hand-written head, so every
    // header that hooks and plugins set (x-request-id, CORS, …) is on the response as on any other.
    const events = new PassThrough();
    const write = (chunk: string) => {
      if (!events.destroyed) events.write(chunk);
    };
    // reply.sent turns true only once a streamed response has ended, so the start is tracked here.
    let started = false;
    const start = (info: EngineInfo) => {
      if (started) return;
      started = true;
      void reply
        .code(200)
        .type('text/event-stream; charset=utf-8')
        .header('cache-control', 'no-cache')
        .header(AUDIO_DURATION_HEADER, String(info.duration))
        .send(events);
    };
    let transcript: Transcript;
    try {
      transcript = await transcribe(job, request, reply, {
        onInfo: start,
        onSegment: (segment) => {
          if (!diarized) for (const delta of splitter.push(segment, includeLogprobs)) write(deltaEvent(delta));
          for (const part of segmentEvents?.push(segment) ?? []) write(part);
        },
      });
    } catch (error) {
      if (!started) throw error;
      if (isEngineError(error, 'job_cancelled')) {
        request.summary.error = 'client_disconnected';
        request.log.info('client disconnected; job cancelled');
      } else {
        const apiError = toApiError(error);
        request.summary.error = apiError.kind;
        request.log.error({ err: error, error: apiError.kind }, `stream failed: ${apiError.message}`);
        write(errorEvent(apiError.toJSON()));
      }
      if (!events.destroyed) events.end();
      // Returned, a reply is awaited until its response has finished (Fastify's "return reply").
      return reply;
    }
    const done = verbose ? verboseDoneEvent(transcript, { granularities }) : doneEvent(transcript, includeLogprobs);
    write(done + DONE_EVENT);
    if (!events.destroyed) events.end();
    return reply;
  }

  async function handle(task: Task, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | void> {
    const { config } = deps;
    const form = await receiveForm(request, deps.uploads, {
      maxBytes: config.maxUploadBytes,
      idleTimeoutMs: config.uploadIdleTimeoutMs,
      ...(config.requestTimeoutMs > 0 && {
        deadline: { timeoutMs: config.requestTimeoutMs, remainingMs: config.requestTimeoutMs - reply.elapsedTime },
      }),
      client: clientIdentity(request),
    });
    let job: Job;
    try {
      const ignored = unknownFields(form.fields, task);
      if (ignored.length > 0) request.log.warn({ fields: ignored }, 'ignoring unknown form fields');
      const parsed = parseTranscriptionRequest(form.fields, task);
      if (!form.file) throw new ApiError('missing_file');
      const model = await deps.registry.resolve(parsed.model);
      if (!model) throw new ApiError('model_not_found', { model: parsed.model });
      const { options, upload } = await writeSpeakerReferences(deps.uploads, parsed, form.file);
      job = { task, request: parsed, options, model, upload };
    } catch (error) {
      await form.file?.remove();
      throw error;
    }
    return job.request.stream ? stream(job, request, reply) : respond(job, request, reply);
  }

  app.post('/v1/audio/transcriptions', { schema: audioRouteSchema('transcribe') }, (request, reply) =>
    handle('transcribe', request, reply),
  );
  app.post('/v1/audio/translations', { schema: audioRouteSchema('translate') }, (request, reply) =>
    handle('translate', request, reply),
  );
}
