// Soak run (not a test): starts the real server, sends a long mix of requests with a fixed number in
// flight, and watches the processes while it does. Good requests in every response format, word
// timestamps, streams read to the end, translations, bad inputs, clients that hang up part way, and
// abusive ones: requests that share an x-request-id (one of them hanging up), forms whose text fields
// are too large (sent slowly), uploads that trickle past the request deadline, and an MP3 whose header
// lies about its duration (an hour of audio that says one second).
//
//   node --import tsx bench/soak.ts [--requests 500] [--concurrency 8] [--model whisper-1]
//        [--env EARSHOT_DEFAULT_MODEL=tiny.en ...] [--max-minutes 20] [--seed 1] [--json out.json]
//
// Every response is classified as expected (a 200 with a well-formed body for a good request, the
// documented 4xx for a bad one, a hang-up that the client itself caused) or unexpected (any 5xx, a
// wrong status, a malformed body, a client-side timeout or network error). Every ~5 s it samples the
// resident memory of the gateway and each of its child processes (the engine workers), the gateway's
// open file descriptors and the files in the upload directory. It exits 1 if a target is missed:
//   - 0 unexpected responses, and every planned request sent within the time budget;
//   - resident memory of each process at the last request within 10 % of that at request 100;
//   - descriptors and upload files back to their starting count once the load has settled.
// Only 127.0.0.1 is contacted; the server is the one this script starts, on a free port.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { projectRoot, projectVenvPython } from '../src/paths.ts';
import { startServer as startTestServer } from '../test/support/server.ts';

// ---------------------------------------------------------------------------------------------
// Options

const { values: args } = parseArgs({
  options: {
    requests: { type: 'string', default: '500' },
    concurrency: { type: 'string', default: '8' },
    model: { type: 'string', default: 'whisper-1' },
    env: { type: 'string', multiple: true, default: [] },
    'max-minutes': { type: 'string', default: '20' },
    'sample-seconds': { type: 'string', default: '5' },
    'settle-seconds': { type: 'string', default: '60' },
    'request-timeout-seconds': { type: 'string', default: '300' },
    seed: { type: 'string', default: '1' },
    json: { type: 'string' },
    'server-log': { type: 'string' },
  },
  strict: true,
});

function positive(name: string, raw: string): number {
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) {
    process.stderr.write(`soak: --${name} must be a positive number, not "${raw}"\n`);
    process.exit(2);
  }
  return value;
}

const REQUESTS = Math.floor(positive('requests', args.requests));
const CONCURRENCY = Math.floor(positive('concurrency', args.concurrency));
const MODEL = args.model;
const MAX_LOAD_MS = positive('max-minutes', args['max-minutes']) * 60_000;
const SAMPLE_MS = positive('sample-seconds', args['sample-seconds']) * 1000;
const SETTLE_MS = positive('settle-seconds', args['settle-seconds']) * 1000;
const REQUEST_TIMEOUT_MS = positive('request-timeout-seconds', args['request-timeout-seconds']) * 1000;
const SEED = Math.floor(positive('seed', args.seed));
const RSS_CHECKPOINT = Math.min(100, REQUESTS);
const RSS_GROWTH_LIMIT = 0.1;

const envOverrides: Record<string, string> = {};
for (const entry of args.env) {
  const eq = entry.indexOf('=');
  if (eq <= 0) {
    process.stderr.write(`soak: --env takes KEY=VALUE, not "${entry}"\n`);
    process.exit(2);
  }
  envOverrides[entry.slice(0, eq)] = entry.slice(eq + 1);
}

// ---------------------------------------------------------------------------------------------
// Audio and the request mix

const audioDir = path.join(projectRoot, 'test', 'audio');
type AudioName = 'jfk.flac' | 'hotwords.mp3' | 'stereo_diarization.wav' | 'multilingual.mp3';
const AUDIO_SECONDS: Record<AudioName, number> = {
  'jfk.flac': 11.0,
  'hotwords.mp3': 4.1,
  'stereo_diarization.wav': 5.0,
  'multilingual.mp3': 60,
};
const audio = Object.fromEntries(
  (Object.keys(AUDIO_SECONDS) as AudioName[]).map((name) => [name, readFileSync(path.join(audioDir, name))]),
) as Record<AudioName, Buffer>;

type Format = 'json' | 'text' | 'srt' | 'vtt' | 'verbose_json';
type Abort = 'mid-upload' | 'after-upload' | 'after-first-delta';

/** What a good request must come back as. */
interface GoodExpectation {
  kind: 'good';
  task: 'transcribe' | 'translate';
  format: Format;
  stream: boolean;
  words: boolean;
  segments: boolean;
  logprobs: boolean;
  audio: AudioName;
}

/** What a bad request must come back as: its status, and its error code and param where they are fixed. */
interface BadExpectation {
  kind: 'bad';
  status: number;
  code?: string | null;
  param?: string | null;
}

interface Plan {
  index: number;
  category: string;
  describe: string;
  endpoint: 'transcriptions' | 'translations';
  fields: [string, string][];
  file?: { name: string; data: Buffer };
  expect: GoodExpectation | BadExpectation;
  abort?: Abort;
  abortAfterMs?: number;
  /** mid-upload: the share of the body sent before hanging up. */
  abortFraction?: number;
  /** The x-request-id sent, when not this request's own (`soak-INDEX`): requests may share one. */
  requestId?: string;
  /** Send the body in pieces of `bytes` every `everyMs`, stopping once the server has answered. */
  trickle?: { bytes: number; everyMs: number };
}

/** mulberry32: a small seeded generator, so a run's plan can be repeated exactly. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const random = prng(SEED);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
const SHORT_AUDIO: readonly AudioName[] = ['jfk.flac', 'jfk.flac', 'hotwords.mp3', 'stereo_diarization.wav'];

function good(
  category: string,
  options: {
    task?: 'transcribe' | 'translate';
    format?: Format;
    stream?: boolean;
    words?: boolean;
    logprobs?: boolean;
    audio?: AudioName;
    abort?: Abort;
  } = {},
): Omit<Plan, 'index'> {
  const task = options.task ?? 'transcribe';
  const format = options.format ?? 'json';
  const stream = options.stream ?? false;
  const words = options.words ?? false;
  const logprobs = options.logprobs ?? false;
  const clip = options.audio ?? pick(SHORT_AUDIO);
  const fields: [string, string][] = [['model', MODEL]];
  if (format !== 'json' || random() < 0.5) fields.push(['response_format', format]);
  if (stream) fields.push(['stream', 'true']);
  if (words) fields.push(['timestamp_granularities[]', 'word'], ['timestamp_granularities[]', 'segment']);
  if (logprobs) fields.push(['include[]', 'logprobs']);
  if (clip === 'hotwords.mp3' && random() < 0.5) fields.push(['hotwords', 'ComfyUI']);
  const plan: Omit<Plan, 'index'> = {
    category,
    describe: `${task} ${clip} ${format}${stream ? ' stream' : ''}${words ? ' +words' : ''}${logprobs ? ' +logprobs' : ''}`,
    endpoint: task === 'transcribe' ? 'transcriptions' : 'translations',
    fields,
    file: { name: clip, data: audio[clip] },
    expect: { kind: 'good', task, format, stream, words, segments: true, logprobs, audio: clip },
  };
  if (options.abort) {
    plan.abort = options.abort;
    plan.describe += ` (client hangs up ${options.abort})`;
    // After the upload: at some point while the job waits in the queue or runs.
    if (options.abort === 'after-upload') plan.abortAfterMs = 100 + Math.floor(random() * 2900);
    if (options.abort === 'mid-upload') {
      plan.abortAfterMs = 50 + Math.floor(random() * 200);
      plan.abortFraction = 0.2 + random() * 0.6;
    }
  }
  return plan;
}

function bad(
  category: string,
  describe: string,
  fields: [string, string][],
  file: { name: string; data: Buffer } | undefined,
  expect: Omit<BadExpectation, 'kind'>,
  endpoint: Plan['endpoint'] = 'transcriptions',
): Omit<Plan, 'index'> {
  return { category, describe, endpoint, fields, ...(file && { file }), expect: { kind: 'bad', ...expect } };
}

function randomBytes(): Buffer {
  const bytes = Buffer.alloc(1024 + Math.floor(random() * 63 * 1024));
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(random() * 256);
  return bytes;
}

const jfk = (): { name: string; data: Buffer } => ({ name: 'jfk.flac', data: audio['jfk.flac'] });

/** Bad fields: each a 400 with the param it names. */
const BAD_FIELDS: (() => Omit<Plan, 'index'>)[] = [
  () =>
    bad(
      'bad field',
      'temperature=5',
      [
        ['model', MODEL],
        ['temperature', '5'],
      ],
      jfk(),
      { status: 400, code: 'invalid_value', param: 'temperature' },
    ),
  () =>
    bad(
      'bad field',
      'response_format=xml',
      [
        ['model', MODEL],
        ['response_format', 'xml'],
      ],
      jfk(),
      { status: 400, code: 'invalid_value', param: 'response_format' },
    ),
  () =>
    bad(
      'bad field',
      'word timestamps with json',
      [
        ['model', MODEL],
        ['timestamp_granularities[]', 'word'],
      ],
      jfk(),
      { status: 400, code: 'invalid_value', param: 'timestamp_granularities' },
    ),
  () =>
    bad(
      'bad field',
      'stream=true with srt',
      [
        ['model', MODEL],
        ['response_format', 'srt'],
        ['stream', 'true'],
      ],
      jfk(),
      { status: 400, code: 'unsupported_value', param: 'response_format' },
    ),
  () =>
    bad(
      'bad field',
      'language=klingon',
      [
        ['model', MODEL],
        ['language', 'klingon'],
      ],
      jfk(),
      { status: 400, code: 'invalid_language_format', param: 'language' },
    ),
  () =>
    bad(
      'bad field',
      'beam_size=0',
      [
        ['model', MODEL],
        ['beam_size', '0'],
      ],
      jfk(),
      { status: 400, code: 'invalid_value', param: 'beam_size' },
    ),
  () =>
    bad('bad field', 'no model', [['response_format', 'json']], jfk(), {
      status: 400,
      code: 'missing_required_parameter',
      param: 'model',
    }),
  () => bad('bad field', 'no file', [['model', MODEL]], undefined, { status: 400 }),
  () =>
    bad(
      'bad field',
      'diarized_json',
      [
        ['model', MODEL],
        ['response_format', 'diarized_json'],
      ],
      jfk(),
      { status: 400, code: 'unsupported_value', param: 'response_format' },
    ),
  () =>
    bad(
      'bad field',
      'translation temperature=-1',
      [
        ['model', MODEL],
        ['temperature', '-1'],
      ],
      jfk(),
      { status: 400, code: 'invalid_value', param: 'temperature' },
      'translations',
    ),
];

/** The mix, by weight (per hundred). */
const MIX: [number, string, () => Omit<Plan, 'index'>][] = [
  [14, 'json', () => good('json')],
  [8, 'text', () => good('text', { format: 'text' })],
  [8, 'srt', () => good('srt', { format: 'srt' })],
  [8, 'vtt', () => good('vtt', { format: 'vtt' })],
  [6, 'verbose_json', () => good('verbose_json', { format: 'verbose_json' })],
  [8, 'verbose_json words', () => good('verbose_json words', { format: 'verbose_json', words: true })],
  [3, 'json logprobs', () => good('json logprobs', { logprobs: true })],
  [7, 'stream json', () => good('stream json', { stream: true })],
  [4, 'stream text', () => good('stream text', { stream: true, format: 'text' })],
  [
    8,
    'translation',
    () =>
      good('translation', { task: 'translate', format: pick(['json', 'text', 'srt', 'vtt', 'verbose_json'] as const) }),
  ],
  [
    2,
    'long (60 s)',
    () =>
      good('long (60 s)', {
        audio: 'multilingual.mp3',
        ...pick([
          { format: 'json' as const },
          { format: 'verbose_json' as const, words: true },
          { task: 'translate' as const, format: 'text' as const },
        ]),
      }),
  ],
  [
    4,
    'random bytes',
    () =>
      bad(
        'random bytes',
        'random bytes as file',
        [['model', MODEL]],
        { name: 'noise.mp3', data: randomBytes() },
        { status: 400, code: null, param: null },
      ),
  ],
  [
    4,
    'unknown model',
    () =>
      bad('unknown model', 'model=no-such-model', [['model', 'no-such-model']], jfk(), {
        status: 404,
        code: 'model_not_found',
      }),
  ],
  [6, 'bad field', () => pick(BAD_FIELDS)()],
  [
    3,
    'empty file',
    () =>
      bad(
        'empty file',
        'zero-byte file',
        [['model', MODEL]],
        { name: 'empty.wav', data: Buffer.alloc(0) },
        { status: 400 },
      ),
  ],
  [2, 'abort mid-upload', () => good('abort mid-upload', { audio: 'multilingual.mp3', abort: 'mid-upload' })],
  [
    3,
    'abort after upload',
    () => good('abort after upload', { format: pick(['json', 'srt', 'verbose_json'] as const), abort: 'after-upload' }),
  ],
  [
    2,
    'abort stream',
    () =>
      good('abort stream', {
        stream: true,
        audio: pick(['multilingual.mp3', 'jfk.flac'] as const),
        abort: 'after-first-delta',
      }),
  ],
];

// Abusive requests. Their server-side limits are set for the run in SERVER_DEFAULTS below.
const SHARED_REQUEST_IDS = ['soak-shared-a', 'soak-shared-b'];

function sharedId(): Omit<Plan, 'index'> {
  const abort = random() < 0.3 ? ('after-upload' as const) : undefined;
  const plan = good('shared request id', { format: pick(['json', 'text'] as const), ...(abort && { abort }) });
  return { ...plan, requestId: pick(SHARED_REQUEST_IDS), describe: `${plan.describe} (shared x-request-id)` };
}

/** Text fields of 60 KiB each (under the 64 KiB per field) that together pass the 256 KiB per form. */
function heldFields(): Omit<Plan, 'index'> {
  const fields: [string, string][] = [['model', MODEL]];
  for (let i = 0; i < 5; i++) fields.push([`note_${i}`, 'x'.repeat(60 * 1024)]);
  return {
    ...bad('held fields', '5 fields of 60 KiB, sent slowly', fields, jfk(), { status: 413, code: 'form_too_large' }),
    trickle: { bytes: 16 * 1024, everyMs: 50 },
  };
}

/** A whole upload at 2 KiB every 250 ms: it cannot arrive before the request deadline. */
function slowUpload(): Omit<Plan, 'index'> {
  return {
    ...bad('slow upload', 'jfk.flac at 8 KiB/s', [['model', MODEL]], jfk(), { status: 408, code: 'request_timeout' }),
    trickle: { bytes: 2 * 1024, everyMs: 250 },
  };
}

let lyingMp3: Buffer | undefined;

function lyingDuration(): Omit<Plan, 'index'> {
  return bad(
    'lying duration',
    'an hour of MP3 whose header says 1 s',
    [['model', MODEL]],
    { name: 'lying.mp3', data: lyingMp3! },
    { status: 400, code: 'audio_too_long', param: 'file' },
  );
}

MIX.push(
  [4, 'shared request id', sharedId],
  [1, 'held fields', heldFields],
  [1, 'slow upload', slowUpload],
  [1, 'lying duration', lyingDuration],
);

function makePlan(count: number): Plan[] {
  const total = MIX.reduce((sum, [weight]) => sum + weight, 0);
  const plans: Plan[] = [];
  // Every kind once first (shuffled), so request 100 comes after every code path has run.
  const firsts = MIX.map((entry) => entry).sort(() => random() - 0.5);
  for (let index = 0; index < count; index++) {
    let make: () => Omit<Plan, 'index'>;
    if (index < firsts.length) {
      make = firsts[index]![2];
    } else {
      let roll = random() * total;
      make = MIX[MIX.length - 1]![2];
      for (const [weight, , maker] of MIX) {
        if ((roll -= weight) < 0) {
          make = maker;
          break;
        }
      }
    }
    plans.push({ index, ...make() });
  }
  return plans;
}

// ---------------------------------------------------------------------------------------------
// Sending

interface Outcome {
  status?: number | undefined;
  contentType?: string | undefined;
  requestId?: string | undefined;
  body: string;
  events?: unknown[];
  /** The client hung up on purpose before the response was complete. */
  aborted?: string;
  /** A network error or timeout the client did not cause. */
  error?: string;
  ms: number;
}

let agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });

async function encodeForm(plan: Plan): Promise<{ body: Buffer; contentType: string }> {
  const form = new FormData();
  for (const [name, value] of plan.fields) form.append(name, value);
  if (plan.file) form.append('file', new Blob([plan.file.data]), plan.file.name);
  const response = new Response(form);
  return { body: Buffer.from(await response.arrayBuffer()), contentType: response.headers.get('content-type') ?? '' };
}

/** SSE: "data: …" blocks separated by a blank line. Returns the parsed events and the unparsed rest. */
function parseEvents(buffer: string): { events: unknown[]; rest: string } {
  const events: unknown[] = [];
  let rest = buffer;
  let end: number;
  while ((end = rest.indexOf('\n\n')) >= 0) {
    const block = rest.slice(0, end);
    rest = rest.slice(end + 2);
    const data = block
      .split('\n')
      .filter((line) => line.startsWith('data:'))
      .map((line) => line.slice(5).trimStart())
      .join('\n');
    if (data === '') continue;
    try {
      events.push(data === '[DONE]' ? '[DONE]' : (JSON.parse(data) as unknown));
    } catch {
      events.push({ unparseable: data });
    }
  }
  return { events, rest };
}

async function send(port: number, plan: Plan): Promise<Outcome> {
  const { body, contentType } = await encodeForm(plan);
  const started = performance.now();
  return new Promise<Outcome>((resolve) => {
    const outcome: Outcome = { body: '', ms: 0 };
    let settled = false;
    const timers: { deadline?: NodeJS.Timeout; hangUp?: NodeJS.Timeout } = {};
    const finish = (fields: Partial<Outcome> = {}) => {
      if (settled) return;
      settled = true;
      clearTimeout(timers.deadline);
      clearTimeout(timers.hangUp);
      Object.assign(outcome, fields, { ms: performance.now() - started });
      resolve(outcome);
    };
    const hangUp = (why: string) => {
      if (settled) return;
      finish({ aborted: why });
      request.destroy();
    };
    const request = http.request({
      agent,
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: `/v1/audio/${plan.endpoint}`,
      headers: {
        'content-type': contentType,
        'content-length': String(body.length),
        'x-request-id': plan.requestId ?? `soak-${plan.index}`,
      },
    });
    timers.deadline = setTimeout(() => {
      finish({ error: `no complete response within ${REQUEST_TIMEOUT_MS} ms` });
      request.destroy();
    }, REQUEST_TIMEOUT_MS);
    let answered = false;
    request.on('error', (error) => {
      // A trickled upload the server has answered and closed: the client's next write fails; the
      // answer it has is what counts.
      if (answered && plan.trickle) return;
      finish({ error: `${(error as NodeJS.ErrnoException).code ?? ''} ${error.message}` });
    });
    request.on('response', (response) => {
      answered = true;
      outcome.status = response.statusCode;
      outcome.contentType = response.headers['content-type'];
      outcome.requestId = response.headers['x-request-id'] as string | undefined;
      const streaming = (outcome.contentType ?? '').startsWith('text/event-stream');
      const events: unknown[] = [];
      let pending = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        outcome.body += chunk;
        if (!streaming) return;
        const parsed = parseEvents(pending + chunk);
        pending = parsed.rest;
        events.push(...parsed.events);
        outcome.events = events;
        if (plan.abort === 'after-first-delta' && events.some((e) => isType(e, 'transcript.text.delta'))) {
          // Only a hang-up if the stream is not already complete.
          if (!events.includes('[DONE]')) hangUp('after the first stream delta');
        }
      });
      response.on('end', () => finish());
      response.on('error', (error) => finish({ error: `response: ${error.message}` }));
      response.on('aborted', () => finish({ error: 'the server closed the response part way' }));
    });

    if (plan.trickle) {
      const { bytes, everyMs } = plan.trickle;
      let sent = 0;
      const drip = () => {
        if (answered || settled || request.destroyed) return;
        const piece = body.subarray(sent, sent + bytes);
        sent += piece.length;
        if (sent >= body.length) request.end(piece);
        else request.write(piece, () => setTimeout(drip, everyMs));
      };
      drip();
    } else if (plan.abort === 'mid-upload') {
      // Send part of the body, then hang up while the server is still reading it.
      request.write(body.subarray(0, Math.floor(body.length * (plan.abortFraction ?? 0.5))));
      timers.hangUp = setTimeout(() => hangUp('part way through the upload'), plan.abortAfterMs ?? 100);
    } else {
      request.end(body);
      if (plan.abort === 'after-upload') {
        timers.hangUp = setTimeout(() => hangUp(`${plan.abortAfterMs} ms after the upload`), plan.abortAfterMs ?? 500);
      }
    }
  });
}

function isType(event: unknown, type: string): event is Record<string, unknown> {
  return typeof event === 'object' && event !== null && (event as { type?: unknown }).type === type;
}

// ---------------------------------------------------------------------------------------------
// Checking

function parseJson(body: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(body);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

const isNumber = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value);

/** The text must be plausible for the clip: JFK's has known words, the others must not be empty. */
function textProblem(text: string, clip: AudioName): string | undefined {
  if (text.trim() === '') return 'empty text';
  if (clip === 'jfk.flac' && !/country/i.test(text)) return `JFK text without "country": ${JSON.stringify(text)}`;
  return undefined;
}

function checkGood(expect: GoodExpectation, outcome: Outcome): string | undefined {
  if (outcome.status !== 200) return `status ${outcome.status}, expected 200`;
  const type = outcome.contentType ?? '';
  if (expect.stream) {
    if (!type.startsWith('text/event-stream')) return `content-type ${type}, expected text/event-stream`;
    const events = outcome.events ?? [];
    if (events.at(-1) !== '[DONE]') return `stream does not end with [DONE] (${events.length} events)`;
    const failure = events.find((event) => typeof event === 'object' && event !== null && 'error' in event);
    if (failure) return `error event in stream: ${JSON.stringify(failure)}`;
    const deltas = events.filter((event) => isType(event, 'transcript.text.delta'));
    const dones = events.filter((event) => isType(event, 'transcript.text.done'));
    if (dones.length !== 1) return `${dones.length} done events`;
    if (events.length !== deltas.length + 2) return 'stream has events other than deltas, done and [DONE]';
    const done = dones[0]!;
    if (typeof done.text !== 'string') return 'done event without text';
    const joined = deltas.map((delta) => String(delta.delta)).join('');
    if (joined !== done.text) return `deltas ${JSON.stringify(joined)} != done text ${JSON.stringify(done.text)}`;
    const usage = done.usage as { type?: unknown; seconds?: unknown } | undefined;
    if (usage?.type !== 'duration' || !isNumber(usage.seconds)) return `done event usage ${JSON.stringify(usage)}`;
    if (expect.logprobs && !Array.isArray(done.logprobs)) return 'done event without logprobs';
    return textProblem(done.text, expect.audio);
  }
  const jsonFormat = expect.format === 'json' || expect.format === 'verbose_json';
  const wantType = jsonFormat ? 'application/json' : 'text/plain';
  if (!type.startsWith(wantType)) return `content-type ${type}, expected ${wantType}`;
  const body = outcome.body;
  const seconds = AUDIO_SECONDS[expect.audio];
  switch (expect.format) {
    case 'text':
      if (!body.endsWith('\n')) return 'text without a trailing newline';
      return textProblem(body, expect.audio);
    case 'srt': {
      if (!/^1\n\d{2}:\d{2}:\d{2},\d{3} --> \d{2}:\d{2}:\d{2},\d{3}\n\S/.test(body))
        return `malformed srt: ${JSON.stringify(body.slice(0, 120))}`;
      return textProblem(body, expect.audio);
    }
    case 'vtt': {
      if (!/^WEBVTT\n\n\d{2}:\d{2}:\d{2}\.\d{3} --> \d{2}:\d{2}:\d{2}\.\d{3}\n\S/.test(body))
        return `malformed vtt: ${JSON.stringify(body.slice(0, 120))}`;
      return textProblem(body, expect.audio);
    }
    case 'json': {
      const json = parseJson(body);
      if (!json || typeof json.text !== 'string') return `malformed json: ${body.slice(0, 200)}`;
      const usage = json.usage as { type?: unknown; seconds?: unknown } | undefined;
      if (expect.task === 'transcribe') {
        if (
          usage?.type !== 'duration' ||
          !isNumber(usage.seconds) ||
          Math.abs(usage.seconds - Math.ceil(seconds)) > 1
        ) {
          return `usage ${JSON.stringify(usage)} for a ${seconds} s clip`;
        }
      } else if (usage !== undefined) {
        return 'translation with usage';
      }
      if (expect.logprobs) {
        const logprobs = json.logprobs;
        if (!Array.isArray(logprobs) || logprobs.length === 0) return 'no logprobs';
        const bad = (logprobs as unknown[]).find(
          (entry) =>
            typeof (entry as { token?: unknown }).token !== 'string' ||
            !isNumber((entry as { logprob?: unknown }).logprob),
        );
        if (bad) return `malformed logprob ${JSON.stringify(bad)}`;
      }
      return textProblem(json.text, expect.audio);
    }
    case 'verbose_json': {
      const json = parseJson(body);
      if (!json || typeof json.text !== 'string') return `malformed verbose_json: ${body.slice(0, 200)}`;
      if (json.task !== expect.task) return `task ${String(json.task)}`;
      if (typeof json.language !== 'string' || json.language === '') return 'no language';
      if (!isNumber(json.duration) || Math.abs(json.duration - seconds) > 1)
        return `duration ${String(json.duration)}, expected about ${seconds}`;
      const segments = json.segments;
      if (!Array.isArray(segments) || segments.length === 0) return 'no segments';
      const badSegment = (segments as Record<string, unknown>[]).find(
        (segment, id) =>
          segment.id !== id ||
          !isNumber(segment.start) ||
          !isNumber(segment.end) ||
          segment.end < segment.start ||
          typeof segment.text !== 'string' ||
          !Array.isArray(segment.tokens),
      );
      if (badSegment) return `malformed segment ${JSON.stringify(badSegment).slice(0, 200)}`;
      if (expect.words) {
        const words = json.words;
        if (!Array.isArray(words) || words.length === 0) return 'no words';
        let last = -Infinity;
        for (const word of words as Record<string, unknown>[]) {
          if (
            typeof word.word !== 'string' ||
            !isNumber(word.start) ||
            !isNumber(word.end) ||
            word.end < word.start ||
            word.start < last
          ) {
            return `malformed or out-of-order word ${JSON.stringify(word)}`;
          }
          last = word.start;
        }
      } else if ('words' in json) {
        return 'words without word granularity';
      }
      if (expect.task === 'transcribe' ? json.usage === undefined : json.usage !== undefined)
        return 'usage wrong for the task';
      return textProblem(json.text, expect.audio);
    }
  }
}

function checkBad(expect: BadExpectation, outcome: Outcome): string | undefined {
  if (outcome.status !== expect.status) return `status ${outcome.status}, expected ${expect.status}`;
  const json = parseJson(outcome.body);
  const error = json?.error as Record<string, unknown> | undefined;
  if (
    !error ||
    typeof error.message !== 'string' ||
    typeof error.type !== 'string' ||
    !('param' in error) ||
    !('code' in error)
  ) {
    return `not an OpenAI error body: ${outcome.body.slice(0, 200)}`;
  }
  if (expect.code !== undefined && error.code !== expect.code)
    return `code ${String(error.code)}, expected ${String(expect.code)}`;
  if (expect.param !== undefined && error.param !== expect.param)
    return `param ${String(error.param)}, expected ${String(expect.param)}`;
  return undefined;
}

/** Undefined if the outcome is what the plan expects; else what is wrong. */
function classify(plan: Plan, outcome: Outcome): string | undefined {
  if (outcome.error) return outcome.error;
  if (outcome.status !== undefined && outcome.status >= 500)
    return `server error ${outcome.status}: ${outcome.body.slice(0, 300)}`;
  if (outcome.aborted) {
    // A hang-up the client chose. Anything received before it must still not be a failure.
    if (outcome.status !== undefined && outcome.status !== 200) return `status ${outcome.status} before the hang-up`;
    const failure = (outcome.events ?? []).find(
      (event) => typeof event === 'object' && event !== null && 'error' in event,
    );
    return failure ? `error event before the hang-up: ${JSON.stringify(failure)}` : undefined;
  }
  const sentId = plan.requestId ?? `soak-${plan.index}`;
  if (outcome.requestId !== sentId) return `x-request-id ${outcome.requestId}, expected ${sentId}`;
  return plan.expect.kind === 'good' ? checkGood(plan.expect, outcome) : checkBad(plan.expect, outcome);
}

// ---------------------------------------------------------------------------------------------
// Watching the processes

interface ProcessSample {
  pid: number;
  label: string;
  rssKiB: number | undefined;
}

interface Sample {
  at: string;
  seconds: number;
  completed: number;
  processes: ProcessSample[];
  fds: number | undefined;
  uploadFiles: number | undefined;
  /** The machine's 1-minute load average: other work on the machine slows the run down. */
  load: number;
  /** The gateway's V8 heap in use (from /metrics), read at the idle checkpoints only. */
  heapUsedBytes?: number | undefined;
}

function rssKiB(pid: number): number | undefined {
  try {
    const kib = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kib === undefined ? undefined : Number(kib);
  } catch {
    return undefined;
  }
}

function childPids(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return []; // pgrep exits 1 when there are none
  }
}

function processLabel(pid: number): string {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const model = cmdline.indexOf('--name');
    if (cmdline.includes('earshot_worker')) return `worker ${model >= 0 ? cmdline[model + 1] : ''}`.trim();
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

function fdCount(pid: number): number | undefined {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return undefined;
  }
}

/** Files in the server's upload directories (earshot-uploads-* under the fresh EARSHOT_TMP_DIR). */
function uploadFileCount(tmpDir: string): number | undefined {
  try {
    return readdirSync(tmpDir)
      .filter((entry) => entry.startsWith('earshot-uploads-'))
      .reduce((sum, entry) => sum + readdirSync(path.join(tmpDir, entry)).length, 0);
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// The server

interface Server {
  port: number;
  child: ChildProcess;
  logs: Record<string, unknown>[];
}

/** GET over a fresh connection that is closed afterwards, so it leaves no socket behind. */
function getOnce(port: number, urlPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.get(
      { host: '127.0.0.1', port, path: urlPath, agent: false, headers: { connection: 'close' } },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      },
    );
    request.on('error', reject);
    request.setTimeout(10_000, () => request.destroy(new Error('timeout')));
  });
}

async function startServer(env: Record<string, string>): Promise<Server> {
  // The tests' own start (the real entry point, on a free port of 127.0.0.1); readiness is awaited here
  // over connections closed after each check, so that none is left open to count as the gateway's.
  const running = await startTestServer(env, { waitForReady: false });
  const child = running.process;
  const port = Number(new URL(running.url).port);
  const deadline = Date.now() + 300_000;
  for (;;) {
    const { status } = await getOnce(port, '/health').catch(() => ({ status: 0 }));
    if (status === 200) break;
    if (child.exitCode !== null) throw new Error(`earshot exited with code ${child.exitCode}`);
    if (Date.now() > deadline) throw new Error('earshot did not become ready within 300 s');
    await sleep(250);
  }
  return { port, child, logs: running.logs };
}

async function stopServer(server: Server): Promise<{ code: number | null; signal: string | null; ms: number }> {
  const started = Date.now();
  if (server.child.exitCode !== null) return { code: server.child.exitCode, signal: null, ms: 0 };
  const exited = once(server.child, 'exit') as Promise<[number | null, string | null]>;
  server.child.kill('SIGTERM');
  const kill = setTimeout(() => server.child.kill('SIGKILL'), 60_000);
  const [code, signal] = await exited;
  clearTimeout(kill);
  return { code, signal, ms: Date.now() - started };
}

/** The gateway's V8 heap in use, from its Prometheus process metrics (EARSHOT_PUBLIC_METRICS). */
async function gatewayHeapUsed(port: number): Promise<number | undefined> {
  const { body } = await getOnce(port, '/metrics').catch(() => ({ body: '' }));
  const match = /^earshot_gateway_nodejs_heap_size_used_bytes (\S+)$/m.exec(body);
  return match ? Number(match[1]) : undefined;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// Reporting helpers

function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((row) => row.map(String))];
  const widths = headers.map((_, column) => Math.max(...cells.map((row) => (row[column] ?? '').length)));
  const line = (row: string[]) => `| ${row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join(' | ')} |`;
  return [
    line(headers),
    `| ${widths.map((width) => '-'.repeat(width)).join(' | ')} |`,
    ...cells.slice(1).map(line),
  ].join('\n');
}

const mib = (kib: number | undefined) => (kib === undefined ? '-' : `${(kib / 1024).toFixed(1)} MiB`);
const pct = (value: number) => `${value >= 0 ? '+' : ''}${(value * 100).toFixed(1)} %`;

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

// ---------------------------------------------------------------------------------------------
// The run

/**
 * The server's settings for the run, besides --env: metrics readable without a key, and limits low
 * enough that the abusive requests meet them within the run (a 15 s request deadline for the slow
 * uploads, 30 minutes of audio for the lying MP3, which holds an hour).
 */
const SERVER_DEFAULTS: Record<string, string> = {
  EARSHOT_PUBLIC_METRICS: 'true',
  EARSHOT_REQUEST_TIMEOUT_MS: '15000',
  EARSHOT_MAX_AUDIO_SECONDS: '1800',
};

/** The lying MP3 of the worker's own test (worker/tests/test_hard_limits.py), made with PyAV. */
function makeLyingMp3(directory: string): Buffer {
  const script =
    'import sys; from pathlib import Path; sys.path.insert(0, "worker/tests"); ' +
    'from test_hard_limits import lying_mp3; print(lying_mp3(Path(sys.argv[1])))';
  const made = execFileSync(projectVenvPython, ['-c', script, directory], { cwd: projectRoot, encoding: 'utf8' });
  const file = made.trim();
  const data = readFileSync(file);
  rmSync(file);
  rmSync(path.join(directory, 'head.mp3'), { force: true });
  return data;
}

async function main(): Promise<number> {
  const tmpDir = mkdtempSync(path.join(os.tmpdir(), 'earshot-soak-'));
  lyingMp3 = makeLyingMp3(tmpDir);
  const env = { ...SERVER_DEFAULTS, ...envOverrides, EARSHOT_TMP_DIR: tmpDir };
  const shownEnv = Object.entries(env)
    .filter(([key]) => key.startsWith('EARSHOT_'))
    .map(([key, value]) => `${key}=${value}`);
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith('EARSHOT_') && !(key in env)) shownEnv.push(`${key}=${value} (inherited)`);
  }
  console.log(`soak: ${REQUESTS} requests, ${CONCURRENCY} in flight, model ${MODEL}, seed ${SEED}`);
  console.log(
    `soak: ${os.availableParallelism()} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, node ${process.version}`,
  );
  console.log(`soak: server env ${shownEnv.join(' ')}`);

  const plans = makePlan(REQUESTS);
  const startedAt = Date.now();
  const server = await startServer(env);
  // Ctrl-C: stop the server this script started (and so its workers), remove the temp dir, exit.
  const stopOnSignal = () => {
    server.child.once('exit', () => {
      rmSync(tmpDir, { recursive: true, force: true });
      process.exit(130);
    });
    server.child.kill('SIGTERM');
  };
  process.once('SIGINT', stopOnSignal);
  const gatewayPid = server.child.pid!;
  const health = parseJson((await getOnce(server.port, '/health')).body);
  console.log(
    `soak: server pid ${gatewayPid} on port ${server.port} ready after ${((Date.now() - startedAt) / 1000).toFixed(1)} s; default model ${String(health?.defaultModel)}`,
  );

  let completed = 0;
  const loadStarted = Date.now();
  const samples: Sample[] = [];
  const sample = (at: string): Sample => {
    const processes: ProcessSample[] = [{ pid: gatewayPid, label: 'gateway (node)', rssKiB: rssKiB(gatewayPid) }];
    for (const pid of childPids(gatewayPid)) processes.push({ pid, label: processLabel(pid), rssKiB: rssKiB(pid) });
    const entry: Sample = {
      at,
      seconds: (Date.now() - loadStarted) / 1000,
      completed,
      processes,
      fds: fdCount(gatewayPid),
      uploadFiles: uploadFileCount(tmpDir),
      load: os.loadavg()[0] ?? 0,
    };
    samples.push(entry);
    return entry;
  };

  await sleep(1000);
  const atStart = sample('start');
  const ticker = setInterval(() => sample('tick'), SAMPLE_MS);
  let atCheckpoint: Sample | undefined;
  let atEnd: Sample | undefined;

  interface Record_ {
    plan: Plan;
    outcome: Outcome;
    problem: string | undefined;
  }
  const records: Record_[] = [];
  let next = 0;
  let timedOut = false;
  const deadline = loadStarted + MAX_LOAD_MS;
  /** Waits (up to the settle time) until no job runs or waits, hung-up clients' jobs included. */
  const waitIdle = async (): Promise<boolean> => {
    const until = Date.now() + SETTLE_MS;
    for (;;) {
      const status = parseJson((await getOnce(server.port, '/health').catch(() => ({ body: '' }))).body);
      const models = (status?.models ?? []) as { running?: number; queued?: number }[];
      if (status && models.every((model) => !model.running && !model.queued)) return true;
      if (Date.now() > until) return false;
      await sleep(250);
    }
  };
  // At request 100 the lanes pause until all of the first 100 have finished and the engine is idle,
  // so that memory is compared in the same state at request 100 and at the last request.
  let releaseCheckpoint!: () => void;
  const checkpointGate = new Promise<void>((resolve) => (releaseCheckpoint = resolve));
  const lane = async () => {
    for (;;) {
      if (next >= RSS_CHECKPOINT) await checkpointGate;
      if (Date.now() > deadline) {
        timedOut = next < plans.length;
        return;
      }
      const plan = plans[next++];
      if (!plan) return;
      const outcome = await send(server.port, plan);
      const problem = classify(plan, outcome);
      records.push({ plan, outcome, problem });
      completed++;
      if (problem) console.log(`soak: UNEXPECTED #${plan.index} ${plan.describe}: ${problem}`);
      if (completed === REQUESTS) atEnd = sample(`request ${completed}`);
      if (completed === RSS_CHECKPOINT) {
        await waitIdle();
        atCheckpoint = sample(`request ${completed}, idle`);
        atCheckpoint.heapUsedBytes = await gatewayHeapUsed(server.port);
        releaseCheckpoint();
      }
      if (completed % 50 === 0) {
        const unexpected = records.filter((r) => r.problem).length;
        console.log(
          `soak: ${completed}/${REQUESTS} done in ${((Date.now() - loadStarted) / 1000).toFixed(0)} s, ${unexpected} unexpected`,
        );
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  releaseCheckpoint();
  const loadSeconds = (Date.now() - loadStarted) / 1000;
  atEnd ??= sample(`request ${completed}`);
  await waitIdle();
  const atLast = sample(`request ${completed}, idle`);
  atLast.heapUsedBytes = await gatewayHeapUsed(server.port);

  // Settle: the client closes its connections; then descriptors and upload files should return to
  // their starting count.
  agent.destroy();
  agent = new http.Agent();
  const settleDeadline = Date.now() + SETTLE_MS;
  let atSettled = sample('settled');
  while (Date.now() < settleDeadline) {
    await sleep(500);
    atSettled = sample('settled');
    if (
      (atSettled.fds ?? Infinity) <= (atStart.fds ?? 0) &&
      (atSettled.uploadFiles ?? Infinity) <= (atStart.uploadFiles ?? 0)
    )
      break;
  }
  const settleSeconds = (Date.now() - loadStarted) / 1000 - loadSeconds;
  clearInterval(ticker);

  const metricsText = (await getOnce(server.port, '/metrics').catch(() => ({ status: 0, body: '' }))).body;
  const finalHealth = await getOnce(server.port, '/health').catch((error: Error) => ({
    status: 0,
    body: error.message,
  }));
  const workerPids = atSettled.processes.slice(1).map((p) => p.pid);
  const stopped = await stopServer(server);
  process.off('SIGINT', stopOnSignal);
  await sleep(500);
  const leftovers = workerPids.filter((pid) => existsSync(`/proc/${pid}`) && rssKiB(pid) !== undefined);
  const tmpLeft = readdirSync(tmpDir);
  rmSync(tmpDir, { recursive: true, force: true });

  // ---- Requests
  const unexpected = records.filter((record) => record.problem);
  console.log(`\n## Requests (${records.length} of ${REQUESTS} sent in ${loadSeconds.toFixed(0)} s)\n`);
  const categories = [...new Set(MIX.map(([, name]) => name))];
  console.log(
    table(
      ['kind', 'sent', 'expected', 'unexpected', 'hung up', 'p50 ms', 'p95 ms'],
      categories.map((name) => {
        const mine = records.filter((record) => record.plan.category === name);
        const times = mine.map((record) => record.outcome.ms);
        return [
          name,
          mine.length,
          mine.filter((record) => !record.problem).length,
          mine.filter((record) => record.problem).length,
          mine.filter((record) => record.outcome.aborted).length,
          Math.round(percentile(times, 50)),
          Math.round(percentile(times, 95)),
        ];
      }),
    ),
  );
  const statusCounts = new Map<string, number>();
  for (const record of records) {
    const key = record.outcome.aborted ? 'hung up' : String(record.outcome.status ?? record.outcome.error);
    statusCounts.set(key, (statusCounts.get(key) ?? 0) + 1);
  }
  console.log(`\nclient saw: ${[...statusCounts].map(([key, count]) => `${key} × ${count}`).join(', ')}`);

  // What the server made of the hang-ups: its log lines for each request id (the job cancelled, and
  // the one "request done" line every request should get).
  const linesByRequest = new Map<string, Record<string, unknown>[]>();
  for (const entry of server.logs) {
    if (typeof entry.reqId !== 'string') continue;
    const lines = linesByRequest.get(entry.reqId) ?? [];
    lines.push(entry);
    linesByRequest.set(entry.reqId, lines);
  }
  // Requests that shared an x-request-id share its lines: they are checked together below.
  const hangUps = records.filter((record) => record.outcome.aborted && record.plan.requestId === undefined);
  const serverView = new Map<string, number>();
  for (const record of hangUps) {
    const lines = linesByRequest.get(`soak-${record.plan.index}`) ?? [];
    const done = lines.find((line) => line.msg === 'request done');
    const cancelled = lines.some((line) => line.msg === 'client disconnected; job cancelled');
    const failed = lines.find((line) => typeof line.error === 'string' && line.msg !== 'request done');
    const what = [
      done
        ? `logged ${String(done.status)}${typeof done.error === 'string' ? ` ${done.error}` : ''}`
        : 'no "request done" line',
      cancelled ? 'job cancelled' : lines.some((line) => line.msg === 'job queued') ? 'job not cancelled' : 'no job',
      ...(failed && !cancelled ? [`error ${String(failed.error)}`] : []),
    ].join(', ');
    const key = `${record.plan.describe.replace(/ \(client hangs up.*\)$/, '')} [${record.plan.category}]: ${what}`;
    serverView.set(key, (serverView.get(key) ?? 0) + 1);
  }
  if (hangUps.length > 0) {
    console.log('\nwhat the server logged for the requests the client hung up on:');
    for (const [key, count] of [...serverView].sort()) console.log(`  ${key} × ${count}`);
  }
  // The README promises one "request done" line per request; count the requests that got another number.
  const lineCounts = new Map<string, number>();
  const doneLines = (id: string) => (linesByRequest.get(id) ?? []).filter((line) => line.msg === 'request done').length;
  for (const id of SHARED_REQUEST_IDS) {
    const sharing = records.filter((record) => record.plan.requestId === id).length;
    const count = doneLines(id);
    if (count !== sharing) lineCounts.set(`${sharing} requests sharing ${id}: ${count} lines`, sharing);
  }
  for (const record of records) {
    if (record.plan.requestId !== undefined) continue;
    const count = (linesByRequest.get(`soak-${record.plan.index}`) ?? []).filter(
      (line) => line.msg === 'request done',
    ).length;
    if (count === 1) continue;
    const key = `${record.plan.category}${record.outcome.aborted ? ' (hung up)' : ''}: ${count} lines`;
    lineCounts.set(key, (lineCounts.get(key) ?? 0) + 1);
  }
  console.log(
    `requests without exactly one "request done" log line: ${[...lineCounts.values()].reduce((a, b) => a + b, 0)}` +
      (lineCounts.size ? ` (${[...lineCounts].map(([key, n]) => `${key} × ${n}`).join('; ')})` : ''),
  );
  const serverErrors = server.logs.filter((entry) => Number(entry.level) >= 50);
  const warnings = new Map<string, number>();
  for (const entry of server.logs.filter((e) => Number(e.level) === 40)) {
    warnings.set(String(entry.msg), (warnings.get(String(entry.msg)) ?? 0) + 1);
  }
  console.log(
    `server log: ${serverErrors.length} error lines${warnings.size ? `; warnings: ${[...warnings].map(([msg, n]) => `"${msg}" × ${n}`).join(', ')}` : ''}`,
  );
  for (const entry of serverErrors.slice(0, 20)) console.log(`  ${JSON.stringify(entry).slice(0, 400)}`);

  // What the server counted (Prometheus): requests to the audio routes by status, and jobs by outcome.
  const counted = new Map<string, number>();
  const jobs = new Map<string, number>();
  for (const line of metricsText.split('\n')) {
    const request = /^earshot_http_requests_total\{(.*)\} (\S+)$/.exec(line);
    if (request && /route="\/v1\/audio\//.test(request[1] ?? '')) {
      const status = /status="(\d+)"/.exec(request[1] ?? '')?.[1] ?? '?';
      counted.set(status, (counted.get(status) ?? 0) + Number(request[2]));
    }
    const job = /^earshot_job_duration_seconds_count\{.*outcome="(\w+)".*\} (\S+)$/.exec(line);
    if (job) jobs.set(job[1] ?? '?', (jobs.get(job[1] ?? '?') ?? 0) + Number(job[2]));
  }
  const countedTotal = [...counted.values()].reduce((sum, n) => sum + n, 0);
  console.log(
    `/metrics: ${countedTotal} of ${records.length} audio requests counted (${[...counted].map(([status, n]) => `${status} × ${n}`).join(', ')}); ` +
      `jobs by outcome: ${[...jobs].map(([outcome, n]) => `${outcome} × ${n}`).join(', ') || 'none'}`,
  );

  console.log(`\n## Unexpected responses: ${unexpected.length}\n`);
  for (const { plan, outcome, problem } of unexpected) {
    console.log(
      `- #${plan.index} [${plan.category}] ${plan.describe} → ${problem} (status ${outcome.status ?? '-'}, ${Math.round(outcome.ms)} ms) body: ${JSON.stringify(outcome.body.slice(0, 300))}`,
    );
  }

  // ---- Memory
  const checkpoint = atCheckpoint ?? atStart;
  console.log(
    `\n## Resident memory (RSS at request ${checkpoint.completed} vs request ${atLast.completed}, each once the engine is idle)\n`,
  );
  const pids = [...new Set(samples.flatMap((s) => s.processes.map((p) => p.pid)))];
  const memoryRows: (string | number)[][] = [];
  let memoryMet = true;
  for (const pid of pids) {
    const at = (s: Sample) => s.processes.find((p) => p.pid === pid)?.rssKiB;
    const label = samples.flatMap((s) => s.processes).find((p) => p.pid === pid)?.label ?? '?';
    const peak = Math.max(...samples.map((s) => at(s) ?? 0));
    const before = at(checkpoint);
    const after = at(atLast);
    let growth = '-';
    let met = 'n/a';
    if (before !== undefined && after !== undefined) {
      const ratio = (after - before) / before;
      growth = pct(ratio);
      met = ratio <= RSS_GROWTH_LIMIT ? 'yes' : `NO (by ${((ratio - RSS_GROWTH_LIMIT) * 100).toFixed(1)} points)`;
      if (ratio > RSS_GROWTH_LIMIT) memoryMet = false;
    } else if (before !== undefined || after !== undefined) {
      met = 'NO (process replaced)';
      memoryMet = false;
    }
    memoryRows.push([
      `${label} ${pid}`,
      mib(at(atStart)),
      mib(before),
      mib(after),
      growth,
      mib(peak),
      mib(at(atSettled)),
      met,
    ]);
  }
  console.log(
    table(
      ['process', 'start', `@${checkpoint.completed}`, `@${atLast.completed}`, 'growth', 'peak', 'settled', '≤ 10 %'],
      memoryRows,
    ),
  );
  const heapBefore = checkpoint.heapUsedBytes;
  const heapAfter = atLast.heapUsedBytes;
  if (heapBefore !== undefined && heapAfter !== undefined) {
    console.log(
      `\ngateway V8 heap in use (not a target; RSS also holds code and buffers): ${mib(heapBefore / 1024)} @${checkpoint.completed} → ` +
        `${mib(heapAfter / 1024)} @${atLast.completed} (${pct((heapAfter - heapBefore) / heapBefore)})`,
    );
  }

  // ---- Descriptors and temp files
  const fdsMet = (atSettled.fds ?? Infinity) <= (atStart.fds ?? 0);
  const filesMet = (atSettled.uploadFiles ?? Infinity) <= (atStart.uploadFiles ?? 0);
  console.log(
    `\n## Gateway descriptors and upload files (settled ${settleSeconds.toFixed(1)} s after the last response)\n`,
  );
  console.log(
    table(
      ['', 'start', `end (request ${atEnd.completed})`, 'max during load', 'settled', 'back to start'],
      [
        [
          'open fds (gateway)',
          atStart.fds ?? '-',
          atEnd.fds ?? '-',
          Math.max(...samples.map((s) => s.fds ?? 0)),
          atSettled.fds ?? '-',
          fdsMet ? 'yes' : `NO (+${(atSettled.fds ?? 0) - (atStart.fds ?? 0)})`,
        ],
        [
          'upload files',
          atStart.uploadFiles ?? '-',
          atEnd.uploadFiles ?? '-',
          Math.max(...samples.map((s) => s.uploadFiles ?? 0)),
          atSettled.uploadFiles ?? '-',
          filesMet ? 'yes' : `NO (+${(atSettled.uploadFiles ?? 0) - (atStart.uploadFiles ?? 0)})`,
        ],
      ],
    ),
  );

  // ---- Timeline (about a dozen of the samples)
  console.log('\n## Timeline\n');
  const step = Math.max(1, Math.ceil(samples.length / 12));
  const shown = samples.filter((s, index) => index % step === 0 || s.at !== 'tick');
  console.log(
    table(
      ['t (s)', 'sample', 'done', 'gateway RSS', 'worker RSS', 'fds', 'upload files', 'load'],
      shown.map((s) => [
        s.seconds.toFixed(0),
        s.at,
        s.completed,
        mib(s.processes[0]?.rssKiB),
        s.processes
          .slice(1)
          .map((p) => `${p.label} ${mib(p.rssKiB)}`)
          .join(', ') || '-',
        s.fds ?? '-',
        s.uploadFiles ?? '-',
        s.load.toFixed(1),
      ]),
    ),
  );

  const shutdownClean = stopped.code === 0 && leftovers.length === 0 && tmpLeft.length === 0;
  console.log(
    `\nserver after the run: /health ${finalHealth.status}; SIGTERM → exit code ${stopped.code ?? stopped.signal} in ${stopped.ms} ms; ` +
      `workers left running: ${leftovers.length}; left in EARSHOT_TMP_DIR: ${tmpLeft.length ? tmpLeft.join(', ') : 'nothing'}`,
  );

  // ---- Targets
  const allSent = records.length === REQUESTS && !timedOut;
  const targets: [string, boolean, string][] = [
    ['unexpected responses = 0', unexpected.length === 0, String(unexpected.length)],
    [
      `all ${REQUESTS} requests sent within ${MAX_LOAD_MS / 60_000} min`,
      allSent,
      `${records.length} in ${loadSeconds.toFixed(0)} s`,
    ],
    [
      `RSS growth ≤ 10 % per process (@${checkpoint.completed} → @${atLast.completed})`,
      memoryMet,
      memoryRows.map((row) => `${String(row[0])}: ${String(row[4])}`).join('; '),
    ],
    ['gateway fds back to start', fdsMet, `${atStart.fds} → ${atEnd.fds} → ${atSettled.fds}`],
    [
      'upload files back to start',
      filesMet,
      `${atStart.uploadFiles} → ${atEnd.uploadFiles} → ${atSettled.uploadFiles}`,
    ],
    ['clean shutdown (exit 0, no workers or temp files left)', shutdownClean, `exit ${stopped.code ?? stopped.signal}`],
  ];
  console.log('\n## Targets\n');
  console.log(
    table(
      ['target', 'met', 'value'],
      targets.map(([name, met, value]) => [name, met ? 'yes' : 'NO', value]),
    ),
  );

  if (args['server-log']) {
    writeFileSync(args['server-log'], server.logs.map((entry) => JSON.stringify(entry)).join('\n') + '\n');
  }
  if (args.json) {
    writeFileSync(
      args.json,
      JSON.stringify(
        {
          options: { REQUESTS, CONCURRENCY, MODEL, SEED, env: shownEnv },
          loadSeconds,
          targets,
          samples,
          unexpected: unexpected.map(({ plan, outcome, problem }) => ({
            index: plan.index,
            describe: plan.describe,
            problem,
            status: outcome.status,
            body: outcome.body.slice(0, 1000),
          })),
          serverErrors,
        },
        null,
        2,
      ),
    );
  }
  return targets.every(([, met]) => met) ? 0 : 1;
}

process.exitCode = await main();
