// The `earshot` command (package.json's bin, run through tsx by bin/earshot.mjs): serve, transcribe
// files with progress, list and load models. Exit codes: 0 done, 1 a file or a request failed,
// 2 a usage error or no server to talk to.
import { Command, InvalidArgumentError, Option } from 'commander';
import { optionSpecs } from '../config.ts';
import { earshotVersion } from '../version.ts';
import {
  clientsFor,
  DEFAULT_SERVER_URL,
  isLocalUrl,
  serverAnswers,
  startLocalServer,
  type Clients,
  type LocalServer,
} from './connection.ts';
import { collectInputs, InputError } from './inputs.ts';
import { listModels, loadModel, unloadModel } from './models.ts';
import { FORMATS } from './outputs.ts';
import { progressDisplay } from './progress.ts';
import { failureReason, summaryLines, transcribeAll, type TranscribeSettings } from './transcribe.ts';

const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

class UsageError extends Error {}

function positiveInteger(raw: string): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new InvalidArgumentError('a whole number from 1 up');
  return value;
}

/** --server and --api-key, shared by the commands that talk to a server. */
function serverOptions(command: Command): Command {
  return command
    .addOption(new Option('--server <url>', 'the earshot server').env('EARSHOT_URL').default(DEFAULT_SERVER_URL))
    .addOption(new Option('--api-key <key>', 'API key, when the server has keys').env('EARSHOT_API_KEY'));
}

interface ServerFlags {
  server: string;
  apiKey?: string;
}

/** The server at --server, which must answer (`models` needs a running one). */
async function runningServer(flags: ServerFlags): Promise<Clients> {
  if (!(await serverAnswers(flags.server))) {
    throw new UsageError(`no earshot server answers at ${flags.server} (start one with \`earshot serve\`)`);
  }
  return clientsFor(flags.server, flags.apiKey);
}

const program = new Command('earshot')
  .description('A self-hosted, OpenAI-compatible speech-to-text server for faster-whisper.')
  .version(earshotVersion)
  .showHelpAfterError()
  // Usage errors exit with 2, as the server does for a bad configuration; help and --version with 0.
  .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : EXIT_USAGE));

// The server's own flags, from the table npm start reads them with: one place, so none can be missing.
const serve = program
  .command('serve')
  .description(
    'Run the server, as `npm start` does. Every option can also be set by its environment variable (README, "Configuration").',
  );
const serveFlags = optionSpecs.map((spec) => {
  const option = new Option(`${spec.flag} <value>`, `${spec.description} [${spec.env}]`);
  serve.addOption(option);
  return { flag: spec.flag, name: option.attributeName() };
});
serve.action(async (flags: Record<string, string | undefined>) => {
  const argv = serveFlags.flatMap(({ flag, name }) => (flags[name] === undefined ? [] : [`${flag}=${flags[name]}`]));
  const { serve: run } = await import('../serve.ts');
  await run(argv);
});

serverOptions(
  program
    .command('transcribe')
    .description(
      'Transcribe audio files, and the audio files in directories, with a progress bar per file. Uses the server at --server; when none answers there and it is this machine, one is started for the run.',
    )
    .argument('<paths...>', 'audio files and directories')
    .option('-m, --model <name>', 'model (whisper-1 is the default model)', 'whisper-1')
    .option('-l, --language <code>', 'spoken language, ISO-639-1 (transcriptions; detected when left out)')
    .addOption(
      new Option('--task <task>', 'transcribe, or translate to English')
        .choices(['transcribe', 'translate'])
        .default('transcribe'),
    )
    .addOption(new Option('-f, --format <format>', 'output format').choices(FORMATS).default('text'))
    .option('-o, --out <dir>', 'write each output here (NAME.txt, .json, .srt, .vtt); without it, to stdout')
    .option('-c, --concurrency <n>', 'files sent at a time', positiveInteger, 2),
).action(async (paths: string[], flags: TranscribeFlags) => {
  process.exitCode = await transcribe(paths, flags);
});

interface TranscribeFlags extends ServerFlags {
  model: string;
  language?: string;
  task: 'transcribe' | 'translate';
  format: TranscribeSettings['format'];
  out?: string;
  concurrency: number;
}

async function transcribe(paths: string[], flags: TranscribeFlags): Promise<number> {
  if (flags.language !== undefined && flags.task === 'translate') {
    throw new UsageError('--language is for transcriptions: a translation detects the spoken language');
  }
  const inputs = await collectInputs(paths);
  let local: LocalServer | undefined;
  let url = flags.server;
  if (!(await serverAnswers(url))) {
    if (!isLocalUrl(url)) throw new UsageError(`no earshot server answers at ${url}`);
    process.stderr.write(`No earshot server answers at ${url}: starting one for this run…\n`);
    local = await startLocalServer();
    url = local.url;
    process.stderr.write(`Local server ready at ${url}.\n`);
  }
  const display = progressDisplay(inputs.map((input) => input.name));
  // Ctrl-C: the bars are closed and a server started here stopped, before leaving.
  const interrupted = async () => {
    display.stop();
    await local?.stop();
    process.exit(130);
  };
  process.once('SIGINT', () => void interrupted());
  try {
    const summary = await transcribeAll(
      clientsFor(url, flags.apiKey).api,
      inputs,
      {
        model: flags.model,
        task: flags.task,
        format: flags.format,
        concurrency: flags.concurrency,
        ...(flags.language !== undefined && { language: flags.language }),
        ...(flags.out !== undefined && { out: flags.out }),
      },
      display,
    );
    display.stop();
    process.stderr.write(`${summaryLines(summary).join('\n')}\n`);
    return summary.outcomes.every((outcome) => outcome.ok) ? 0 : EXIT_FAILED;
  } finally {
    display.stop();
    await local?.stop();
  }
}

const models = serverOptions(
  program.command('models').description('List the models the server can serve; load or unload one (admin API).'),
);
models
  .command('list', { isDefault: true })
  .description('the models, and whether each is loaded')
  .action(async () => console.log(await listModels(await runningServer(models.opts<ServerFlags>()))));
models
  .command('load <name>')
  .description('load a model now (it stays until unloaded, idle past its TTL, or evicted)')
  .action(async (name: string) => console.log(await loadModel(await runningServer(models.opts<ServerFlags>()), name)));
models
  .command('unload <name>')
  .description('unload a model (the default and preloaded ones stay)')
  .action(async (name: string) =>
    console.log(await unloadModel(await runningServer(models.opts<ServerFlags>()), name)),
  );

try {
  await program.parseAsync();
} catch (error) {
  const usage = error instanceof UsageError || error instanceof InputError ? error.message : undefined;
  process.stderr.write(`earshot: ${usage ?? failureReason(error)}\n`);
  process.exit(usage === undefined ? EXIT_FAILED : EXIT_USAGE);
}
