#!/usr/bin/env node
// A fake engine worker for fast tests: it speaks the real worker protocol (src/engine/messages.ts,
// worker/earshot_worker/messages.py) without a model, so the real EngineWorker can spawn it in place
// of Python (set `python` in the WorkerSettings to this file). It takes the real worker's arguments
// (-m earshot_worker --model SOURCE --name ID ...) and ignores the ones it does not use.
//
// How it loads, by the model's name (--name), first match wins:
//   *fail-load*        says `fatal` (model_load_failed) and exits with code 3
//   *exit-load*        writes "fake: cannot start" to stderr and exits with code 3, saying nothing
//   *hang-load*        never says `ready` (stops when stdin closes or it is killed)
//   *flaky-load-N*     fails to load (as fail-load) on its first N starts, then loads (needs the model
//                      directory; starts at the same time agree on which fail)
//   *slow-load-MS*     says `ready` after MS milliseconds
//   *slow-exit-MS*     (besides the above) on shutdown or end of stdin, exits MS milliseconds late
//   anything else      says `ready` at once
//
// The journal: when --model is a directory (a model of the models directory), the fake appends one
// JSON line per event to DIR/journal.jsonl: {"event", "pid", "t" (ms since the epoch), ...}:
//   start {name}                    the process started
//   ready                           it said ready
//   run {jobs: [{job, text}]}       it received a transcribe (one job) or transcribe_batch (several)
//   cancel {job}                    it received a cancel
//   language {job, language}        it received a sharded job's relayed language
//   exit {reason}                   it exits on its own (shutdown, end of stdin, fatal, crash)
// `text` is the job's transcript (below), so tests can tell jobs apart without knowing their ids.
//
// A job's audio file is text. Lines of the form `!name` or `!name=value` are directives; every
// other non-empty line is one segment of the transcript, in order (the transcript is the lines
// joined by spaces). Directives:
//   !sleep=MS         wait MS milliseconds before answering (a cancel ends the wait)
//   !gate=PATH        wait until the file PATH exists before answering (a cancel ends the wait)
//   !hang             never answer, not even a cancel (as a stopped process would)
//   !crash            write "fake: crashing" to stderr and exit with code 1, mid-job
//   !crash-after=N    the same, after sending `info` and the first N segments
//   !error=CODE       answer `error` with that code (invalid_audio, audio_too_short, ...)
//   !message=TEXT     the message of that error (default "fake CODE")
//   !language=CODE    the language `info` reports (default "en")
//   !duration=S       the duration `info` reports (default: one second per segment, at least 1)
//   !long             the audio is long: a job with the `shard` option {index, count} answers with its
//                     share of the lines (contiguous, in order; times and ids as the whole job has them,
//                     ids renumbered from 0 in each shard; a shard after the first of a job without a
//                     language waits for the relayed one, as a worker does, and its info says ''); without
//                     !long, shard 0 answers with all of
//                     them and the others with none (info and done only)
//   !fail-shard=N     shard N answers at once with error model_error (before any !sleep or !gate)
// An audio path that cannot be read is answered with error invalid_audio. A cancel of a job that
// is waiting (or not started yet) is answered with error `cancelled`. The jobs of a batch are
// answered in order, each as a single job would be. On `shutdown` or when stdin closes, the fake
// reads no more commands, finishes the jobs it has received (as the real worker does), then exits;
// a `!hang` job is abandoned at once.
//
// The contract: every command it receives and every event it sends is checked against the worker
// contract (worker/earshot_worker/contract.schema.json); anything outside it is a bug of the gateway or
// of this fake, reported as "fake: outside the contract" on stderr, and the fake exits with code 70.
import { appendFileSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const contract = JSON.parse(
  readFileSync(
    path.join(path.dirname(fileURLToPath(import.meta.url)), '../../worker/earshot_worker/contract.schema.json'),
    'utf8',
  ),
).$defs;
// Loaded once the fake has said it started (the journal's start), as it takes a moment.
let Schema;

function checkContract(definition, message) {
  if (!Schema || Schema.Check(contract[definition], message)) return;
  process.stderr.write(`fake: outside the contract (${definition}): ${JSON.stringify(message).slice(0, 300)}\n`);
  process.exit(70);
}

const { values: args } = parseArgs({
  args: process.argv.slice(2),
  options: { m: { type: 'string', short: 'm' }, model: { type: 'string' }, name: { type: 'string' } },
  strict: false,
  allowPositionals: true,
});
const source = String(args.model ?? '');
const name = String(args.name ?? source);

const journalPath = (() => {
  try {
    return statSync(source).isDirectory() ? path.join(source, 'journal.jsonl') : undefined;
  } catch {
    return undefined;
  }
})();

function journal(event, fields = {}) {
  if (journalPath)
    appendFileSync(journalPath, `${JSON.stringify({ event, pid: process.pid, t: Date.now(), ...fields })}\n`);
}

function send(message) {
  checkContract('WorkerEvent', message);
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

const slowExitMs = Number(/slow-exit-(\d+)/.exec(name)?.[1] ?? 0);

function exit(code, reason) {
  const leave = () => {
    journal('exit', { reason });
    process.exit(code);
  };
  if (code === 0 && slowExitMs > 0) setTimeout(leave, slowExitMs);
  else leave();
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Parses a job's audio file into its transcript lines and directives. */
function readAudio(audioPath) {
  let content;
  try {
    content = readFileSync(audioPath, 'utf8');
  } catch (error) {
    return { unreadable: error.message, lines: [], directives: new Map() };
  }
  const lines = [];
  const directives = new Map();
  for (const raw of content.split('\n')) {
    const line = raw.trim();
    const match = /^!([a-z-]+)(?:=(.*))?$/.exec(line);
    if (match) directives.set(match[1], match[2] ?? '');
    else if (line) lines.push(line);
  }
  return { lines, directives };
}

const cancelled = new Set();
/** The languages relayed to this worker's shards, by job. */
const relayed = new Map();
/** Resolves when the job is cancelled: wakes a waiting job. */
const cancelWaiters = new Map();

function cancel(job) {
  journal('cancel', { job });
  cancelled.add(job);
  cancelWaiters.get(job)?.();
}

/** Waits for `ready()` (polled) or a cancel of the job; true if the job was cancelled. */
async function wait(job, ready) {
  let wake;
  const woken = new Promise((resolve) => (wake = resolve));
  cancelWaiters.set(job, wake);
  try {
    while (!cancelled.has(job) && !ready()) await Promise.race([sleep(10), woken]);
  } finally {
    cancelWaiters.delete(job);
  }
  return cancelled.has(job);
}

async function runJob({ job, audio, options }) {
  const parsed = readAudio(audio);
  const { lines, directives } = parsed;
  if (cancelled.has(job)) return send({ type: 'error', job, code: 'cancelled', message: 'the job was cancelled' });
  if (parsed.unreadable !== undefined) {
    return send({ type: 'error', job, code: 'invalid_audio', message: `fake: cannot read ${parsed.unreadable}` });
  }
  if (directives.has('hang')) {
    hanging = true;
    if (draining) exit(0, drainReason);
    return new Promise(() => undefined);
  }
  if (options.shard && directives.get('fail-shard') === String(options.shard.index)) {
    return send({ type: 'error', job, code: 'model_error', message: `fake: shard ${options.shard.index} failed` });
  }
  if (directives.has('sleep')) {
    const until = Date.now() + Number(directives.get('sleep'));
    if (await wait(job, () => Date.now() >= until)) {
      return send({ type: 'error', job, code: 'cancelled', message: 'the job was cancelled' });
    }
  }
  if (directives.has('gate')) {
    const gate = directives.get('gate');
    if (await wait(job, () => existsSync(gate))) {
      return send({ type: 'error', job, code: 'cancelled', message: 'the job was cancelled' });
    }
  }
  if (directives.has('crash')) {
    process.stderr.write('fake: crashing\n');
    exit(1, 'crash');
  }
  if (directives.has('error')) {
    const code = directives.get('error');
    return send({ type: 'error', job, code, message: directives.get('message') || `fake ${code}` });
  }
  const duration = directives.has('duration') ? Number(directives.get('duration')) : Math.max(1, lines.length);
  const awaitsLanguage = directives.has('long') && options.shard && options.shard.index > 0 && !options.language;
  send({
    type: 'info',
    job,
    language: awaitsLanguage ? '' : directives.get('language') || options.language || 'en',
    language_probability: 1,
    duration,
    duration_after_vad: duration,
  });
  if (awaitsLanguage && (await wait(job, () => relayed.has(job)))) {
    return send({ type: 'error', job, code: 'cancelled', message: 'the job was cancelled' });
  }
  relayed.delete(job);
  const crashAfter = directives.has('crash-after') ? Number(directives.get('crash-after')) : undefined;
  const [first, end] = shareOf(lines.length, options.shard, directives.has('long'));
  lines.slice(first, end).forEach((line, index) => {
    const id = first + index;
    if (id === crashAfter) {
      process.stderr.write('fake: crashing\n');
      exit(1, 'crash');
    }
    const words = line.split(/\s+/);
    send({
      type: 'segment',
      job,
      segment: {
        id: index,
        seek: 0,
        start: id,
        end: id + 1,
        text: ` ${line}`,
        tokens: [id + 1],
        temperature: 0,
        avg_logprob: -0.1,
        compression_ratio: 1,
        no_speech_prob: 0.01,
        words: options.word_timestamps
          ? words.map((word, index) => ({
              word: ` ${word}`,
              start: id + index / words.length,
              end: id + (index + 1) / words.length,
              probability: 0.9,
            }))
          : null,
        logprobs: options.logprobs
          ? [{ token: ` ${line}`, logprob: -0.1, bytes: [...Buffer.from(` ${line}`, 'utf8')] }]
          : null,
      },
    });
  });
  send({ type: 'done', job, processing_seconds: 0.001 });
}

/** The lines [first, end) a shard answers with (all of them without a shard). */
function shareOf(count, shard, long) {
  if (!shard) return [0, count];
  if (!long) return shard.index === 0 ? [0, count] : [0, 0];
  return [Math.floor((shard.index * count) / shard.count), Math.floor(((shard.index + 1) * count) / shard.count)];
}

// Jobs arrive one message (one job, or one batch) at a time; they are answered in order.
const batches = [];
let serving = false;
let hanging = false;
let draining = false;
async function serve() {
  if (serving) return;
  serving = true;
  while (batches.length > 0) {
    for (const job of batches.shift()) {
      await runJob(job);
      cancelled.delete(job.job);
    }
  }
  serving = false;
  if (draining) exit(0, drainReason);
}

/** No more commands: finish the jobs received, then exit. */
let drainReason = '';
function drain(reason) {
  if (draining) return;
  draining = true;
  drainReason = reason;
  if (!serving || hanging) exit(0, reason);
}

function onCommand(line) {
  let message;
  try {
    message = JSON.parse(line);
  } catch {
    process.stderr.write(`fake: ignoring a malformed message: ${line.slice(0, 200)}\n`);
    return;
  }
  checkContract('WorkerCommand', message);
  if (message.type === 'transcribe' || message.type === 'transcribe_batch') {
    const jobs = message.type === 'transcribe' ? [message] : message.jobs;
    journal('run', {
      jobs: jobs.map((job) => ({
        job: job.job,
        text: readAudio(job.audio).lines.join(' '),
        ...(job.options?.shard ? { shard: job.options.shard } : {}),
      })),
    });
    batches.push(jobs.map(({ job, audio, options }) => ({ job: String(job), audio, options: options ?? {} })));
    void serve();
  } else if (message.type === 'cancel') {
    cancel(String(message.job));
  } else if (message.type === 'language') {
    journal('language', { job: String(message.job), language: message.language });
    relayed.set(String(message.job), message.language);
  } else if (message.type === 'shutdown') {
    drain('shutdown');
  } else {
    process.stderr.write(`fake: ignoring a message of type ${message.type}\n`);
  }
}

/** Claims one of `count` load failures (files created exclusively, so concurrent starts agree). */
function claimLoadFailure(count) {
  if (!journalPath) return false;
  for (let index = 1; index <= count; index++) {
    try {
      writeFileSync(path.join(source, `load-failure-${index}`), String(process.pid), { flag: 'wx' });
      return true;
    } catch {
      // Claimed by an earlier start.
    }
  }
  return false;
}

async function load() {
  journal('start', { name });
  Schema = (await import('typebox/schema')).default;
  const flaky = /flaky-load-(\d+)/.exec(name);
  if (name.includes('fail-load') || (flaky && claimLoadFailure(Number(flaky[1])))) {
    send({ type: 'fatal', code: 'model_load_failed', message: `fake: cannot load model ${name}` });
    exit(3, 'fatal');
  }
  if (name.includes('exit-load')) {
    process.stderr.write('fake: cannot start\n');
    exit(3, 'exit-load');
  }
  if (name.includes('hang-load')) return false;
  const slow = /slow-load-(\d+)/.exec(name);
  if (slow) await sleep(Number(slow[1]));
  return true;
}

const input = createInterface({ input: process.stdin });
input.on('close', () => drain('end of stdin'));
const commands = [];
let isReady = false;
input.on('line', (line) => {
  if (draining) return;
  if (isReady) onCommand(line);
  else commands.push(line);
});
if (await load()) {
  journal('ready');
  send({ type: 'ready', model: name, load_seconds: 0.001 });
  isReady = true;
  for (const line of commands.splice(0)) onCommand(line);
}
