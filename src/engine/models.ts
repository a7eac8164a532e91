// Model names are resolved here and nowhere else: aliases, bundled models, the models directory,
// faster-whisper's size names and Hugging Face ids. Whatever a client sends, the only paths that can
// come out are the bundled models' and directories inside the configured models directory.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundledModelsCatalogue, bundledModelsDir } from '../paths.ts';

export type ModelSource =
  { kind: 'bundled'; path: string } | { kind: 'directory'; path: string } | { kind: 'hub'; repo: string };

export interface ResolvedModel {
  /** The canonical name: the same model asked for by alias, size name or hub id has one id. */
  id: string;
  source: ModelSource;
}

/** One entry of GET /v1/models, in OpenAI's shape. */
export interface ModelEntry {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
}

export interface BundledModel {
  name: string;
  hubRepo: string;
  description: string;
  license: string;
}

/** faster-whisper's size names and the hub repositories they stand for (faster_whisper/utils.py). */
export const hubSizeNames: Readonly<Record<string, string>> = {
  'tiny.en': 'Systran/faster-whisper-tiny.en',
  tiny: 'Systran/faster-whisper-tiny',
  'base.en': 'Systran/faster-whisper-base.en',
  base: 'Systran/faster-whisper-base',
  'small.en': 'Systran/faster-whisper-small.en',
  small: 'Systran/faster-whisper-small',
  'medium.en': 'Systran/faster-whisper-medium.en',
  medium: 'Systran/faster-whisper-medium',
  'large-v1': 'Systran/faster-whisper-large-v1',
  'large-v2': 'Systran/faster-whisper-large-v2',
  'large-v3': 'Systran/faster-whisper-large-v3',
  large: 'Systran/faster-whisper-large-v3',
  'distil-large-v2': 'Systran/faster-distil-whisper-large-v2',
  'distil-medium.en': 'Systran/faster-distil-whisper-medium.en',
  'distil-small.en': 'Systran/faster-distil-whisper-small.en',
  'distil-large-v3': 'Systran/faster-distil-whisper-large-v3',
  'distil-large-v3.5': 'distil-whisper/distil-large-v3.5-ct2',
  'large-v3-turbo': 'mobiuslabsgmbh/faster-whisper-large-v3-turbo',
  turbo: 'mobiuslabsgmbh/faster-whisper-large-v3-turbo',
};

// One path segment of a model name: no separators, no leading dot (so no "." or ".."), no control
// characters. A name has one segment (NAME) or two (OWNER/NAME), as hub ids do.
const SAFE_SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,95}$/;

function safeSegments(name: string): string[] | undefined {
  const segments = name.split('/');
  if (segments.length > 2 || !segments.every((segment) => SAFE_SEGMENT.test(segment))) return undefined;
  return segments;
}

function isModelDirectory(directory: string): boolean {
  try {
    return statSync(path.join(directory, 'model.bin')).isFile();
  } catch {
    return false;
  }
}

export function readBundledModels(catalogue = bundledModelsCatalogue): BundledModel[] {
  const parsed = JSON.parse(readFileSync(catalogue, 'utf8')) as { models: BundledModel[] };
  return parsed.models.map(({ name, hubRepo, description, license }) => ({ name, hubRepo, description, license }));
}

export interface ModelRegistryOptions {
  defaultModel: string;
  aliases: ReadonlyMap<string, string>;
  modelsDir: string;
  bundled: readonly BundledModel[];
  bundledDir?: string;
  /** huggingface_hub's cache, where downloaded models live; listed by GET /v1/models. */
  hubCacheDir?: string;
}

/** huggingface_hub's own default cache location, which faster-whisper uses without a download root. */
export function defaultHubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  const home = env.HF_HOME ?? path.join(env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'huggingface');
  return path.join(home, 'hub');
}

/** Seconds since the epoch at which a path was last changed (a model's `created`), 0 if unknown. */
function createdAt(target: string): number {
  try {
    return Math.floor(statSync(target).mtimeMs / 1000);
  } catch {
    return 0;
  }
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

function subdirectories(directory: string): string[] {
  try {
    return readdirSync(directory, { withFileTypes: true })
      .filter((entry) => entry.isDirectory() || entry.isSymbolicLink())
      .map((entry) => entry.name);
  } catch {
    return [];
  }
}

export class ModelRegistry {
  private readonly bundledByName: Map<string, BundledModel>;
  private readonly bundledByRepo: Map<string, BundledModel>;
  private readonly bundledDir: string;

  constructor(private readonly options: ModelRegistryOptions) {
    this.bundledByName = new Map(options.bundled.map((model) => [model.name, model]));
    this.bundledByRepo = new Map(options.bundled.map((model) => [model.hubRepo, model]));
    this.bundledDir = options.bundledDir ?? bundledModelsDir;
  }

  get defaultModel(): string {
    return this.options.defaultModel;
  }

  /**
   * What this server can serve right now, without a download: aliases, bundled models, the models
   * directory and the hub cache. Each name is one that resolve() accepts.
   */
  list(): ModelEntry[] {
    const entries = new Map<string, ModelEntry>();
    const add = (id: string, ownedBy: string, created: number) => {
      if (!entries.has(id) && this.resolve(id)) entries.set(id, { id, object: 'model', created, owned_by: ownedBy });
    };
    for (const model of this.options.bundled) {
      add(model.name, 'earshot', createdAt(path.join(this.bundledDir, model.name)));
    }
    for (const [alias, target] of this.options.aliases) {
      const resolved = this.resolve(alias);
      const source = resolved?.source;
      add(alias, 'earshot', source && source.kind !== 'hub' ? createdAt(source.path) : 0);
      if (target !== '') add(target, 'earshot', 0);
    }
    for (const name of subdirectories(this.options.modelsDir)) {
      const directory = path.join(this.options.modelsDir, name);
      if (isModelDirectory(directory)) add(name, 'local', createdAt(directory));
      for (const inner of subdirectories(directory)) {
        const owned = path.join(directory, inner);
        if (isModelDirectory(owned)) add(`${name}/${inner}`, name, createdAt(owned));
      }
    }
    const hubCache = this.options.hubCacheDir ?? defaultHubCacheDir();
    for (const entry of subdirectories(hubCache)) {
      const match = /^models--([^/]+?)--([^/]+)$/.exec(entry);
      if (!match?.[1] || !match[2]) continue;
      // huggingface_hub loads offline the snapshot that refs/main names, so only that one counts.
      const revision = readText(path.join(hubCache, entry, 'refs', 'main'));
      if (revision && isModelDirectory(path.join(hubCache, entry, 'snapshots', revision))) {
        add(`${match[1]}/${match[2]}`, match[1], createdAt(path.join(hubCache, entry)));
      }
    }
    return [...entries.values()];
  }

  /** The model a request names, or undefined when no such model can be served. */
  resolve(requested: string): ResolvedModel | undefined {
    const name = requested.trim();
    const alias = this.options.aliases.get(name);
    if (alias !== undefined) return this.resolveName(alias === '' ? this.options.defaultModel : alias);
    return this.resolveName(name);
  }

  private resolveName(name: string): ResolvedModel | undefined {
    const segments = safeSegments(name);
    if (!segments) return undefined;

    const bundled = this.bundledByName.get(name) ?? this.bundledByRepo.get(name) ?? this.bundledForSize(name);
    if (bundled)
      return { id: bundled.name, source: { kind: 'bundled', path: path.join(this.bundledDir, bundled.name) } };

    const directory = path.join(this.options.modelsDir, ...segments);
    if (isModelDirectory(directory)) return { id: name, source: { kind: 'directory', path: directory } };

    const sizeRepo = hubSizeNames[name];
    if (sizeRepo) return { id: name, source: { kind: 'hub', repo: sizeRepo } };
    if (segments.length === 2) return { id: name, source: { kind: 'hub', repo: name } };
    return undefined;
  }

  private bundledForSize(name: string): BundledModel | undefined {
    const repo = hubSizeNames[name];
    return repo === undefined ? undefined : this.bundledByRepo.get(repo);
  }
}
