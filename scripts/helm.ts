// Helm for the chart tests and the scale-out bench: the repository's own copy in .tools/bin (gitignored),
// built from the Go module proxy the first time (about 2 minutes of compiling on 2 cores). Run it
// directly to install it: `node --import tsx scripts/helm.ts [helm arguments]`.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { projectRoot } from '../src/paths.ts';

export const HELM_MODULE = 'helm.sh/helm/v3/cmd/helm';
export const HELM_VERSION = 'v3.19.0';
// The Kubernetes version helm 3.19 is built against (its k8s.io modules are v0.34): what `helm template`
// and `helm lint` assume without --kube-version. Helm's Makefile sets it and the version with -X, as here;
// a bare `go install` would leave them at v1.20 and an unversioned helm.
const HELM_LDFLAGS = [
  '-s -w',
  `-X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}`,
  '-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1',
  '-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=34',
  '-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1',
  '-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=34',
].join(' ');
export const toolsBin = path.join(projectRoot, '.tools', 'bin');
export const helmPath = path.join(toolsBin, process.platform === 'win32' ? 'helm.exe' : 'helm');

/** Path of a working helm, built into .tools/bin with `go install` when it is not there yet. */
export function ensureHelm(log: (line: string) => void = () => {}): string {
  if (existsSync(helmPath) && helmVersion() === HELM_VERSION) return helmPath;
  const go = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (go.error || go.status !== 0) {
    throw new Error(
      `helm is not in ${toolsBin} and Go is not on PATH to build it: install Go (https://go.dev/dl/), ` +
        `or put helm ${HELM_VERSION} at ${helmPath}.`,
    );
  }
  log(`building helm ${HELM_VERSION} into ${toolsBin} with ${go.stdout.trim()} (takes a few minutes)`);
  const started = Date.now();
  const build = spawnSync(
    'go',
    ['install', '-trimpath', `-ldflags=${HELM_LDFLAGS}`, `${HELM_MODULE}@${HELM_VERSION}`],
    {
      env: { ...process.env, GOBIN: toolsBin, CGO_ENABLED: '0' },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  if (build.status !== 0) {
    throw new Error(`go install ${HELM_MODULE}@${HELM_VERSION} failed:\n${build.stderr.slice(-4000)}`);
  }
  log(`helm built in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return helmPath;
}

function helmVersion(): string | undefined {
  const run = spawnSync(helmPath, ['version', '--template', '{{.Version}}'], { encoding: 'utf8' });
  return run.status === 0 ? run.stdout.trim() : undefined;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const helm = ensureHelm((line) => process.stderr.write(`${line}\n`));
  const args = process.argv.slice(2);
  if (args.length === 0) process.stdout.write(`${helm}\n`);
  else process.exit(spawnSync(helm, args, { stdio: 'inherit' }).status ?? 1);
}
