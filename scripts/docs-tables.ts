// Prints the README's configuration and error tables from their one source (src/config.ts,
// src/api-errors.ts): `node --import tsx scripts/docs-tables.ts`. test/unit/config.test.ts checks the README.
import { optionSpecs } from '../src/config.ts';
import { errorKinds } from '../src/api-errors.ts';

const shownDefaults: Record<string, string> = { tmpDir: 'the OS temp dir' };

const configRows = optionSpecs.map((spec) => {
  const shown = shownDefaults[spec.key] ?? (spec.default === '' ? '(empty)' : `\`${spec.default}\``);
  return `| \`${spec.env}\` | \`${spec.flag}\` | ${shown} | ${spec.description} |`;
});
const errorRows = Object.entries(errorKinds).map(
  ([kind, { status, type, code, doc }]) =>
    `| \`${kind}\` | ${status} | \`${type}\` | ${code === null ? 'null' : `\`${code}\``} | ${doc} |`,
);

console.log(['| variable | flag | default | meaning |', '| --- | --- | --- | --- |', ...configRows].join('\n'));
console.log();
console.log(
  ['| error | status | type | `code` on the wire | when |', '| --- | --- | --- | --- | --- |', ...errorRows].join('\n'),
);
