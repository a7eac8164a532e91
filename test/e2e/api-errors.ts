// Strict checks of an error raised by the OpenAI Node SDK: its class, HTTP status and the exact
// OpenAI error body the server sent ({message, type, param, code}).
import assert from 'node:assert/strict';
import type OpenAI from 'openai';

export interface ExpectedError {
  status: number;
  type: string;
  param: string | null;
  code: string | null;
  /** The exact message, or a pattern it must match. */
  message: string | RegExp;
}

type ErrorClass =
  | typeof OpenAI.APIError
  | typeof OpenAI.BadRequestError
  | typeof OpenAI.NotFoundError
  | typeof OpenAI.AuthenticationError
  | typeof OpenAI.RateLimitError;

/** For assert.rejects: the SDK raised `errorClass` with exactly this error body. */
export function sdkError(errorClass: ErrorClass, expected: ExpectedError): (error: unknown) => true {
  return (error: unknown) => {
    assert.ok(error instanceof errorClass, `expected ${errorClass.name}, got ${String(error)}`);
    assert.equal(error.status, expected.status);
    assert.equal(error.type, expected.type);
    assert.equal(error.param, expected.param);
    assert.equal(error.code, expected.code);
    const body = error.error as { message?: unknown } | undefined;
    assert.deepEqual(Object.keys(body ?? {}).sort(), ['code', 'message', 'param', 'type']);
    assertMessage(body?.message, expected.message);
    return true;
  };
}

/** A raw fetch Response carries exactly this OpenAI error. */
export async function assertErrorResponse(response: Response, expected: ExpectedError): Promise<void> {
  assert.equal(response.status, expected.status);
  assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
  const body = (await response.json()) as { error: Record<string, unknown> };
  assert.deepEqual(Object.keys(body), ['error']);
  const { message, ...rest } = body.error;
  assert.deepEqual(rest, { type: expected.type, param: expected.param, code: expected.code });
  assertMessage(message, expected.message);
}

function assertMessage(actual: unknown, expected: string | RegExp): void {
  assert.equal(typeof actual, 'string');
  if (typeof expected === 'string') assert.equal(actual, expected);
  else assert.match(actual as string, expected);
}
