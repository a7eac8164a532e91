// A client's x-request-id is echoed and logged, never used as the engine's job id: requests that
// share one do not touch each other's jobs (a cancel, a batch), and each gets its own transcript.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { waitUntil } from '../support/processes.ts';
import { audioDir, startServer, type RunningServer } from '../support/server.ts';
import { normalise } from '../support/text.ts';

const SHARED_ID = 'same-request-id';
const LONG_TEXT = /permission is hereby granted/i;

/** POSTs a clip with a chosen x-request-id; the status and body, or the error if the client gave up. */
async function post(
  server: RunningServer,
  clip: string,
  { signal, requestId = SHARED_ID }: { signal?: AbortSignal; requestId?: string } = {},
): Promise<{ status: number; text: string; requestId: string | null }> {
  const form = new FormData();
  form.set('model', 'whisper-1');
  form.set('file', new Blob([readFileSync(path.join(audioDir, clip))]), clip);
  const response = await fetch(`${server.baseURL}/audio/transcriptions`, {
    method: 'POST',
    body: form,
    headers: { 'x-request-id': requestId },
    signal: signal ?? AbortSignal.timeout(120_000),
  });
  const body = (await response.json()) as { text: string };
  return { status: response.status, text: body.text, requestId: response.headers.get('x-request-id') };
}

async function poolStatus(server: RunningServer): Promise<{ queued: number; running: number }> {
  const list = (await (await fetch(`${server.url}/api/ps`)).json()) as {
    data: { queued: number; running: number }[];
  };
  return list.data[0]!;
}

describe('requests that share an x-request-id (two workers)', () => {
  let server: RunningServer;
  let tmpDir: string;

  before(async () => {
    tmpDir = mkdtempSync(path.join(os.tmpdir(), 'earshot-e2e-tmp-'));
    server = await startServer({
      EARSHOT_DEFAULT_MODEL: 'tiny.en',
      EARSHOT_WORKERS_PER_MODEL: '2',
      EARSHOT_TMP_DIR: tmpDir,
    });
  });

  after(async () => {
    try {
      assert.equal(await server.stop(), 0);
      assert.deepEqual(readdirSync(tmpDir), [], 'no upload is left behind');
    } finally {
      rmSync(tmpDir, { recursive: true, force: true });
    }
  });

  it('one client hanging up does not cancel the other; each job has its own id in the log', async () => {
    const from = server.logs.length;
    const leaving = new AbortController();
    const gone = post(server, 'multilingual.mp3', { signal: leaving.signal });
    gone.catch(() => undefined);
    const staying = post(server, 'multilingual.mp3');
    await waitUntil(async () => (await poolStatus(server)).running === 2, 60_000, 'both jobs run');
    leaving.abort();
    await assert.rejects(gone);

    const answer = await staying;
    assert.equal(answer.status, 200);
    assert.equal(answer.requestId, SHARED_ID, 'the client’s id is echoed');
    assert.match(answer.text, LONG_TEXT);
    assert.match(normalise(answer.text), /without restriction/);

    const queued = server.logs.slice(from).filter((entry) => entry.msg === 'job queued');
    assert.equal(queued.length, 2);
    for (const entry of queued) {
      assert.equal(entry.reqId, SHARED_ID);
      assert.match(String(entry.jobId), /^[0-9a-f-]{36}$/);
    }
    assert.notEqual(queued[0]!.jobId, queued[1]!.jobId, 'the engine gives each job its own id');
  });
});

describe('requests that share an x-request-id, batched (EARSHOT_MAX_BATCH=8, one worker)', () => {
  let server: RunningServer;
  let tmpDir: string;

  before(async () => {
    tmpDir = mkdtempSync(path.join(os.tmpdir(), 'earshot-e2e-tmp-'));
    server = await startServer({
      EARSHOT_DEFAULT_MODEL: 'tiny.en',
      EARSHOT_WORKERS_PER_MODEL: '1',
      EARSHOT_MAX_BATCH: '8',
      // tiny.en needs no language, so these requests would be packed (README, "Packing"): this is about batches.
      EARSHOT_PACK_MAX_CLIPS: '1',
      // A batch decodes whole 30 s windows; the same clips sent alone must too, to be compared with it.
      EARSHOT_FIT_SHORT_AUDIO_SECONDS: '0',
      EARSHOT_TMP_DIR: tmpDir,
    });
  });

  after(async () => {
    try {
      assert.equal(await server.stop(), 0);
      assert.deepEqual(readdirSync(tmpDir), [], 'no upload is left behind');
    } finally {
      rmSync(tmpDir, { recursive: true, force: true });
    }
  });

  it('gives each request of a batch its own transcript', async () => {
    const clips = ['jfk.flac', 'hotwords.mp3', 'stereo_diarization.wav'];
    const alone = new Map<string, string>();
    for (const clip of clips) {
      const answer = await post(server, clip, { requestId: `alone-${clip}` });
      assert.equal(answer.status, 200);
      alone.set(clip, normalise(answer.text));
    }

    const from = server.logs.length;
    // One job keeps the worker busy, so that the three that share an id wait together and are batched.
    const busy = post(server, 'multilingual.mp3', { requestId: 'keeps-the-worker-busy' });
    await waitUntil(async () => (await poolStatus(server)).running === 1, 60_000, 'the first job runs');
    const answers = await Promise.all(clips.map((clip) => post(server, clip)));
    assert.match((await busy).text, LONG_TEXT);

    const batches = server.logs.slice(from).filter((entry) => entry.msg === 'decoding a batch');
    assert.ok(
      batches.some((entry) => (entry.jobs as string[]).length === 3),
      'the three requests were decoded in one batch',
    );
    clips.forEach((clip, index) => {
      assert.equal(answers[index]!.status, 200, clip);
      assert.equal(normalise(answers[index]!.text), alone.get(clip), clip);
    });
  });
});
