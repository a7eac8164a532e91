// Writes the worker contract (src/engine/messages.ts) as JSON Schema to
// worker/earshot_worker/contract.schema.json, which the worker validates against. `--check` only
// says whether the committed file is current (test/unit/contract.test.ts checks the same).
import { readFileSync, writeFileSync } from 'node:fs';
import { contractDocument } from '../src/engine/index.ts';
import { contractSchemaFile } from '../src/paths.ts';

const generated = contractDocument();
if (process.argv.includes('--check')) {
  const committed = readFileSync(contractSchemaFile, 'utf8');
  if (committed !== generated) {
    process.stderr.write(`${contractSchemaFile} is stale: run npm run contract\n`);
    process.exit(1);
  }
} else {
  writeFileSync(contractSchemaFile, generated);
  console.log(`wrote ${contractSchemaFile}`);
}
