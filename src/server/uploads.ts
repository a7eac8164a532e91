// Multipart request bodies: the file part is streamed to a temporary file under a byte limit while
// it arrives (PyAV needs a seekable file for mp4/m4a); the other parts are collected as fields.
// The temporary file is the caller's to remove, on every path, with `remove()`.
import { randomUUID } from 'node:crypto';
import { createWriteStream, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { FastifyRequest } from 'fastify';
import { ApiError } from '../errors.ts';
import type { FormFields } from '../protocol/transcription-request.ts';

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

/** Owns the directory that holds uploads in flight; removing it at close removes any stragglers. */
export class UploadDirectory {
  private constructor(readonly path: string) {}

  static async create(parent: string): Promise<UploadDirectory> {
    const directory = await mkdtemp(path.join(parent, 'earshot-uploads-'));
    // A process that exits without closing the app (a forced exit after the grace period) still cleans up.
    process.once('exit', () => rmSync(directory, { recursive: true, force: true }));
    return new UploadDirectory(directory);
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

function multipartError(error: unknown, maxBytes: number): ApiError {
  if (error instanceof ApiError) return error;
  const code = (error as { code?: string }).code;
  switch (code) {
    case 'FST_REQ_FILE_TOO_LARGE':
      // OpenAI's own wording; the reader stops at the limit, so it has read one byte more.
      return new ApiError(
        'file_too_large',
        `Maximum content size limit (${maxBytes}) exceeded (${maxBytes + 1} bytes read)`,
      );
    case 'FST_FILES_LIMIT':
      return new ApiError('invalid_request', 'Send exactly one file, in the field "file".', 'file');
    case 'FST_FIELDS_LIMIT':
    case 'FST_PARTS_LIMIT':
      return new ApiError('invalid_request', 'The form has too many fields.');
    case 'FST_PROTO_VIOLATION':
      return new ApiError('invalid_request', 'The form has a forbidden field name.');
    default:
      return new ApiError(
        'invalid_request',
        `The multipart/form-data body could not be read: ${(error as Error).message}`,
      );
  }
}

/**
 * Rejects when no byte of the request body has arrived for `idleMs`, wherever the upload stalls
 * (before the file, inside it or after it), so a stalled client gets a 408 instead of holding a
 * connection and a temporary file until the request timeout.
 */
function stallWatch(request: FastifyRequest, idleMs: number): { stalled: Promise<never>; stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  let fail: (error: ApiError) => void = () => undefined;
  const stalled = new Promise<never>((_, reject) => {
    fail = reject;
  });
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(
      () => fail(new ApiError('upload_timeout', `The upload stalled: no data for ${idleMs} ms.`)),
      idleMs,
    );
  };
  request.raw.on('data', arm);
  arm();
  return {
    stalled,
    stop: () => {
      clearTimeout(timer);
      request.raw.off('data', arm);
    },
  };
}

export async function receiveForm(
  request: FastifyRequest,
  uploads: UploadDirectory,
  maxBytes: number,
  idleTimeoutMs: number,
): Promise<ReceivedForm> {
  if (!request.isMultipart()) {
    throw new ApiError('invalid_request', "Expected a multipart/form-data body with the fields 'file' and 'model'.");
  }
  const fields = new Map<string, string[]>();
  let file: Upload | undefined;

  const readParts = async () => {
    for await (const part of request.parts({ limits: { fileSize: maxBytes, files: 1 } })) {
      const name = fieldName(part.fieldname);
      if (part.type === 'file') {
        if (name !== 'file') {
          part.file.resume();
          throw new ApiError(
            'invalid_request',
            `Unexpected file in field '${part.fieldname}'; send it as 'file'.`,
            name,
          );
        }
        const target = uploads.newFilePath();
        file = { path: target, filename: part.filename, bytes: 0, remove: () => rm(target, { force: true }) };
        await pipeline(part.file, createWriteStream(target));
        file.bytes = part.file.bytesRead;
      } else {
        const values = fields.get(name) ?? [];
        values.push(typeof part.value === 'string' ? part.value : String(part.value));
        fields.set(name, values);
      }
    }
  };

  const watch = stallWatch(request, idleTimeoutMs);
  const reading = readParts();
  // After a stall the reader is abandoned; its own failure, when the connection closes, is expected.
  reading.catch(() => undefined);
  try {
    await Promise.race([reading, watch.stalled]);
  } catch (error) {
    await file?.remove();
    throw multipartError(error, maxBytes);
  } finally {
    watch.stop();
  }
  if (!file && fields.has('file')) {
    throw new ApiError('invalid_value', "The field 'file' must be a file upload, not a text value.", 'file');
  }
  fields.delete('file');
  return { fields, file };
}
