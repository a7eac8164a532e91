// The playground's calls to earshot's API: the key it sends, OpenAI-shaped errors, the models, a
// transcription (streamed as server-sent events or not), ephemeral keys for the realtime socket.

/**
 * @typedef {{ message: string, type?: string, code?: string | null, param?: string | null }} OpenAIError
 * @typedef {{ id: string, state?: string }} Model
 * @typedef {{ code: string, name: string }} Language
 * @typedef {{ word: string, start: number, end: number }} Word
 * @typedef {{ id: number, start: number, end: number, text: string }} Segment
 * @typedef {{ text: string, language?: string, duration?: number, words?: Word[], segments?: Segment[] }} VerboseTranscript
 * @typedef {Record<string, string | string[]>} FormFields
 */

/**
 * JSON.parse typed as what it is until checked or cast (`any` would let anything through unchecked).
 * @param {string} text
 * @returns {unknown}
 */
export const parseJson = (text) => JSON.parse(text);

/**
 * A response's JSON body, as unknown.
 * @param {Response} response
 * @returns {Promise<unknown>}
 */
const jsonOf = async (response) => parseJson(await response.text());

/** An error answered by the server, in OpenAI's shape, with its HTTP status (0: no answer at all). */
export class ApiProblem extends Error {
  /**
   * @param {number} status
   * @param {OpenAIError} error
   */
  constructor(status, error) {
    super(error.message);
    this.name = 'ApiProblem';
    this.status = status;
    this.type = error.type ?? null;
    this.code = error.code ?? null;
    this.param = error.param ?? null;
  }
}

const KEY_STORAGE = 'earshot.apiKey';

/** The API key the user typed, kept for this tab only (sessionStorage): gone when the tab closes. */
export const apiKey = {
  get() {
    return sessionStorage.getItem(KEY_STORAGE) ?? '';
  },
  /** @param {string} key */
  set(key) {
    if (key === '') sessionStorage.removeItem(KEY_STORAGE);
    else sessionStorage.setItem(KEY_STORAGE, key);
  },
};

/** @returns {Record<string, string>} */
function authorization() {
  const key = apiKey.get();
  return key === '' ? {} : { authorization: `Bearer ${key}` };
}

/**
 * The error a failed response carries: OpenAI's `{"error": {…}}` when the server sent one, else
 * whatever text it sent (a proxy's page, say).
 * @param {Response} response
 */
async function problemOf(response) {
  const text = await response.text();
  try {
    const body = /** @type {{ error?: OpenAIError }} */ (parseJson(text));
    if (body.error && typeof body.error.message === 'string') return new ApiProblem(response.status, body.error);
  } catch {
    // Not JSON: reported as text below.
  }
  return new ApiProblem(response.status, { message: text.trim() || `${response.status} ${response.statusText}` });
}

/**
 * fetch, with a network failure (server down, connection refused) as an ApiProblem of status 0.
 * @param {string} url
 * @param {RequestInit} init
 */
async function request(url, init = {}) {
  let response;
  try {
    response = await fetch(url, { ...init, headers: { ...authorization(), ...init.headers } });
  } catch (error) {
    if (error instanceof DOMException && error.name === 'AbortError') throw error;
    throw new ApiProblem(0, { message: `The server did not answer (${String(error)}).` });
  }
  if (!response.ok) throw await problemOf(response);
  return response;
}

/** @returns {Promise<Model[]>} */
export async function listModels() {
  const body = /** @type {{ data: Model[] }} */ (await jsonOf(await request('/v1/models')));
  return body.data;
}

/** @returns {Promise<Language[]>} */
export async function listLanguages() {
  return /** @type {Language[]} */ (await jsonOf(await fetch('/playground/languages.json')));
}

/**
 * The form a transcription is sent as: the file first, then the fields (a list as `name[]`, as the
 * SDKs send it).
 * @param {Blob} file
 * @param {string} fileName
 * @param {FormFields} fields
 */
function formOf(file, fileName, fields) {
  const form = new FormData();
  form.append('file', file, fileName);
  for (const [name, value] of Object.entries(fields)) {
    if (Array.isArray(value)) for (const item of value) form.append(`${name}[]`, item);
    else form.append(name, value);
  }
  return form;
}

/** @param {string} task */
export const transcriptionPath = (task) =>
  task === 'translate' ? '/v1/audio/translations' : '/v1/audio/transcriptions';

/**
 * One transcription request. With `stream: 'true'` in the fields, the server-sent events are read as
 * they come: `onDelta` gets each piece of text, and the answer is the done event's text. Without, the
 * answer is the body as the server sent it (JSON, text, srt, vtt).
 * @param {{ file: Blob, fileName: string, task: string, fields: FormFields, signal: AbortSignal, onDelta?: (delta: string) => void }} call
 * @returns {Promise<{ body: string, contentType: string }>} the body, or for a stream the events as received
 */
export async function transcribe({ file, fileName, task, fields, signal, onDelta }) {
  const response = await request(transcriptionPath(task), {
    method: 'POST',
    body: formOf(file, fileName, fields),
    signal,
  });
  const contentType = response.headers.get('content-type') ?? '';
  if (!contentType.startsWith('text/event-stream') || !response.body) {
    return { body: await response.text(), contentType };
  }
  let received = '';
  for await (const data of serverSentData(response.body)) {
    received += `data: ${data}\n\n`;
    if (data === '[DONE]') break;
    const event = /** @type {{ type?: string, delta?: string, error?: OpenAIError }} */ (parseJson(data));
    // A failure after the stream started comes as an event (the status was 200 by then).
    if (event.error) throw new ApiProblem(response.status, event.error);
    if (event.type === 'transcript.text.delta' && typeof event.delta === 'string') onDelta?.(event.delta);
  }
  return { body: received, contentType };
}

/**
 * The `data` of each server-sent event, as it arrives (the format's rules: events end at a blank
 * line, `data:` lines of one event are joined by newlines, one space after the colon is dropped).
 * @param {ReadableStream<Uint8Array>} body
 * @returns {AsyncGenerator<string>}
 */
async function* serverSentData(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  /** @type {string[]} */
  let data = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      const lines = buffer.split(/\r\n|\r|\n/);
      buffer = lines.pop() ?? '';
      for (const line of lines) {
        if (line === '') {
          if (data.length > 0) yield data.join('\n');
          data = [];
        } else if (line.startsWith('data:')) {
          data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
        }
      }
    }
  } finally {
    // Stopped early (a failure event, [DONE] before the end): the rest of the body is not wanted.
    await reader.cancel().catch(() => undefined);
  }
}

/**
 * An ephemeral key for one realtime session, minted with the session's settings
 * (POST /v1/realtime/client_secrets): the browser opens the socket with it instead of the API key.
 * @param {object} session
 * @returns {Promise<string>}
 */
export async function mintClientSecret(session) {
  const response = await request('/v1/realtime/client_secrets', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ session }),
  });
  return /** @type {{ value: string }} */ (await jsonOf(response)).value;
}
