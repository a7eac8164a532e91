// Multipart request bodies: the file part is streamed to a temporary file under a byte limit while
// it arrives (PyAV needs a seekable file for mp4/m4a); the other parts are collected as fields.
// The temporary file is the caller's to remove, on every path, with `remove()`.
//
// What uploads may hold is bounded: text fields (64 KiB each, 256 KiB per form, besides up to four speaker
// reference clips of 1.5 MiB), uploads received at once (EARSHOT_MAX_CONCURRENT_UPLOADS, and per client),
// temporary disk space in total and per client (each upload reserves its Content-Length when it starts and
// keeps its file's size, and its speaker references' size, until the file is removed),
// and time (no byte for EARSHOT_UPLOAD_IDLE_TIMEOUT_MS, or not whole by EARSHOT_REQUEST_TIMEOUT_MS).
// A refused or stopped upload's file is closed and removed before the answer goes out.
import { randomUUID } from 'node:crypto';
import { createWriteStream, rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { FastifyRequest } from 'fastify';
import type { TranscribeOptions } from '../engine/index.ts';
import type { Readable } from 'node:stream';
import { ApiError } from '../api-errors.ts';
import type { FormFields } from '../openai/transcription-request.ts';
import { toApiError } from './error-translation.ts';

export interface Upload {
  path: string;
  filename: string;
  bytes: number;
  remove(): Promise<void>;
}

export interface ReceivedForm {
  fields: FormFields;
  file: Upload | undefined;
}

// The longest legitimate text fields are `prompt` and `hotwords` (hotwords: 1000 characters, at most
// 4 KB of UTF-8; Whisper reads only the last 224 tokens of a prompt, about 1 KB): 64 KiB is 16 times
// that. A whole form of OpenAI's fields and the engine's knobs is under 10 KiB; 256 KiB is four
// fields at their limit. Busboy's own fieldSize limit cuts a field at 64 KiB (it never buffers more);
// the total across fields has no busboy option, so it is counted here.
export const MAX_FIELD_BYTES = 64 * 1024;
export const MAX_FORM_FIELD_BYTES = 256 * 1024;
// Known speakers' reference clips come as base64 data URLs in text fields (as the SDKs send them): 10 s
// of 44.1 kHz 16-bit mono WAV is 1.2 MB in base64. Only this field may be that long, at most four times
// (the most OpenAI takes): a form holds at most 6 MiB of them, on top of the other fields' 256 KiB.
export const SPEAKER_REFERENCE_FIELD = 'known_speaker_references';
export const MAX_SPEAKER_REFERENCE_BYTES = 1536 * 1024;
const MAX_SPEAKER_REFERENCE_FIELDS = 4;
// A refused upload may retry once some upload has finished; a few seconds is the usual wait.
const RETRY_AFTER_SECONDS = 5;

export interface UploadLimits {
  maxConcurrent: number;
  /** Uploads one client (key, or address without keys) may have being received at once. */
  maxConcurrentPerClient: number;
  maxDiskBytes: number;
  maxDiskBytesPerClient: number;
}

/**
 * What one upload holds of the budget: an upload slot while its body is read, and disk space
 * until its file is removed. Releasing is idempotent.
 */
export class Reservation {
  private reading = true;
  private released = false;

  constructor(
    private readonly budget: UploadBudget,
    readonly client: string,
    public bytes: number,
  ) {}

  /** The body has been read: the upload slot is free; the disk space stays reserved. */
  doneReading(): void {
    if (!this.reading) return;
    this.reading = false;
    this.budget.endReading(this.client);
  }

  /** The file is on disk: keep its real size reserved, no more. */
  resize(bytes: number): void {
    if (this.released) return;
    this.budget.addDisk(this.client, bytes - this.bytes);
    this.bytes = bytes;
  }

  release(): void {
    this.doneReading();
    if (this.released) return;
    this.released = true;
    this.budget.addDisk(this.client, -this.bytes);
  }
}

/** Uploads in progress and the temporary space they hold, in total and per client. */
export class UploadBudget {
  uploading = 0;
  diskBytes = 0;
  private readonly clientBytes = new Map<string, number>();
  private readonly clientUploads = new Map<string, number>();

  constructor(readonly limits: UploadLimits) {}

  /** Admits an upload that will hold at most `bytes` on disk, or throws the 429/503 that refuses it. */
  admit(client: string, bytes: number): Reservation {
    const { maxConcurrent, maxConcurrentPerClient, maxDiskBytes, maxDiskBytesPerClient } = this.limits;
    // Checked first: a client holding its own slots is told so, not that the server is busy.
    const uploads = this.clientUploads.get(client) ?? 0;
    if (uploads >= maxConcurrentPerClient) {
      throw new ApiError(
        'too_many_client_uploads',
        { uploads, retryAfterSeconds: RETRY_AFTER_SECONDS },
        { retryAfterSeconds: RETRY_AFTER_SECONDS },
      );
    }
    if (this.uploading >= maxConcurrent) {
      throw new ApiError(
        'too_many_uploads',
        { max: maxConcurrent, retryAfterSeconds: RETRY_AFTER_SECONDS },
        { retryAfterSeconds: RETRY_AFTER_SECONDS },
      );
    }
    // An upload alone always fits, whatever the limits, so that no request can never be served.
    const held = this.clientBytes.get(client) ?? 0;
    if (held > 0 && held + bytes > maxDiskBytesPerClient) {
      throw new ApiError(
        'client_upload_limit',
        { held, max: maxDiskBytesPerClient, retryAfterSeconds: RETRY_AFTER_SECONDS },
        { retryAfterSeconds: RETRY_AFTER_SECONDS },
      );
    }
    if (this.diskBytes > 0 && this.diskBytes + bytes > maxDiskBytes) {
      throw new ApiError(
        'upload_space_exhausted',
        { retryAfterSeconds: RETRY_AFTER_SECONDS },
        { retryAfterSeconds: RETRY_AFTER_SECONDS },
      );
    }
    this.uploading++;
    this.clientUploads.set(client, uploads + 1);
    this.addDisk(client, bytes);
    return new Reservation(this, client, bytes);
  }

  endReading(client: string): void {
    this.uploading--;
    const uploads = (this.clientUploads.get(client) ?? 0) - 1;
    if (uploads > 0) this.clientUploads.set(client, uploads);
    else this.clientUploads.delete(client);
  }

  addDisk(client: string, delta: number): void {
    this.diskBytes += delta;
    const held = (this.clientBytes.get(client) ?? 0) + delta;
    if (held > 0) this.clientBytes.set(client, held);
    else this.clientBytes.delete(client);
  }
}

/** Owns the directory that holds uploads in flight; removing it at close removes any stragglers. */
export class UploadDirectory {
  readonly budget: UploadBudget;

  private constructor(
    readonly path: string,
    limits: UploadLimits,
  ) {
    this.budget = new UploadBudget(limits);
  }

  static async create(parent: string, limits: UploadLimits): Promise<UploadDirectory> {
    const directory = await mkdtemp(path.join(parent, 'earshot-uploads-'));
    // A process that exits without closing the app (a forced exit after the grace period) still cleans up.
    process.once('exit', () => rmSync(directory, { recursive: true, force: true }));
    return new UploadDirectory(directory, limits);
  }

  newFilePath(): string {
    // Never the client's filename: nothing a client sends becomes part of a path.
    return path.join(this.path, randomUUID());
  }

  async close(): Promise<void> {
    await rm(this.path, { recursive: true, force: true });
  }
}

function fieldName(name: string): string {
  return name.endsWith('[]') ? name.slice(0, -2) : name;
}

/**
 * Rejects when no byte of the request body has arrived for `idleMs`, wherever the upload stalls
 * (before the file, inside it or after it), so a stalled client gets a 408 instead of holding a
 * connection and a temporary file until the request timeout; and when the request is not whole
 * by its deadline. Written by hand: Node's requestTimeout is checked only every
 * connectionsCheckingInterval, and its answer leaves the body being read (and the temporary file
 * growing) until the client closes; this one stops the upload and removes its file first.
 */
function uploadWatch(
  request: FastifyRequest,
  idleMs: number,
  deadline: { remainingMs: number; timeoutMs: number } | undefined,
): { failed: Promise<never>; stop(): void } {
  let idle: NodeJS.Timeout | undefined;
  let fail: (error: ApiError) => void = () => undefined;
  const failed = new Promise<never>((_, reject) => {
    fail = reject;
  });
  const arm = () => {
    clearTimeout(idle);
    idle = setTimeout(() => fail(new ApiError('upload_timeout', { idleMs })), idleMs);
  };
  request.raw.on('data', arm);
  arm();
  const whole = deadline
    ? setTimeout(
        () => fail(new ApiError('request_timeout', { timeoutMs: deadline.timeoutMs })),
        Math.max(0, deadline.remainingMs),
      )
    : undefined;
  return {
    failed,
    stop: () => {
      clearTimeout(idle);
      clearTimeout(whole);
      request.raw.off('data', arm);
    },
  };
}

/** A field's text. A part sent as application/json arrives parsed; it is given back as JSON text. */
function fieldText(name: string, value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value) ?? '';
  } catch {
    throw new ApiError('invalid_value', { detail: `The field '${name}' could not be read as JSON.` }, { param: name });
  }
}

const bodiesBeingRead = new WeakSet<FastifyRequest>();

/**
 * Whether this request's body began to be read as an upload. Stopped part way, its connection is
 * closed (the client may keep sending); refused before (a full budget, a wrong key), Node reads and
 * drops the body and the client gets its answer on a connection that stays usable.
 */
export function uploadStarted(request: FastifyRequest): boolean {
  return bodiesBeingRead.has(request);
}

export interface ReceiveOptions {
  /** Largest file (EARSHOT_MAX_UPLOAD_BYTES). */
  maxBytes: number;
  idleTimeoutMs: number;
  /** The request deadline (EARSHOT_REQUEST_TIMEOUT_MS) and what is left of it; none when off. */
  deadline?: { remainingMs: number; timeoutMs: number };
  /** Who the upload counts against: the client's key or address. */
  client: string;
}

export async function receiveForm(
  request: FastifyRequest,
  uploads: UploadDirectory,
  options: ReceiveOptions,
): Promise<ReceivedForm> {
  if (!request.isMultipart()) {
    throw new ApiError('invalid_request', { problem: 'not_multipart' });
  }
  const { maxBytes } = options;
  // The file is at most the whole body: a declared Content-Length bounds it below the file limit.
  const declared = Number(request.headers['content-length']);
  const reserved = Number.isSafeInteger(declared) && declared >= 0 ? Math.min(declared, maxBytes) : maxBytes;
  const reservation = uploads.budget.admit(options.client, reserved);
  bodiesBeingRead.add(request);
  const fields = new Map<string, string[]>();
  let fieldBytes = 0;
  // The speaker reference clips are written to disk next to the file (writeSpeakerReferences): their
  // base64 text is more than the bytes they decode to, so it is what stays reserved for them.
  let referenceBytes = 0;
  let file: Upload | undefined;
  const stopWriting = new AbortController();
  let writing: Promise<void> | undefined;
  // Set once the upload has been refused: parts that still arrive before the connection closes are
  // dropped, never written to a file that nothing would remove.
  let stopped = false;

  const readParts = async () => {
    const limits = { fileSize: maxBytes, files: 1, fieldSize: MAX_SPEAKER_REFERENCE_BYTES };
    for await (const part of request.parts({ limits })) {
      if (stopped) {
        if (part.type === 'file') part.file.resume();
        throw new Error('the upload was stopped');
      }
      const name = fieldName(part.fieldname);
      if (part.type === 'file') {
        if (name !== 'file') {
          part.file.resume();
          throw new ApiError('invalid_request', { problem: 'unexpected_file', field: part.fieldname }, { param: name });
        }
        const target = uploads.newFilePath();
        file = {
          path: target,
          filename: part.filename,
          bytes: 0,
          remove: async () => {
            await rm(target, { force: true });
            reservation.release();
          },
        };
        writing = pipeline(part.file as Readable, createWriteStream(target), { signal: stopWriting.signal });
        await writing;
        file.bytes = part.file.bytesRead;
      } else {
        if (part.fieldnameTruncated) throw new ApiError('invalid_request', { problem: 'long_field_name' });
        const reference = name === SPEAKER_REFERENCE_FIELD;
        const fieldLimit = reference ? MAX_SPEAKER_REFERENCE_BYTES : MAX_FIELD_BYTES;
        const value = part.valueTruncated ? undefined : fieldText(name, part.value);
        if (value === undefined || Buffer.byteLength(value) > fieldLimit) {
          throw new ApiError(
            'form_too_large',
            { field: part.fieldname, limitBytes: fieldLimit, whole: false },
            { param: name },
          );
        }
        if (reference && (fields.get(name)?.length ?? 0) >= MAX_SPEAKER_REFERENCE_FIELDS) {
          throw new ApiError(
            'invalid_value',
            { detail: `At most ${MAX_SPEAKER_REFERENCE_FIELDS} known speaker references.` },
            { param: name },
          );
        }
        if (reference) referenceBytes += Buffer.byteLength(value);
        else fieldBytes += Buffer.byteLength(value);
        if (fieldBytes > MAX_FORM_FIELD_BYTES) {
          throw new ApiError(
            'form_too_large',
            { field: part.fieldname, limitBytes: MAX_FORM_FIELD_BYTES, whole: true },
            { param: name },
          );
        }
        const values = fields.get(name) ?? [];
        values.push(value);
        fields.set(name, values);
      }
    }
  };

  const watch = uploadWatch(request, options.idleTimeoutMs, options.deadline);
  const reading = readParts();
  // After a stall the reader is abandoned; its own failure, when the connection closes, is expected.
  reading.catch(() => undefined);
  try {
    await Promise.race([reading, watch.failed]);
  } catch (error) {
    // Stop writing and close the file before removing it, so its space is free when the answer goes.
    stopped = true;
    stopWriting.abort();
    await writing?.catch(() => undefined);
    if (file) await file.remove();
    else reservation.release();
    throw toApiError(error, { source: 'upload', maxUploadBytes: maxBytes });
  } finally {
    watch.stop();
    reservation.doneReading();
  }
  // Both are parts of the body, so this never exceeds the Content-Length reserved at the start.
  if (file) reservation.resize(file.bytes + referenceBytes);
  else reservation.release();
  if (!file && fields.has('file')) {
    throw new ApiError(
      'invalid_value',
      { detail: "The field 'file' must be a file upload, not a text value." },
      { param: 'file' },
    );
  }
  fields.delete('file');
  return { fields, file };
}

/**
 * Writes a request's speaker reference clips next to its upload, for the worker to read; the returned
 * upload removes them with the audio file. The options name the files (diarize.known_speakers).
 */
export async function writeSpeakerReferences(
  uploads: UploadDirectory,
  request: { options: TranscribeOptions; speakerReferences: readonly { name: string; audio: Buffer }[] },
  upload: Upload,
): Promise<{ options: TranscribeOptions; upload: Upload }> {
  const { diarize } = request.options;
  if (!diarize || request.speakerReferences.length === 0) return { options: request.options, upload };
  const paths: string[] = [];
  const removeAll = async () => {
    await Promise.all(paths.map((file) => rm(file, { force: true })));
    await upload.remove();
  };
  try {
    for (const reference of request.speakerReferences) {
      const file = uploads.newFilePath();
      paths.push(file);
      await writeFile(file, reference.audio, { flag: 'wx' });
    }
  } catch (error) {
    await removeAll();
    throw error;
  }
  const knownSpeakers = request.speakerReferences.map((reference, index) => ({
    name: reference.name,
    audio: paths[index] ?? '',
  }));
  return {
    options: { ...request.options, diarize: { ...diarize, known_speakers: knownSpeakers } },
    upload: { ...upload, remove: removeAll },
  };
}
