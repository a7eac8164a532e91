// Every option earshot has, in one table: its environment variable, its command-line flag, its
// default and what it means. The README's configuration table lists the same options (a test checks).
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { projectRoot, projectVenvPython } from './paths.ts';
import { FIRST_WORDS_MIN_PROBABILITY } from './realtime/stability.ts';

export interface Config {
  host: string;
  port: number;
  defaultModel: string;
  modelAliases: Map<string, string>;
  modelsDir: string;
  hubDownload: boolean;
  hubCacheDir: string | undefined;
  diarizationModelDir: string | undefined;
  hubModels: string[];
  device: string;
  computeType: string;
  cpuThreads: number;
  workersPerModel: number;
  maxBatch: number;
  packMaxClips: number;
  packClipSeconds: number;
  preloadModels: string[];
  modelTtlSeconds: number;
  maxLoadedModels: number;
  longAudioBatchSize: number;
  longAudioSeconds: number;
  shardLongAudio: boolean;
  fitShortAudioSeconds: number;
  maxUploadBytes: number;
  maxConcurrentUploads: number;
  maxConcurrentUploadsPerClient: number;
  maxUploadDiskBytes: number;
  maxUploadDiskBytesPerClient: number;
  tmpDir: string;
  workerPython: string;
  workerStartTimeoutMs: number;
  logLevel: string;
  apiKeys: string[];
  apiKeyFile: string | undefined;
  adminApiKeys: string[];
  publicHealth: boolean;
  publicMetrics: boolean;
  publicDocs: boolean;
  maxAudioSeconds: number;
  maxQueuedJobs: number;
  maxHeaderBytes: number;
  maxConnectionsPerAddress: number;
  uploadIdleTimeoutMs: number;
  requestTimeoutMs: number;
  jobTimeoutMs: number;
  rateLimitPerMinute: number;
  authFailuresPerMinute: number;
  corsOrigins: string[];
  workerMaxJobs: number;
  workerMaxRssMb: number;
  shutdownGraceMs: number;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  realtimeMaxSessions: number;
  realtimeMaxSessionSeconds: number;
  realtimeIdleSeconds: number;
  realtimeMaxTurnSeconds: number;
  realtimeMaxFrameBytes: number;
  realtimeFirstWordsMinProbability: number;
  realtimeClientSecretSeconds: number;
}

type Parser<T> = (raw: string) => T;

interface OptionSpec<K extends keyof Config> {
  key: K;
  env: string;
  flag: string;
  default: string;
  description: string;
  parse: Parser<Config[K]>;
}

class ConfigError extends Error {}

const text: Parser<string> = (raw) => {
  if (raw.trim() === '') throw new ConfigError('must not be empty');
  return raw.trim();
};

const integer =
  (min: number, max = Number.MAX_SAFE_INTEGER): Parser<number> =>
  (raw) => {
    const value = Number(raw.trim());
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new ConfigError(`must be a whole number from ${min} to ${max}`);
    }
    return value;
  };

const fraction: Parser<number> = (raw) => {
  const value = Number(raw.trim());
  if (raw.trim() === '' || !Number.isFinite(value) || value < 0 || value > 1) {
    throw new ConfigError('must be a number from 0 to 1');
  }
  return value;
};

const boolean: Parser<boolean> = (raw) => {
  const value = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(value)) return true;
  if (['0', 'false', 'no', 'off'].includes(value)) return false;
  throw new ConfigError('must be true or false');
};

const oneOf =
  (...choices: string[]): Parser<string> =>
  (raw) => {
    const value = raw.trim();
    if (!choices.includes(value)) throw new ConfigError(`must be one of ${choices.join(', ')}`);
    return value;
  };

const directory: Parser<string> = (raw) => path.resolve(text(raw));

const list: Parser<string[]> = (raw) =>
  raw
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);

const optionalFile: Parser<string | undefined> = (raw) => (raw.trim() === '' ? undefined : path.resolve(raw.trim()));

const optionalDirectory: Parser<string | undefined> = (raw) => (raw.trim() === '' ? undefined : directory(raw));

/** Model names (NAME or OWNER/NAME) or `*`. */
const hubModelList: Parser<string[]> = (raw) => {
  const names = list(raw);
  const bad = names.find(
    (name) => name !== '*' && !/^[A-Za-z0-9_][A-Za-z0-9._-]*(\/[A-Za-z0-9_][A-Za-z0-9._-]*)?$/.test(name),
  );
  if (bad !== undefined) throw new ConfigError(`"${bad}" is not a size name, a hub id (OWNER/NAME) or *`);
  return names;
};

/** "whisper-1,gpt-4o-transcribe=small": a bare alias stands for the default model. */
const aliases: Parser<Map<string, string>> = (raw) => {
  const map = new Map<string, string>();
  for (const entry of raw.split(',')) {
    const [alias, target, extra] = entry.split('=').map((part) => part.trim());
    if (!alias) continue;
    if (extra !== undefined || target === '') throw new ConfigError(`"${entry}" is not ALIAS or ALIAS=MODEL`);
    map.set(alias, target ?? '');
  }
  return map;
};

const byteSize: Parser<number> = (raw) => {
  const match = /^(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?$/i.exec(raw.trim());
  if (!match?.[1]) throw new ConfigError('must be a size such as 26214400, 25MiB or 100MB');
  const units: Record<string, number> = {
    b: 1,
    kb: 1e3,
    kib: 1024,
    mb: 1e6,
    mib: 1024 ** 2,
    gb: 1e9,
    gib: 1024 ** 3,
  };
  const bytes = Math.floor(Number(match[1]) * (units[(match[2] ?? 'b').toLowerCase()] ?? 1));
  if (bytes < 1) throw new ConfigError('must be at least 1 byte');
  return bytes;
};

export const optionSpecs = [
  {
    key: 'host',
    env: 'HOST',
    flag: '--host',
    default: '0.0.0.0',
    description: 'Address to listen on.',
    parse: text,
  },
  {
    key: 'port',
    env: 'PORT',
    flag: '--port',
    default: '8000',
    description: 'Port to listen on (0 picks a free one).',
    parse: integer(0, 65535),
  },
  {
    key: 'defaultModel',
    env: 'EARSHOT_DEFAULT_MODEL',
    flag: '--default-model',
    default: 'base',
    description: 'Model loaded and warmed at start; the OpenAI model names in EARSHOT_MODEL_ALIASES stand for it.',
    parse: text,
  },
  {
    key: 'modelAliases',
    env: 'EARSHOT_MODEL_ALIASES',
    flag: '--model-aliases',
    default: 'whisper-1,gpt-4o-transcribe,gpt-4o-mini-transcribe',
    description: 'Comma-separated model aliases: `ALIAS` stands for the default model, `ALIAS=MODEL` for MODEL.',
    parse: aliases,
  },
  {
    key: 'modelsDir',
    env: 'EARSHOT_MODELS_DIR',
    flag: '--models-dir',
    default: 'models',
    description:
      'Directory of CTranslate2 model directories, each servable by its name (`NAME` or `OWNER/NAME`); nothing outside it is ever looked at. A relative path is resolved against the working directory at start. Rescanned every 2 s.',
    parse: directory,
  },
  {
    key: 'diarizationModelDir',
    env: 'EARSHOT_DIARIZATION_MODEL_DIR',
    flag: '--diarization-model-dir',
    default: '',
    description:
      'Speaker embedding model for `diarized_json`: a directory with `encoder.json` naming its kind. Empty: the bundled one (Resemblyzer\'s voice encoder, prepared at install). See README, "Diarization".',
    parse: optionalDirectory,
  },
  {
    key: 'hubDownload',
    env: 'EARSHOT_HUB_DOWNLOAD',
    flag: '--hub-download',
    default: 'true',
    description: 'Download models from the Hugging Face hub on first use; `false` serves only models already on disk.',
    parse: boolean,
  },
  {
    key: 'hubCacheDir',
    env: 'EARSHOT_HUB_CACHE_DIR',
    flag: '--hub-cache-dir',
    default: '',
    description:
      "Where hub models are downloaded and cached (empty: huggingface_hub's own cache, `~/.cache/huggingface`).",
    parse: optionalDirectory,
  },
  {
    key: 'hubModels',
    env: 'EARSHOT_HUB_MODELS',
    flag: '--hub-models',
    default: '',
    description:
      "Comma-separated size names and hub ids a request may download on first use, `*` for any hub id (empty: faster-whisper's size names and their repositories). The default, preloaded and alias models always may; models on disk are always served.",
    parse: hubModelList,
  },
  {
    key: 'device',
    env: 'EARSHOT_DEVICE',
    flag: '--device',
    default: 'cpu',
    description: 'CTranslate2 device: `cpu`, `cuda` or `auto`.',
    parse: oneOf('cpu', 'cuda', 'auto'),
  },
  {
    key: 'computeType',
    env: 'EARSHOT_COMPUTE_TYPE',
    flag: '--compute-type',
    default: 'int8',
    description: 'CTranslate2 compute type (`int8`, `int8_float32`, `float32`, `float16`, `default`, …).',
    parse: text,
  },
  {
    key: 'cpuThreads',
    env: 'EARSHOT_CPU_THREADS',
    flag: '--cpu-threads',
    default: '0',
    description:
      'CPU threads per engine worker; 0 shares the cores among the workers of a model (cores ÷ EARSHOT_WORKERS_PER_MODEL).',
    parse: integer(0, 1024),
  },
  {
    key: 'longAudioBatchSize',
    env: 'EARSHOT_LONG_AUDIO_BATCH_SIZE',
    flag: '--long-audio-batch-size',
    default: '8',
    description:
      'Long audio is decoded with faster-whisper\'s batched pipeline (VAD chunks, this many at a time); 0 keeps sequential decoding. See README, "Long audio".',
    parse: integer(0, 64),
  },
  {
    key: 'longAudioSeconds',
    env: 'EARSHOT_LONG_AUDIO_SECONDS',
    flag: '--long-audio-seconds',
    default: '60',
    description: 'Audio at least this long (seconds) counts as long for EARSHOT_LONG_AUDIO_BATCH_SIZE.',
    parse: integer(1),
  },
  {
    key: 'shardLongAudio',
    env: 'EARSHOT_SHARD_LONG_AUDIO',
    flag: '--shard-long-audio',
    default: 'true',
    description:
      'A request that arrives while its model has nothing waiting and several idle workers is sent to all of them; long audio is then decoded by all at once, each taking a share of its chunks. See README, "Long audio".',
    parse: boolean,
  },
  {
    key: 'fitShortAudioSeconds',
    env: 'EARSHOT_FIT_SHORT_AUDIO_SECONDS',
    flag: '--fit-short-audio-seconds',
    // bench/short_clips.py: 116 short clips, 8 in flight, 4.2x the bare library's throughput at the
    // same WER, and a 3 s clip alone in 0.27 s instead of 1.27 s (bench/README.md, "Short clips").
    default: '10',
    description:
      'Audio at most this long (seconds, up to 28) is encoded in a window fitted to it instead of Whisper\'s fixed 30 s: a short file costs a fraction of the encoder; 0 turns it off. See README, "Short audio".',
    parse: integer(0, 28),
  },
  {
    key: 'preloadModels',
    env: 'EARSHOT_PRELOAD_MODELS',
    flag: '--preload-models',
    default: '',
    description: 'Comma-separated models loaded and warmed at start besides the default, and kept loaded (pinned).',
    parse: list,
  },
  {
    key: 'modelTtlSeconds',
    env: 'EARSHOT_MODEL_TTL_SECONDS',
    flag: '--model-ttl-seconds',
    default: '600',
    description:
      'A model loaded on demand is unloaded after this many seconds without a job (0: never). Pinned models stay.',
    parse: integer(0),
  },
  {
    key: 'maxLoadedModels',
    env: 'EARSHOT_MAX_LOADED_MODELS',
    flag: '--max-loaded-models',
    default: '4',
    description:
      'Most models loaded at once; loading another unloads the least recently used idle one that is not pinned (503 if none is idle).',
    parse: integer(1, 256),
  },
  {
    key: 'maxBatch',
    env: 'EARSHOT_MAX_BATCH',
    flag: '--max-batch',
    // Off by default: on 2 cores one decode already fills the cores, and bench/concurrency.py measured
    // no gain from batching next to two single-threaded workers (bench/README.md).
    default: '1',
    description:
      'Short requests for the same model with identical options that wait together are decoded in one batch of up to this many; 1 turns cross-request batching off. See README, "Batching".',
    parse: integer(1, 64),
  },
  {
    key: 'packMaxClips',
    env: 'EARSHOT_PACK_MAX_CLIPS',
    flag: '--pack-max-clips',
    // Off by default: on bench/packing.py's clips (cut from the test recordings) 8 of 13 clips had to be
    // decoded alone again, and packing cost more CPU than decoding one by one (README, "Packing").
    default: '1',
    description:
      'Short requests for the same model with the same options and a known language that wait together are packed side by side into shared 30 s windows, up to this many per worker; 0 or 1 turns packing off. See README, "Packing".',
    parse: integer(0, 64),
  },
  {
    key: 'packClipSeconds',
    env: 'EARSHOT_PACK_CLIP_SECONDS',
    flag: '--pack-clip-seconds',
    default: '10',
    description:
      'Audio at most this long (seconds) may be packed (EARSHOT_PACK_MAX_CLIPS); longer audio is decoded alone.',
    parse: integer(1, 29),
  },
  {
    key: 'workersPerModel',
    env: 'EARSHOT_WORKERS_PER_MODEL',
    flag: '--workers-per-model',
    // Two single-threaded processes served 8 requests in flight 1.4x faster than one two-threaded
    // process on the 2-core machine (bench/concurrency.py); one request alone is slower that way.
    default: '2',
    description: 'Engine worker processes per loaded model, each with its own copy of the model.',
    parse: integer(1, 64),
  },
  {
    key: 'maxUploadBytes',
    env: 'EARSHOT_MAX_UPLOAD_BYTES',
    flag: '--max-upload-bytes',
    default: '25MiB',
    description:
      "Largest accepted upload (OpenAI's limit is 25 MiB); larger ones get 413. Bytes, or with KB, KiB, MB, MiB, GB, GiB.",
    parse: byteSize,
  },
  {
    key: 'maxConcurrentUploads',
    env: 'EARSHOT_MAX_CONCURRENT_UPLOADS',
    flag: '--max-concurrent-uploads',
    // Each upload in progress buffers at most 256 KiB of form fields (plus the one being read, at
    // most 64 KiB), so 64 bound the gateway's form data to 20 MiB, whatever clients send.
    default: '64',
    description:
      'Uploads that may be received at once; past it, 429 `too_many_uploads` with `retry-after`. Also bounds the form data held in memory (at most 7.75 MiB per upload, see Limits).',
    parse: integer(1, 100_000),
  },
  {
    key: 'maxConcurrentUploadsPerClient',
    env: 'EARSHOT_MAX_CONCURRENT_UPLOADS_PER_CLIENT',
    flag: '--max-concurrent-uploads-per-client',
    // A quarter of the default total: one client sending slowly cannot hold every slot until the deadline.
    default: '16',
    description:
      'Uploads one API key (one client address without keys) may have being received at once; past it, 429 `too_many_client_uploads` with `retry-after`.',
    parse: integer(1, 100_000),
  },
  {
    key: 'maxUploadDiskBytes',
    env: 'EARSHOT_MAX_UPLOAD_DISK_BYTES',
    flag: '--max-upload-disk-bytes',
    default: '1GiB',
    description:
      'Temporary space all uploads may hold at once, from their start until their job ends: each reserves its Content-Length (at most EARSHOT_MAX_UPLOAD_BYTES) when it starts; past it, 503 `upload_space_exhausted` with `retry-after`.',
    parse: byteSize,
  },
  {
    key: 'maxUploadDiskBytesPerClient',
    env: 'EARSHOT_MAX_UPLOAD_DISK_BYTES_PER_CLIENT',
    flag: '--max-upload-disk-bytes-per-client',
    default: '256MiB',
    description:
      'The same, per API key (per client address without keys); past it, 429 `client_upload_limit` with `retry-after`.',
    parse: byteSize,
  },
  {
    key: 'tmpDir',
    env: 'EARSHOT_TMP_DIR',
    flag: '--tmp-dir',
    default: os.tmpdir(),
    description: 'Where uploads are written while they are transcribed (always removed afterwards).',
    parse: directory,
  },
  {
    key: 'workerPython',
    env: 'EARSHOT_WORKER_PYTHON',
    flag: '--worker-python',
    default: path.relative(projectRoot, projectVenvPython),
    description: 'Python interpreter for the engine workers (relative paths are to the project directory).',
    parse: (raw) => path.resolve(projectRoot, text(raw)),
  },
  {
    key: 'workerStartTimeoutMs',
    env: 'EARSHOT_WORKER_START_TIMEOUT_MS',
    flag: '--worker-start-timeout-ms',
    default: '600000',
    description: 'How long a worker may take to load its model (downloads included) before it is given up.',
    parse: integer(1000),
  },
  {
    key: 'logLevel',
    env: 'EARSHOT_LOG_LEVEL',
    flag: '--log-level',
    default: 'info',
    description: 'Log level: `fatal`, `error`, `warn`, `info`, `debug` or `trace`.',
    parse: oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'),
  },
  {
    key: 'apiKeys',
    env: 'EARSHOT_API_KEYS',
    flag: '--api-keys',
    default: '',
    description:
      'Comma-separated API keys clients must send as `Authorization: Bearer KEY`. With none (and no key file), every request is accepted.',
    parse: list,
  },
  {
    key: 'apiKeyFile',
    env: 'EARSHOT_API_KEY_FILE',
    flag: '--api-key-file',
    default: '',
    description: 'A file of API keys, one per line (`#` starts a comment); added to EARSHOT_API_KEYS.',
    parse: optionalFile,
  },
  {
    key: 'adminApiKeys',
    env: 'EARSHOT_ADMIN_API_KEYS',
    flag: '--admin-api-keys',
    default: '',
    description:
      'Comma-separated keys for the admin API (`/api/ps`), which then refuses every other key with 403 `admin_key_required`; they are API keys too (setting them turns key checks on). Empty: any API key may use it.',
    parse: list,
  },
  {
    key: 'publicHealth',
    env: 'EARSHOT_PUBLIC_HEALTH',
    flag: '--public-health',
    default: 'true',
    description: '`/health` and `/ready` answer without an API key.',
    parse: boolean,
  },
  {
    key: 'publicMetrics',
    env: 'EARSHOT_PUBLIC_METRICS',
    flag: '--public-metrics',
    default: 'false',
    description: '`/metrics` answers without an API key.',
    parse: boolean,
  },
  {
    key: 'publicDocs',
    env: 'EARSHOT_PUBLIC_DOCS',
    flag: '--public-docs',
    // The description of an open-source API is no secret, and a browser cannot send a key with the page.
    default: 'true',
    description: 'The API description (`/openapi.json`) and its page (`/docs`) answer without an API key.',
    parse: boolean,
  },
  {
    key: 'maxAudioSeconds',
    env: 'EARSHOT_MAX_AUDIO_SECONDS',
    flag: '--max-audio-seconds',
    default: '10800',
    description: 'Longest audio accepted, in seconds; longer gets 400 `audio_too_long` (checked before decoding).',
    parse: integer(1),
  },
  {
    key: 'maxQueuedJobs',
    env: 'EARSHOT_MAX_QUEUED_JOBS',
    flag: '--max-queued-jobs',
    default: '64',
    description: 'Jobs that may wait per model; when full, requests get 429 with `retry-after`.',
    parse: integer(0),
  },
  {
    key: 'maxHeaderBytes',
    env: 'EARSHOT_MAX_HEADER_BYTES',
    flag: '--max-header-bytes',
    default: '16KiB',
    description: 'Largest request header block; larger gets 431.',
    parse: byteSize,
  },
  {
    key: 'maxConnectionsPerAddress',
    env: 'EARSHOT_MAX_CONNECTIONS_PER_ADDRESS',
    flag: '--max-connections-per-address',
    // An open connection holds a file descriptor until it is closed (idle, 60 s before its headers):
    // without a cap one client could take them all, and the server could accept nothing else.
    default: '256',
    description:
      'Connections one client address may hold open at once; past it, a new connection gets 429 `too_many_connections` and is closed. 0 turns it off.',
    parse: integer(0),
  },
  {
    key: 'uploadIdleTimeoutMs',
    env: 'EARSHOT_UPLOAD_IDLE_TIMEOUT_MS',
    flag: '--upload-idle-timeout-ms',
    default: '30000',
    description: 'An upload that sends no byte for this long gets 408 `upload_timeout` and is dropped.',
    parse: integer(100),
  },
  {
    key: 'requestTimeoutMs',
    env: 'EARSHOT_REQUEST_TIMEOUT_MS',
    flag: '--request-timeout-ms',
    default: '600000',
    description: 'Longest time to receive a whole request (headers and body); 0 turns it off.',
    parse: integer(0),
  },
  {
    key: 'jobTimeoutMs',
    env: 'EARSHOT_JOB_TIMEOUT_MS',
    flag: '--job-timeout-ms',
    default: '900000',
    description:
      'Longest a job may run on a worker; a worker past it is taken to be hung, killed and replaced, and the request gets 504 `job_timeout`. 0 turns it off.',
    parse: integer(0),
  },
  {
    key: 'rateLimitPerMinute',
    env: 'EARSHOT_RATE_LIMIT_PER_MINUTE',
    flag: '--rate-limit-per-minute',
    default: '0',
    description:
      'Requests per minute per API key (per client address without keys); past it, 429 with `retry-after`. 0 turns it off.',
    parse: integer(0),
  },
  {
    key: 'authFailuresPerMinute',
    env: 'EARSHOT_AUTH_FAILURES_PER_MINUTE',
    flag: '--auth-failures-per-minute',
    // Key guessing must be limited even with the rate limit off; a client with a right key fails none.
    default: '10',
    description:
      'Failed API key checks (401) per client address per minute; past it, every request from that address that needs a key gets 429 `too_many_auth_failures` with `retry-after` until the minute is over, right key or not. 0 turns it off.',
    parse: integer(0),
  },
  {
    key: 'corsOrigins',
    env: 'EARSHOT_CORS_ORIGINS',
    flag: '--cors-origins',
    default: '',
    description: 'Comma-separated origins allowed by CORS (`*` for any); empty turns CORS off.',
    parse: list,
  },
  {
    key: 'workerMaxJobs',
    env: 'EARSHOT_WORKER_MAX_JOBS',
    flag: '--worker-max-jobs',
    default: '0',
    description: 'Replace a worker after this many jobs (0: never).',
    parse: integer(0),
  },
  {
    key: 'workerMaxRssMb',
    env: 'EARSHOT_WORKER_MAX_RSS_MB',
    flag: '--worker-max-rss-mb',
    default: '0',
    description: 'Replace a worker whose resident memory is above this after a job (0: never).',
    parse: integer(0),
  },
  {
    key: 'shutdownGraceMs',
    env: 'EARSHOT_SHUTDOWN_GRACE_MS',
    flag: '--shutdown-grace-ms',
    default: '30000',
    description: 'On SIGTERM, how long in-flight requests may take to finish before the workers are stopped.',
    parse: integer(0),
  },
  {
    key: 'tlsCert',
    env: 'EARSHOT_TLS_CERT',
    flag: '--tls-cert',
    default: '',
    description:
      "PEM certificate file (with its chain); with EARSHOT_TLS_KEY, earshot serves HTTPS and WSS itself (the Node SDK's realtime client always connects with `wss://`). Set both or neither.",
    parse: optionalFile,
  },
  {
    key: 'tlsKey',
    env: 'EARSHOT_TLS_KEY',
    flag: '--tls-key',
    default: '',
    description: 'PEM private key file of EARSHOT_TLS_CERT.',
    parse: optionalFile,
  },
  {
    key: 'realtimeMaxSessions',
    env: 'EARSHOT_REALTIME_MAX_SESSIONS',
    flag: '--realtime-max-sessions',
    default: '8',
    description:
      'Realtime transcription sessions (`GET /v1/realtime`) open at once; past it, the WebSocket upgrade gets 429 `too_many_sessions`.',
    parse: integer(1, 100_000),
  },
  {
    key: 'realtimeMaxSessionSeconds',
    env: 'EARSHOT_REALTIME_MAX_SESSION_SECONDS',
    flag: '--realtime-max-session-seconds',
    // OpenAI's own limit on a realtime session.
    default: '1800',
    description: 'Longest a realtime session may last; then it gets an `error` event `session_expired` and is closed.',
    parse: integer(1),
  },
  {
    key: 'realtimeIdleSeconds',
    env: 'EARSHOT_REALTIME_IDLE_SECONDS',
    flag: '--realtime-idle-seconds',
    default: '300',
    description:
      'A realtime session that sends no event for this long gets an `error` event `session_idle_timeout` and is closed. 0 turns it off.',
    parse: integer(0),
  },
  {
    key: 'realtimeMaxTurnSeconds',
    env: 'EARSHOT_REALTIME_MAX_TURN_SECONDS',
    flag: '--realtime-max-turn-seconds',
    default: '30',
    description:
      'Most audio one turn may hold: with turn detection the turn is committed there; without, the append past it gets an `error` event `turn_too_long`.',
    parse: integer(1, 3600),
  },
  {
    key: 'realtimeMaxFrameBytes',
    env: 'EARSHOT_REALTIME_MAX_FRAME_BYTES',
    flag: '--realtime-max-frame-bytes',
    default: '2MiB',
    description:
      'Largest WebSocket message of a realtime session (an append of 1 s of 24 kHz PCM is 64 KB); a larger one closes the session (1009, `frame_too_large`).',
    parse: byteSize,
  },
  {
    key: 'realtimeFirstWordsMinProbability',
    env: 'EARSHOT_REALTIME_FIRST_WORDS_MIN_PROBABILITY',
    flag: '--realtime-first-words-min-probability',
    default: String(FIRST_WORDS_MIN_PROBABILITY),
    description:
      "A turn's first words are sent as `delta` events only once both partial decodes that propose them are this sure of each word after the first; 0 sends them as soon as two partials agree (sooner, but a wrong guess from the turn's first second stays in its transcript).",
    parse: fraction,
  },
  {
    key: 'realtimeClientSecretSeconds',
    env: 'EARSHOT_REALTIME_CLIENT_SECRET_SECONDS',
    flag: '--realtime-client-secret-seconds',
    // OpenAI's default lifetime of an ephemeral key, within its range of 10 s to 2 h.
    default: '600',
    description:
      'Lifetime of an ephemeral key (`POST /v1/realtime/client_secrets`) when the request names none; requests may ask for 10 to 7200.',
    parse: integer(10, 7200),
  },
] as const satisfies readonly OptionSpec<keyof Config>[];

export class InvalidConfigError extends Error {}

/** Reads flags (`--port 9000` or `--port=9000`) over environment variables over defaults. */
export function loadConfig(argv: readonly string[] = [], env: NodeJS.ProcessEnv = process.env): Config {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: Object.fromEntries(optionSpecs.map((spec) => [spec.flag.slice(2), { type: 'string' as const }])),
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new InvalidConfigError(`${(error as Error).message} (see README, "Configuration")`);
  }
  const flags = new Map<string, string>();
  for (const spec of optionSpecs) {
    const value = values[spec.flag.slice(2)];
    if (typeof value === 'string') flags.set(spec.flag, value);
  }
  const config: Partial<Record<keyof Config, unknown>> = {};
  for (const spec of optionSpecs) {
    const fromFlag = flags.get(spec.flag);
    const fromEnv = env[spec.env];
    const raw = fromFlag ?? fromEnv ?? spec.default;
    const origin = fromFlag !== undefined ? spec.flag : fromEnv !== undefined ? spec.env : `default of ${spec.env}`;
    try {
      config[spec.key] = spec.parse(raw);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      throw new InvalidConfigError(`${origin} = "${raw}" ${error.message}`);
    }
  }
  const loaded = config as Config;
  if ((loaded.tlsCert === undefined) !== (loaded.tlsKey === undefined)) {
    const [set, unset] =
      loaded.tlsCert === undefined ? ['EARSHOT_TLS_KEY', 'EARSHOT_TLS_CERT'] : ['EARSHOT_TLS_CERT', 'EARSHOT_TLS_KEY'];
    throw new InvalidConfigError(
      `${set} is set without ${unset}: HTTPS needs both the certificate and its key (see README, "Configuration")`,
    );
  }
  return loaded;
}
