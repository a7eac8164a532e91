// Runs the project's Python (the one the gateway uses for workers) with the worker package importable.
// Used by `npm run test:python`.
import { spawnSync } from 'node:child_process';
import { projectRoot, projectVenvPython, workerEnvironment } from '../src/paths.ts';

const python = process.env.EARSHOT_WORKER_PYTHON ?? projectVenvPython;
const result = spawnSync(python, process.argv.slice(2), {
  cwd: projectRoot,
  stdio: 'inherit',
  env: workerEnvironment(),
});
if (result.error) {
  process.stderr.write(`could not run ${python}: ${result.error.message}; run npm install first.\n`);
}
process.exit(result.status ?? 1);
