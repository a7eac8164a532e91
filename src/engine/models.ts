// Model names are resolved here and nowhere else: aliases, bundled models, the models directory,
// faster-whisper's size names and Hugging Face ids. Whatever a client sends, the only paths that can
// come out are the bundled models' and directories inside the configured models directory.
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { bundledModelsCatalogue, bundledModelsDir } from '../paths.ts';

export type ModelSource =
  { kind: 'bundled'; path: string } | { kind: 'directory'; path: string } | { kind: 'hub'; repo: string };

export interface ResolvedModel {
  /** The canonical name: the same model asked for by alias, size name or hub id has one id. */
  id: string;
  source: ModelSource;
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
