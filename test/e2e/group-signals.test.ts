// A signal to the whole process group (Ctrl-C in a terminal, systemd's KillMode=control-group,
// `tini -g`) reaches the workers too: they must let the gateway own the shutdown, so the request in
// flight still finishes, no worker is restarted, and no process is left. And should the gateway be
// killed outright, its workers die with it.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { childPids, processGone, waitUntil, workerPidsOf } from '../support/processes.ts';
import { audioDir, startServer, waitForLog, type RunningServer } from '../support/server.ts';

const LONG_TEXT = /permission is hereby granted/i;

function startRequest(server: RunningServer): Promise<{ status: number; text: string }> {
  const form = new FormData();
  form.set('model', 'whisper-1');
  form.set('file', new Blob([readFileSync(path.join(audioDir, 'multilingual.mp3'))]), 'multilingual.mp3');
  return fetch(`${server.baseURL}/audio/transcriptions`, {
    method: 'POST',
    body: form,
    signal: AbortSignal.timeout(120_000),
  }).then(async (response) => ({ status: response.status, text: ((await response.json()) as { text: string }).text }));
}

async function runningJobs(server: RunningServer): Promise<number> {
  const list = (await (await fetch(`${server.url}/api/ps`)).json()) as { data: { running: number }[] };
  return list.data[0]?.running ?? 0;
}

describe('signals to the whole process group', () => {
  const servers: RunningServer[] = [];

  after(() => {
    for (const server of servers) {
      if (server.process.exitCode === null && server.process.signalCode === null) {
        process.kill(-server.process.pid!, 'SIGKILL');
      }
    }
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal} to the group: the request in flight finishes, the server exits 0, no restart, no process left`, async () => {
      const server = await startServer(
        { EARSHOT_DEFAULT_MODEL: 'tiny.en', EARSHOT_WORKERS_PER_MODEL: '1', EARSHOT_SHUTDOWN_GRACE_MS: '60000' },
        { detached: true },
      );
      servers.push(server);
      const workers = workerPidsOf(server);
      assert.equal(workers.length, 1);
      const children = childPids(server.process.pid!);
      const from = server.logs.length;
      const request = startRequest(server);
      request.catch(() => undefined);
      await waitUntil(async () => (await runningJobs(server)) === 1, 60_000, 'the job runs');

      const exited = once(server.process, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
      process.kill(-server.process.pid!, signal);
      await waitForLog(server, 'shutting down', { from });
      const answer = await request;
      assert.equal(answer.status, 200);
      assert.match(answer.text, LONG_TEXT);
      assert.deepEqual(await exited, [0, null]);

      const after = server.logs.slice(from);
      assert.deepEqual(
        after.filter((e) => e.msg === 'restarting engine worker' || e.msg === 'engine worker died'),
        [],
        'no worker died or was restarted',
      );
      for (const pid of [...workers, ...children]) {
        await waitUntil(() => processGone(pid), 5000, `process ${pid} is gone`);
      }
    });
  }

  it('SIGKILL to the gateway alone: its workers die with it, even mid-job', async () => {
    const server = await startServer(
      { EARSHOT_DEFAULT_MODEL: 'tiny.en', EARSHOT_WORKERS_PER_MODEL: '2' },
      { detached: true },
    );
    servers.push(server);
    const workers = workerPidsOf(server);
    assert.equal(workers.length, 2);
    const request = startRequest(server);
    request.catch(() => undefined);
    await waitUntil(async () => (await runningJobs(server)) === 1, 60_000, 'the job runs');
    server.process.kill('SIGKILL');
    for (const pid of workers) await waitUntil(() => processGone(pid), 3000, `worker ${pid} is gone`);
  });
});
