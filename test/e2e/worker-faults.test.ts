// A worker that dies costs the request it held, never the server: the request gets a clear 5xx,
// the worker is replaced, and the next request is served.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { audioDir, JFK_TEXT, startServer, type RunningServer } from '../support/server.ts';

function workerPids(server: RunningServer): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(server.process.pid)], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map(Number);
  } catch {
    return [];
  }
}

describe('engine worker faults', () => {
  let server: RunningServer;
  let client: OpenAI;

  before(async () => {
    server = await startServer();
    client = new OpenAI({ baseURL: server.baseURL, apiKey: 'not-needed', maxRetries: 0 });
  });

  after(async () => {
    assert.equal(await server.stop(), 0);
  });

  it('fails the request of a killed worker with engine_crashed, then serves the next request', async () => {
    const [worker] = workerPids(server);
    assert.ok(worker, 'the default model has a worker process');
    const request = client.audio.transcriptions.create({
      file: createReadStream(path.join(audioDir, 'multilingual.mp3')),
      model: 'whisper-1',
    });
    const queued = server.logs.length;
    while (!server.logs.slice(queued).some((entry) => entry.msg === 'job queued')) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    process.kill(worker, 'SIGKILL');
    await assert.rejects(request, (error) => {
      assert.ok(error instanceof OpenAI.InternalServerError);
      assert.equal(error.code, 'engine_crashed');
      assert.match(error.message, /SIGKILL/);
      return true;
    });

    const health = (await (await fetch(`${server.url}/health`)).json()) as { models: { restarts: number }[] };
    assert.equal(health.models[0]?.restarts, 1);

    const transcription = await client.audio.transcriptions.create({
      file: createReadStream(path.join(audioDir, 'jfk.flac')),
      model: 'whisper-1',
    });
    assert.equal(transcription.text, JFK_TEXT);
    const [replacement] = workerPids(server);
    assert.ok(replacement && replacement !== worker, 'a new worker process serves');
  });
});
