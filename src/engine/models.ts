// Model names are resolved here and nowhere else: aliases, bundled models, the models directory,
// the hub cache, faster-whisper's size names and Hugging Face ids. Whatever a client sends, the only
// paths that can come out are the bundled models' and directories inside the configured models
// directory, and only names the operator allowed can start a download. Resolution reads a catalogue
// of what is on disk, scanned asynchronously and kept for a short while, never the disk itself.
import { readFileSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { bundledModelsCatalogue, bundledModelsDir } from '../paths.ts';
import { engineFacts, type EngineFacts } from './engine-facts.ts';

export type ModelSource =
  | { kind: 'bundled'; path: string }
  | { kind: 'directory'; path: string }
  /** `cached`: in the hub cache already; otherwise the first load downloads it. */
  | { kind: 'hub'; repo: string; cached: boolean };

export interface ResolvedModel {
  /** The canonical name: the same model asked for by alias, size name or hub id has one id. */
  id: string;
  source: ModelSource;
}

/**
 * Whether a model is one of Whisper's English-only ones, which its name says (`tiny.en`,
 * `Systran/faster-whisper-base.en`, a directory named so): such a model needs no language to know
 * what language it decodes. A guess from the name: the worker checks the model itself.
 */
export function isEnglishOnly(model: ResolvedModel): boolean {
  const source = model.source.kind === 'hub' ? model.source.repo : model.source.path;
  return [model.id, source].some((name) => /\.en$/i.test(name.replace(/[/\\]+$/, '')));
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

// One path segment of a model name: no separators, no leading dot (so no "." or ".."), no control
// characters. A name has one segment (NAME) or two (OWNER/NAME), as hub ids do.
const SAFE_SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,95}$/;

function safeSegments(name: string): string[] | undefined {
  const segments = name.split('/');
  if (segments.length > 2 || !segments.every((segment) => SAFE_SEGMENT.test(segment))) return undefined;
  return segments;
}

export function readBundledModels(catalogue = bundledModelsCatalogue): BundledModel[] {
  const parsed = JSON.parse(readFileSync(catalogue, 'utf8')) as { models: BundledModel[] };
  return parsed.models.map(({ name, hubRepo, description, license }) => ({ name, hubRepo, description, license }));
}

/** How long one scan of the models directory and the hub cache is used before the next. */
export const MODEL_SCAN_TTL_MS = 2000;

export interface ModelRegistryOptions {
  defaultModel: string;
  aliases: ReadonlyMap<string, string>;
  /** An absolute path: the only directory of the machine's whose models a name can reach. */
  modelsDir: string;
  bundled: readonly BundledModel[];
  bundledDir?: string;
  /** huggingface_hub's cache, where downloaded models live; listed by GET /v1/models. */
  hubCacheDir?: string;
  /** Whether a hub model not in the cache may be downloaded on first use (default true). */
  hubDownload?: boolean;
  /**
   * The size names and hub ids that may be downloaded on first use, `*` for any hub id (default:
   * faster-whisper's size names and the repositories they stand for). The default model, alias
   * targets and preloaded models always may.
   */
  hubModels?: readonly string[];
  preloadModels?: readonly string[];
  /** How long a scan of what is on disk is used, in ms (default MODEL_SCAN_TTL_MS; 0: each call). */
  scanTtlMs?: number;
  /**
   * faster-whisper's size names and the hub repositories they stand for, and huggingface_hub's cache
   * layout (default: the installed libraries', engine-facts.ts).
   */
  facts?: Pick<EngineFacts, 'sizeNames' | 'hubCache'>;
}

/** huggingface_hub's own default cache location, which faster-whisper uses without a download root. */
export function defaultHubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  const home = env.HF_HOME ?? path.join(env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'huggingface');
  return path.join(home, 'hub');
}

interface OnDisk {
  path: string;
  /** Seconds since the epoch at which it was last changed (a model's `created`), 0 if unknown. */
  created: number;
}

/** What is on disk, as one scan found it. */
interface Catalogue {
  /** The models directory's model directories, by name (NAME or OWNER/NAME). */
  local: Map<string, OnDisk>;
  /** The hub cache's models, by repository id: the snapshot its refs/main names (what loads offline). */
  hub: Map<string, OnDisk>;
  bundledCreated: Map<string, number>;
}

async function createdAt(target: string): Promise<number> {
  try {
    return Math.floor((await stat(target)).mtimeMs / 1000);
  } catch {
    return 0;
  }
}

async function isModelDirectory(directory: string): Promise<boolean> {
  try {
    return (await stat(path.join(directory, 'model.bin'))).isFile();
  } catch {
    return false;
  }
}

/** The directories (and symlinks) in a directory whose names are safe segments. */
async function subdirectories(directory: string): Promise<string[]> {
  try {
    return (await readdir(directory, { withFileTypes: true }))
      .filter((entry) => (entry.isDirectory() || entry.isSymbolicLink()) && SAFE_SEGMENT.test(entry.name))
      .map((entry) => entry.name);
  } catch {
    return [];
  }
}

async function modelDirectory(directory: string): Promise<OnDisk | undefined> {
  return (await isModelDirectory(directory)) ? { path: directory, created: await createdAt(directory) } : undefined;
}

async function scanModelsDir(modelsDir: string): Promise<Map<string, OnDisk>> {
  const found = new Map<string, OnDisk>();
  await Promise.all(
    (await subdirectories(modelsDir)).map(async (name) => {
      const directory = path.join(modelsDir, name);
      const model = await modelDirectory(directory);
      if (model) found.set(name, model);
      for (const inner of await subdirectories(directory)) {
        const owned = await modelDirectory(path.join(directory, inner));
        if (owned) found.set(`${name}/${inner}`, owned);
      }
    }),
  );
  return found;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The hub cache's models (layout: huggingface_hub's, as engine-facts.ts reports it). */
async function scanHubCache(hubCache: string, layout: EngineFacts['hubCache']): Promise<Map<string, OnDisk>> {
  const found = new Map<string, OnDisk>();
  const prefix = escapeRegExp(layout.repoFolderPrefix);
  const separator = escapeRegExp(layout.separator);
  const folder = new RegExp(`^${prefix}([^/]+?)${separator}([^/]+)$`);
  await Promise.all(
    (await readdir(hubCache).catch(() => [] as string[])).map(async (entry) => {
      const match = folder.exec(entry);
      const repo = match ? `${match[1]}/${match[2]}` : undefined;
      if (!repo || !safeSegments(repo)) return;
      // huggingface_hub loads offline the snapshot that refs/main names, so only that one counts.
      const refFile = path.join(hubCache, entry, layout.refsDir, layout.defaultRevision);
      const revision = (await readFile(refFile, 'utf8').catch(() => '')).trim();
      if (!SAFE_SEGMENT.test(revision)) return;
      if (await isModelDirectory(path.join(hubCache, entry, layout.snapshotsDir, revision))) {
        const directory = path.join(hubCache, entry);
        found.set(repo, { path: directory, created: await createdAt(directory) });
      }
    }),
  );
  return found;
}

/** A model the models API shows: its entry, and what the name resolves to. */
export interface ModelListing {
  entry: ModelEntry;
  model: ResolvedModel;
}

export class ModelRegistry {
  private readonly bundledByName: Map<string, BundledModel>;
  private readonly bundledByRepo: Map<string, BundledModel>;
  private readonly bundledDir: string;
  private readonly hubCacheDir: string;
  private readonly hubDownload: boolean;
  /** Names and repositories that may be downloaded, or 'any'. */
  private readonly downloadable: ReadonlySet<string> | 'any';
  private readonly scanTtlMs: number;
  private readonly facts: Pick<EngineFacts, 'sizeNames' | 'hubCache'>;
  private catalogue: Catalogue | undefined;
  private scannedAt = 0;
  private scanning: Promise<Catalogue> | undefined;

  constructor(private readonly options: ModelRegistryOptions) {
    if (!path.isAbsolute(options.modelsDir))
      throw new Error(`the models directory must be absolute: ${options.modelsDir}`);
    this.bundledByName = new Map(options.bundled.map((model) => [model.name, model]));
    this.bundledByRepo = new Map(options.bundled.map((model) => [model.hubRepo, model]));
    this.bundledDir = options.bundledDir ?? bundledModelsDir;
    this.hubCacheDir = options.hubCacheDir ?? defaultHubCacheDir();
    this.hubDownload = options.hubDownload ?? true;
    this.facts = options.facts ?? engineFacts();
    const allowed = options.hubModels ?? Object.entries(this.facts.sizeNames).flat();
    const configured = [options.defaultModel, ...options.aliases.values(), ...(options.preloadModels ?? [])];
    this.downloadable = allowed.includes('*')
      ? 'any'
      : new Set([...allowed, ...configured.filter((name) => name !== '')]);
    this.scanTtlMs = options.scanTtlMs ?? MODEL_SCAN_TTL_MS;
  }

  get defaultModel(): string {
    return this.options.defaultModel;
  }

  /** The model a request names, or undefined when no such model can be served. */
  async resolve(requested: string): Promise<ResolvedModel | undefined> {
    return this.resolveIn(await this.scan(), requested);
  }

  /**
   * What this server can serve right now, without a download: aliases, bundled models, the models
   * directory and the hub cache. Each name is one that resolve() accepts.
   */
  async list(): Promise<ModelListing[]> {
    const catalogue = await this.scan();
    const names = [
      ...this.options.bundled.map((model) => model.name),
      ...[...this.options.aliases].flatMap(([alias, target]) => (target === '' ? [alias] : [alias, target])),
      ...[...catalogue.local.keys()].sort(),
      ...[...catalogue.hub.keys()].sort(),
    ];
    const listings = new Map<string, ModelListing>();
    for (const name of names) {
      const listing = this.describeIn(catalogue, name);
      if (listing && !listings.has(name) && !needsDownload(listing.model)) listings.set(name, listing);
    }
    return [...listings.values()];
  }

  /** One model by a name a request may use: every name resolve() accepts, and no other. */
  async describe(requested: string): Promise<ModelListing | undefined> {
    return this.describeIn(await this.scan(), requested);
  }

  /** The catalogue of what is on disk, scanned again once older than scanTtlMs, one scan at a time. */
  private async scan(): Promise<Catalogue> {
    if (this.catalogue && Date.now() - this.scannedAt < this.scanTtlMs) return this.catalogue;
    this.scanning ??= this.rescan().finally(() => {
      this.scanning = undefined;
    });
    return this.scanning;
  }

  private async rescan(): Promise<Catalogue> {
    const started = Date.now();
    const [local, hub, bundledCreated] = await Promise.all([
      scanModelsDir(this.options.modelsDir),
      scanHubCache(this.hubCacheDir, this.facts.hubCache),
      Promise.all(
        this.options.bundled.map(
          async (model) => [model.name, await createdAt(path.join(this.bundledDir, model.name))] as const,
        ),
      ).then((entries) => new Map(entries)),
    ]);
    this.catalogue = { local, hub, bundledCreated };
    this.scannedAt = started;
    return this.catalogue;
  }

  private describeIn(catalogue: Catalogue, requested: string): ModelListing | undefined {
    const model = this.resolveIn(catalogue, requested);
    if (!model) return undefined;
    const id = requested.trim();
    const { source } = model;
    let ownedBy = 'earshot';
    let created = 0;
    if (source.kind === 'bundled') {
      created = catalogue.bundledCreated.get(model.id) ?? 0;
    } else if (source.kind === 'directory') {
      created = catalogue.local.get(model.id)?.created ?? 0;
      if (!this.options.aliases.has(id))
        ownedBy = model.id.includes('/') ? (model.id.split('/')[0] ?? 'local') : 'local';
    } else {
      created = catalogue.hub.get(source.repo)?.created ?? 0;
      if (!this.options.aliases.has(id)) ownedBy = source.repo.split('/')[0] ?? 'earshot';
    }
    return { entry: { id, object: 'model', created, owned_by: ownedBy }, model };
  }

  private resolveIn(catalogue: Catalogue, requested: string): ResolvedModel | undefined {
    const name = requested.trim();
    const alias = this.options.aliases.get(name);
    if (alias !== undefined) return this.resolveName(catalogue, alias === '' ? this.options.defaultModel : alias);
    return this.resolveName(catalogue, name);
  }

  private resolveName(catalogue: Catalogue, name: string): ResolvedModel | undefined {
    const segments = safeSegments(name);
    if (!segments) return undefined;

    const bundled = this.bundledByName.get(name) ?? this.bundledByRepo.get(name) ?? this.bundledForSize(name);
    if (bundled)
      return { id: bundled.name, source: { kind: 'bundled', path: path.join(this.bundledDir, bundled.name) } };

    const directory = catalogue.local.get(name);
    if (directory) return { id: name, source: { kind: 'directory', path: directory.path } };

    const repo = this.sizeRepo(name) ?? (segments.length === 2 ? name : undefined);
    if (repo === undefined) return undefined;
    if (catalogue.hub.has(repo)) return { id: name, source: { kind: 'hub', repo, cached: true } };
    if (this.mayDownload(name, repo)) return { id: name, source: { kind: 'hub', repo, cached: false } };
    return undefined;
  }

  private mayDownload(name: string, repo: string): boolean {
    if (!this.hubDownload) return false;
    return this.downloadable === 'any' || this.downloadable.has(name) || this.downloadable.has(repo);
  }

  /** The hub repository a size name stands for (own keys only: `constructor` is no size name). */
  private sizeRepo(name: string): string | undefined {
    return Object.hasOwn(this.facts.sizeNames, name) ? this.facts.sizeNames[name] : undefined;
  }

  private bundledForSize(name: string): BundledModel | undefined {
    const repo = this.sizeRepo(name);
    return repo === undefined ? undefined : this.bundledByRepo.get(repo);
  }
}

/** Whether loading this model starts with a download from the hub. */
export function needsDownload(model: ResolvedModel): boolean {
  return model.source.kind === 'hub' && !model.source.cached;
}
