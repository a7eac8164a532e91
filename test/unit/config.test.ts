import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { InvalidConfigError, loadConfig, optionSpecs } from '../../src/config.ts';
import { errorKinds } from '../../src/api-errors.ts';
import { projectRoot } from '../../src/paths.ts';
import { engineKnobs } from '../../src/openai/transcription-request.ts';

const readme = readFileSync(path.join(projectRoot, 'README.md'), 'utf8');

describe('configuration', () => {
  it('has documented defaults', () => {
    const config = loadConfig([], {});
    assert.equal(config.port, 8000);
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.defaultModel, 'base');
    assert.equal(config.maxUploadBytes, 25 * 1024 * 1024);
    assert.deepEqual(
      [...config.modelAliases],
      [
        ['whisper-1', ''],
        ['gpt-4o-transcribe', ''],
        ['gpt-4o-mini-transcribe', ''],
      ],
    );
    assert.equal(config.hubDownload, true);
    assert.equal(config.hubCacheDir, undefined);
    assert.deepEqual(config.hubModels, []);
    assert.ok(path.isAbsolute(config.modelsDir), 'the models directory is made absolute at start');
  });

  it('takes flags over environment variables over defaults', () => {
    const env = { PORT: '9000', EARSHOT_DEFAULT_MODEL: 'tiny.en', EARSHOT_MAX_UPLOAD_BYTES: '10MB' };
    const fromEnv = loadConfig([], env);
    assert.equal(fromEnv.port, 9000);
    assert.equal(fromEnv.defaultModel, 'tiny.en');
    assert.equal(fromEnv.maxUploadBytes, 10_000_000);
    const fromFlags = loadConfig(['--port', '9001', '--default-model=small', '--model-aliases', 'a=b,c'], env);
    assert.equal(fromFlags.port, 9001);
    assert.equal(fromFlags.defaultModel, 'small');
    assert.deepEqual(
      [...fromFlags.modelAliases],
      [
        ['a', 'b'],
        ['c', ''],
      ],
    );
  });

  it('rejects bad values with a message naming the option and the rule', () => {
    const cases: [string[], Record<string, string>, RegExp][] = [
      [[], { PORT: 'eighty' }, /^PORT = "eighty" must be a whole number from 0 to 65535$/],
      [['--port', '70000'], {}, /^--port = "70000" must be a whole number/],
      [[], { EARSHOT_DEVICE: 'tpu' }, /EARSHOT_DEVICE = "tpu" must be one of cpu, cuda, auto/],
      [[], { EARSHOT_HUB_DOWNLOAD: 'maybe' }, /must be true or false/],
      [[], { EARSHOT_MAX_UPLOAD_BYTES: 'lots' }, /must be a size/],
      [[], { EARSHOT_MODEL_ALIASES: 'a=b=c' }, /is not ALIAS or ALIAS=MODEL/],
      [[], { EARSHOT_HUB_MODELS: 'small,../etc' }, /"\.\.\/etc" is not a size name, a hub id \(OWNER\/NAME\) or \*/],
      [['--no-such-flag'], {}, /Unknown option '--no-such-flag'/],
      [['--port'], {}, /--port <value>' argument missing/],
      [['stray'], {}, /Unexpected argument 'stray'/],
    ];
    for (const [argv, env, message] of cases) {
      assert.throws(
        () => loadConfig(argv, env),
        (error) => error instanceof InvalidConfigError && message.test(error.message),
      );
    }
  });

  it('takes a TLS certificate and key together, never one alone', () => {
    const both = loadConfig(['--tls-cert', 'cert.pem', '--tls-key=key.pem'], {});
    assert.equal(both.tlsCert, path.resolve('cert.pem'));
    assert.equal(both.tlsKey, path.resolve('key.pem'));
    assert.equal(loadConfig([], {}).tlsCert, undefined);
    assert.throws(
      () => loadConfig([], { EARSHOT_TLS_CERT: 'cert.pem' }),
      (error) =>
        error instanceof InvalidConfigError &&
        /^EARSHOT_TLS_CERT is set without EARSHOT_TLS_KEY: HTTPS needs both/.test(error.message),
    );
    assert.throws(() => loadConfig(['--tls-key', 'key.pem'], {}), /EARSHOT_TLS_KEY is set without EARSHOT_TLS_CERT/);
  });

  it("has the realtime limits, with OpenAI's where it has them", () => {
    const config = loadConfig([], {});
    assert.deepEqual(
      [
        config.realtimeMaxSessions,
        config.realtimeMaxSessionSeconds,
        config.realtimeIdleSeconds,
        config.realtimeMaxTurnSeconds,
        config.realtimeMaxFrameBytes,
        config.realtimeClientSecretSeconds,
      ],
      [8, 1800, 300, 30, 2 * 1024 * 1024, 600],
    );
    assert.throws(() => loadConfig([], { EARSHOT_REALTIME_CLIENT_SECRET_SECONDS: '5' }), /from 10 to 7200/);
    assert.equal(config.realtimeFirstWordsMinProbability, 0.6);
    assert.equal(
      loadConfig([], { EARSHOT_REALTIME_FIRST_WORDS_MIN_PROBABILITY: '0' }).realtimeFirstWordsMinProbability,
      0,
    );
    for (const bad of ['1.5', '-0.1', 'sure', '']) {
      assert.throws(
        () => loadConfig([], { EARSHOT_REALTIME_FIRST_WORDS_MIN_PROBABILITY: bad }),
        /EARSHOT_REALTIME_FIRST_WORDS_MIN_PROBABILITY = ".*" must be a number from 0 to 1/,
      );
    }
  });

  it('is documented in the README: every option with its variable, flag and default', () => {
    for (const spec of optionSpecs) {
      const row = readme.split('\n').find((line) => line.startsWith(`| \`${spec.env}\``));
      assert.ok(row, `README lists ${spec.env}`);
      assert.ok(row.includes(`\`${spec.flag}\``), `README gives the flag of ${spec.env}`);
    }
  });

  it('documents every error in the README with its status, type and wire code', () => {
    for (const [kind, { status, type, code }] of Object.entries(errorKinds)) {
      const row = readme.split('\n').find((line) => line.startsWith(`| \`${kind}\``));
      assert.ok(row, `README documents ${kind}`);
      const cells = row.split('|').map((cell) => cell.trim());
      assert.deepEqual(
        cells.slice(2, 5),
        [String(status), `\`${type}\``, code === null ? 'null' : `\`${code}\``],
        kind,
      );
    }
  });

  it('documents every faster-whisper knob a request may set', () => {
    for (const knob of Object.keys(engineKnobs)) {
      assert.ok(
        readme.split('\n').some((line) => line.startsWith(`| \`${knob}\``)),
        `README documents the ${knob} field`,
      );
    }
  });
});
