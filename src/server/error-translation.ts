// Turns anything thrown while serving a request into the ApiError the client receives.
import { ApiError } from '../api-errors.ts';

export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  const fastifyError = error as { code?: string; statusCode?: number; message?: string };
  if (fastifyError.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return new ApiError('file_too_large', 'The request body is over the size limit.');
  }
  if (fastifyError.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return new ApiError('invalid_request', "Expected a multipart/form-data body with the fields 'file' and 'model'.");
  }
  if (fastifyError.statusCode !== undefined && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
    return new ApiError('invalid_request', fastifyError.message ?? 'Bad request.');
  }
  return new ApiError('internal_error', 'The server had an unexpected error; it has been logged.');
}
