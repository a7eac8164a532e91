// The `earshot` command end to end: the real server, the bundled models, real recordings. Its outputs
// are compared with the server's own answers in each format; its progress lines (stderr is not a
// terminal here) and summary are read as a person would; a file that is not audio fails the run
// with the server's message; with no server, it starts one for the run and stops it.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { projectRoot } from '../../src/paths.ts';
import { normalise } from '../support/text.ts';
import { audioDir, JFK_TEXT, startServer, type RunningServer } from '../support/server.ts';

const API_KEY = 'cli-test-key-0123456789';
const bin = path.join(projectRoot, 'bin', 'earshot.mjs');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `earshot ARGS` to its end, with the server's URL and key in the environment. */
function earshot(args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  const child = spawn(process.execPath, [bin, ...args], {
    cwd: projectRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** A port nothing listens on (it was free a moment ago). */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

describe('the earshot command', () => {
  let server: RunningServer;
  let client: OpenAI;
  let work: string;
  let env: Record<string, string>;

  before(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'earshot-cli-'));
    server = await startServer({ EARSHOT_API_KEYS: API_KEY });
    client = new OpenAI({ baseURL: server.baseURL, apiKey: API_KEY, maxRetries: 0 });
    env = { EARSHOT_URL: server.url, EARSHOT_API_KEY: API_KEY };
  });

  after(async () => {
    await rm(work, { recursive: true, force: true });
    assert.equal(await server.stop(), 0);
  });

  /** The server's own answer for a file, in a format, as text. */
  async function serverAnswer(file: string, format: 'json' | 'text' | 'srt' | 'vtt' | 'verbose_json') {
    const answer: unknown = await client.audio.transcriptions.create({
      file: createReadStream(file),
      model: 'whisper-1',
      response_format: format,
    });
    return typeof answer === 'string' ? answer : JSON.stringify(answer);
  }

  it('transcribes a directory into --out in the format asked, with progress lines and a summary', async () => {
    const input = path.join(work, 'recordings');
    await mkdir(path.join(input, 'day 2'), { recursive: true });
    await copyFile(path.join(audioDir, 'jfk.flac'), path.join(input, 'jfk.flac'));
    await copyFile(path.join(audioDir, 'hotwords.mp3'), path.join(input, 'day 2', 'hotwords.mp3'));
    await writeFile(path.join(input, 'notes.txt'), 'not a recording: left out of a directory');
    const out = path.join(work, 'subtitles');

    const run = await earshot(['transcribe', input, '--format', 'srt', '--out', out], env);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, '', 'with --out, nothing goes to stdout');
    assert.deepEqual((await readdir(out, { recursive: true })).sort(), ['day 2', 'day 2/hotwords.srt', 'jfk.srt']);
    // The same subtitles the server answers with: made from the same segments, by the same code.
    for (const [name, source] of [
      ['jfk.srt', 'jfk.flac'],
      ['day 2/hotwords.srt', 'day 2/hotwords.mp3'],
    ] as const) {
      assert.equal(await readFile(path.join(out, name), 'utf8'), await serverAnswer(path.join(input, source), 'srt'));
    }

    // stderr is no terminal here: a line when a file starts decoding, at each tenth, and at its end.
    const jfk = path.join(input, 'jfk.flac');
    const lines = run.stderr.split('\n');
    assert.ok(lines.includes(`${jfk}: decoding 11.0 s of audio`), run.stderr);
    const progress = lines.filter((line) => line.startsWith(`${jfk}: `) && /: \d+% \(/.test(line));
    assert.ok(progress.length >= 1, run.stderr);
    for (const line of progress) assert.match(line, /: \d+% \(\d+\.\d s of 11\.0 s\) ETA \d/);
    assert.ok(
      lines.some((line) => line.startsWith(`${jfk}: 100% done in `) && line.endsWith(`→ ${path.join(out, 'jfk.srt')}`)),
      run.stderr,
    );
    assert.match(
      run.stderr,
      /^2 files of 2 transcribed: 15\.0 s of audio in \d+\.\d s \(\d+\.\d× real time\)\.$/m,
      'the summary: files, audio, wall time, speed',
    );
    assert.ok(!run.stderr.includes('notes.txt'), 'a directory stands for its audio files only');
  });

  it('writes json, verbose_json, text and vtt as the server answers them, to stdout without --out', async () => {
    const file = path.join(audioDir, 'hotwords.mp3');
    for (const format of ['json', 'verbose_json', 'text', 'vtt'] as const) {
      const run = await earshot(['transcribe', file, '--format', format], env);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, await serverAnswer(file, format), format);
    }
  });

  it('translates with --task translate', async () => {
    const run = await earshot(['transcribe', path.join(audioDir, 'jfk.flac'), '--task', 'translate'], env);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(normalise(run.stdout), normalise(JFK_TEXT));
  });

  it('fails the run when a file fails, naming it with the server’s message, and still does the others', async () => {
    const broken = path.join(work, 'broken.mp3');
    await writeFile(broken, 'this is a text file, not a recording');
    const out = path.join(work, 'mixed');
    const run = await earshot(['transcribe', broken, path.join(audioDir, 'jfk.flac'), '--out', out], env);
    assert.equal(run.code, 1, run.stderr);
    assert.equal(await readFile(path.join(out, 'jfk.txt'), 'utf8'), `${JFK_TEXT}\n`);
    assert.ok(run.stderr.includes(`${broken}: failed: 400 Invalid file format:`), run.stderr);
    assert.match(run.stderr, /^1 file of 2 transcribed: .*; 1 file failed:$/m);
    assert.match(
      run.stderr,
      new RegExp(`^  ${broken.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: 400 Invalid file format: `, 'm'),
    );
  });

  it('says why a request was refused: a wrong API key', async () => {
    const run = await earshot(['transcribe', path.join(audioDir, 'jfk.flac')], {
      ...env,
      EARSHOT_API_KEY: 'wrong-key-000000',
    });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /failed: 401 invalid_api_key: Incorrect API key provided: wro\*\*\*0000\./);
  });

  it('refuses bad usage with exit code 2', async () => {
    const missing = await earshot(['transcribe', path.join(work, 'no-such-file.wav')], env);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^earshot: no such file or directory: /m);
    const language = await earshot(
      ['transcribe', path.join(audioDir, 'jfk.flac'), '--task', 'translate', '-l', 'en'],
      env,
    );
    assert.equal(language.code, 2);
    const format = await earshot(['transcribe', path.join(audioDir, 'jfk.flac'), '--format', 'docx'], env);
    assert.equal(format.code, 2);
    assert.match(format.stderr, /Allowed choices are text, json, verbose_json, srt, vtt/);
  });

  it('lists the bundled models, and loads and unloads one through the admin API', async () => {
    const list = await earshot(['models'], env);
    assert.equal(list.code, 0, list.stderr);
    const rows = list.stdout.trim().split('\n');
    assert.match(rows[0] ?? '', /^MODEL\s+STATE\s+OWNED BY$/);
    assert.match(list.stdout, /^base\s+loaded\s+earshot$/m);
    assert.match(list.stdout, /^tiny\.en\s+available\s+earshot$/m);

    const load = await earshot(['models', 'load', 'tiny.en'], env);
    assert.equal(load.code, 0, load.stderr);
    assert.match(load.stdout, /^loaded tiny\.en \(\d of 2 workers\)$/m);
    assert.match((await earshot(['models', 'list'], env)).stdout, /^tiny\.en\s+loaded\s+earshot$/m);
    const unload = await earshot(['models', 'unload', 'tiny.en'], env);
    assert.equal(unload.code, 0, unload.stderr);
    assert.equal(unload.stdout, 'unloaded tiny.en\n');

    const pinned = await earshot(['models', 'unload', 'base'], env);
    assert.equal(pinned.code, 1);
    assert.match(pinned.stderr, /^earshot: 409 model_pinned: The model `base` is pinned/m);
  });

  it('starts a server of its own when none answers at a local URL, and stops it afterwards', async () => {
    const port = await freePort();
    const run = await earshot(['transcribe', path.join(audioDir, 'jfk.flac')], {
      EARSHOT_URL: `http://127.0.0.1:${port}`,
      EARSHOT_API_KEY: '',
    });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, `${JFK_TEXT}\n`);
    assert.ok(run.stderr.includes(`No earshot server answers at http://127.0.0.1:${port}: starting one for this run`));
    const url = /^Local server ready at (\S+)\.$/m.exec(run.stderr)?.[1];
    assert.ok(url, run.stderr);
    await assert.rejects(fetch(`${url}/health`), 'the server started for the run is gone with it');
  });

  it('runs as `npx earshot` in the repository', async () => {
    const { stdout } = await promisify(execFile)('npx', ['earshot', '--version'], { cwd: projectRoot });
    const { version } = JSON.parse(await readFile(path.join(projectRoot, 'package.json'), 'utf8')) as {
      version: string;
    };
    assert.equal(stdout.trim(), version);
  });
});
