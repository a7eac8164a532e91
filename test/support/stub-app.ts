// The real Fastify app on an engine that serves nothing (no model, no worker process), for fast tests of
// the HTTP layer alone: limits, keys, connections, metrics. Its temporary directory (uploads, an empty
// models directory) goes when `dispose()` is called, after the app has closed.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../../src/config.ts';
import { ModelRegistry, readBundledModels, type Engine } from '../../src/engine/index.ts';
import { buildApp } from '../../src/server/app.ts';
import type { AppDependencies } from '../../src/server/context.ts';

export interface StubApp {
  app: FastifyInstance;
  dispose: () => Promise<void>;
}

/**
 * `env`: EARSHOT_* settings (logging silent unless given); `deps`: API keys, metrics, a logger, an
 * ephemeral key store, a TLS certificate.
 */
export async function stubApp(
  env: Record<string, string> = {},
  deps: Partial<
    Pick<AppDependencies, 'apiKeys' | 'metrics' | 'logger' | 'clientSecrets' | 'tls' | 'realtimeRoute'>
  > = {},
): Promise<StubApp> {
  const tmpDir = mkdtempSync(path.join(os.tmpdir(), 'earshot-stub-app-'));
  const config = loadConfig([], { EARSHOT_LOG_LEVEL: 'silent', ...env, EARSHOT_TMP_DIR: tmpDir });
  const registry = new ModelRegistry({
    defaultModel: 'base',
    aliases: new Map(),
    modelsDir: mkdtempSync(path.join(tmpDir, 'models-')),
    bundled: readBundledModels(),
  });
  const engine = { modelStatus: () => undefined, status: () => [] } as unknown as Engine;
  const app = await buildApp({ config, engine, registry, ...deps });
  const dispose = async () => {
    await app.close();
    rmSync(tmpDir, { recursive: true, force: true });
  };
  return { app, dispose };
}
