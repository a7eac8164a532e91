// Files the end-to-end tests set up for a server: a models directory holding copies of a bundled model.
import { mkdir, mkdtemp, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { bundledModelsDir } from '../../src/paths.ts';

/**
 * A fresh directory with a `models/` folder holding each name (NAME or OWNER/NAME) as a copy of the
 * bundled tiny.en (symlinks to its files), and an empty `hub-cache/`.
 */
export async function modelsFixture(
  names: readonly string[],
): Promise<{ root: string; models: string; hubCache: string }> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'earshot-models-'));
  const models = path.join(root, 'models');
  const hubCache = path.join(root, 'hub-cache');
  await mkdir(hubCache, { recursive: true });
  const tinyEn = path.join(bundledModelsDir, 'tiny.en');
  for (const name of names) {
    const copy = path.join(models, ...name.split('/'));
    await mkdir(copy, { recursive: true });
    for (const file of ['model.bin', 'config.json', 'tokenizer.json', 'vocabulary.txt']) {
      await symlink(path.join(tinyEn, file), path.join(copy, file));
    }
  }
  return { root, models, hubCache };
}
