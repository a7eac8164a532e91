// The server: read the config, start the engine with the default model, serve, shut down gracefully.
// `npm start` (src/main.ts) and `earshot serve` (src/cli) run it with their command-line flags.
import closeWithGrace from 'close-with-grace';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { createSecureContext } from 'node:tls';
import { pino } from 'pino';
import { InvalidConfigError, loadConfig, type Config } from './config.ts';
import {
  Engine,
  loadEngineFacts,
  MissingEngineFactsError,
  ModelRegistry,
  readBundledModels,
  type ResolvedModel,
} from './engine/index.ts';
import { Metrics } from './metrics.ts';
import { buildApp } from './server/app.ts';
import { loadApiKeys } from './server/plugins/auth.ts';

function readConfig(argv: readonly string[]): Config {
  try {
    return loadConfig(argv);
  } catch (error) {
    if (!(error instanceof InvalidConfigError)) throw error;
    process.stderr.write(`earshot: invalid configuration: ${error.message}\n`);
    process.exit(2);
  }
}

/** Starts earshot with these flags (over the environment, over the defaults; see src/config.ts). */
export async function serve(argv: readonly string[]): Promise<void> {
  const config = readConfig(argv);
  const log = pino({ level: config.logLevel });
  try {
    loadEngineFacts(config.workerPython, (message) => log.warn(message));
  } catch (error) {
    if (!(error instanceof MissingEngineFactsError)) throw error;
    log.fatal(error.message);
    process.exit(2);
  }
  const registry = new ModelRegistry({
    defaultModel: config.defaultModel,
    aliases: config.modelAliases,
    modelsDir: config.modelsDir,
    bundled: readBundledModels(),
    ...(config.hubCacheDir && { hubCacheDir: config.hubCacheDir }),
    hubDownload: config.hubDownload,
    ...(config.hubModels.length > 0 && { hubModels: config.hubModels }),
    preloadModels: config.preloadModels,
  });
  const defaultModel = await registry.resolve(config.defaultModel);
  if (!defaultModel) {
    log.fatal(`EARSHOT_DEFAULT_MODEL "${config.defaultModel}" is not a model earshot can serve`);
    process.exit(2);
  }
  const preloadModels: ResolvedModel[] = [];
  for (const name of config.preloadModels) {
    const model = await registry.resolve(name);
    if (!model) {
      log.fatal(`EARSHOT_PRELOAD_MODELS names "${name}", which is not a model earshot can serve`);
      process.exit(2);
    }
    preloadModels.push(model);
  }

  const metrics = new Metrics();
  const engine = new Engine(
    {
      worker: {
        python: config.workerPython,
        device: config.device,
        computeType: config.computeType,
        cpuThreads: config.cpuThreads || Math.max(1, Math.floor(os.availableParallelism() / config.workersPerModel)),
        hubDownload: config.hubDownload,
        hubCacheDir: config.hubCacheDir,
        startTimeoutMs: config.workerStartTimeoutMs,
        jobTimeoutMs: config.jobTimeoutMs,
        maxAudioSeconds: config.maxAudioSeconds,
        longAudioBatchSize: config.longAudioBatchSize,
        longAudioSeconds: config.longAudioSeconds,
        fitShortAudioSeconds: config.fitShortAudioSeconds,
        packClipSeconds: config.packMaxClips > 1 ? config.packClipSeconds : 0,
        diarizationModelDir: config.diarizationModelDir,
      },
      workersPerModel: config.workersPerModel,
      shardLongAudio: config.shardLongAudio,
      maxBatch: config.maxBatch,
      packMaxClips: config.packMaxClips,
      maxQueuedJobs: config.maxQueuedJobs,
      modelTtlSeconds: config.modelTtlSeconds,
      maxLoadedModels: config.maxLoadedModels,
      // An unloaded model's jobs get as long to finish as requests get at shutdown.
      unloadGraceMs: config.shutdownGraceMs,
      workerMaxJobs: config.workerMaxJobs,
      workerMaxRssMb: config.workerMaxRssMb,
      observer: metrics,
    },
    log,
  );
  metrics.watchEngine(engine);
  function readApiKeys(): string[] {
    try {
      // Admin keys are API keys too; checked alike, so that a bad one stops the start.
      loadApiKeys(config.adminApiKeys, undefined);
      return loadApiKeys(config.apiKeys, config.apiKeyFile);
    } catch (error) {
      log.fatal(`The API keys could not be loaded: ${(error as Error).message}`);
      process.exit(2);
    }
  }

  /** The certificate and key (EARSHOT_TLS_CERT, EARSHOT_TLS_KEY), checked to make a TLS context together. */
  function readTls(): { cert: Buffer; key: Buffer } | undefined {
    if (config.tlsCert === undefined || config.tlsKey === undefined) return undefined;
    try {
      const tls = { cert: readFileSync(config.tlsCert), key: readFileSync(config.tlsKey) };
      createSecureContext(tls);
      return tls;
    } catch (error) {
      log.fatal(
        `The TLS certificate ${config.tlsCert} and key ${config.tlsKey} could not be used: ${(error as Error).message}`,
      );
      process.exit(2);
    }
  }

  const tls = readTls();
  const app = await buildApp({
    config,
    engine,
    registry,
    metrics,
    apiKeys: readApiKeys(),
    logger: log,
    ...(tls && { tls }),
  });

  closeWithGrace({ delay: config.shutdownGraceMs, logger: log }, async ({ signal, err }) => {
    if (err) log.error({ err }, 'shutting down after an error');
    else log.info({ signal }, 'shutting down');
    // From the signal on, no worker is restarted: the signal may have gone to the whole process group.
    engine.beginShutdown();
    await app.close();
    await engine.stop();
  });

  // Listen first so /health can say "loading" while the default model loads and warms up.
  const address = await app.listen({ host: config.host, port: config.port });
  log.info({ address, defaultModel: defaultModel.id }, 'earshot listening');
  const loadStarted = Date.now();
  for (const model of [defaultModel, ...preloadModels]) {
    engine.preload(model).then(
      () => log.info({ model: model.id, ms: Date.now() - loadStarted }, 'model ready'),
      (error: Error) => log.error({ model: model.id, err: error.message }, 'model failed to load; retrying'),
    );
  }
}
