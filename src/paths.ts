// Where earshot's own files live. The installer (scripts/setup-python.ts) and the gateway both use
// these, so the Python environment the installer builds is the one the gateway runs.
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const workerSourceDir = path.join(projectRoot, 'worker');
export const workerRequirementsFile = path.join(workerSourceDir, 'requirements.txt');
export const workerDevRequirementsFile = path.join(workerSourceDir, 'requirements-dev.txt');
export const bundledModelsCatalogue = path.join(workerSourceDir, 'bundled-models.json');
// The worker contract as JSON Schema, generated from src/engine/messages.ts (npm run contract).
export const contractSchemaFile = path.join(workerSourceDir, 'earshot_worker', 'contract.schema.json');
export const projectVenvDir = path.join(projectRoot, '.venv');
export const projectVenvPython =
  process.platform === 'win32'
    ? path.join(projectVenvDir, 'Scripts', 'python.exe')
    : path.join(projectVenvDir, 'bin', 'python');
// scripts/setup-python.ts assembles each bundled model here (worker/earshot_worker/bundled.py).
export const bundledModelsDir = path.join(projectVenvDir, 'earshot-models');
// scripts/setup-python.ts writes what the engine's libraries say here (worker/earshot_worker/facts.py).
export const engineFactsFile = path.join(projectVenvDir, 'earshot-facts.json');

/** The environment a worker process runs with: the worker package importable, nothing buffered. */
export function workerEnvironment(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const pythonPath = [workerSourceDir, base.PYTHONPATH].filter(Boolean).join(path.delimiter);
  return { ...base, PYTHONPATH: pythonPath, PYTHONUNBUFFERED: '1' };
}
