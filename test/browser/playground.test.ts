// The playground (GET /) in a real browser: Debian's Chromium (scripts/browser.ts finds or installs
// it) driven by playwright-core, against the real server and models. A recording is transcribed with
// its text streamed in, then played with the word being heard lit up; errors show the server's own
// message; with keys on, the page asks for one; the microphone (Chromium's fake capture playing a real
// recording) is transcribed live over the realtime WebSocket.
//
// Screenshots: taken on every run; written to docs/ (the README shows them) with
// EARSHOT_UPDATE_SCREENSHOTS=1 npm run test:browser, else to a temporary directory.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ensureChromium } from '../../scripts/browser.ts';
import { projectRoot } from '../../src/paths.ts';
import { concat, decodeAudio, testAudio } from '../support/reference-audio.ts';
import { JFK_TEXT, startServer, type RunningServer } from '../support/server.ts';
import { normalise } from '../support/text.ts';

const screenshotDir =
  process.env.EARSHOT_UPDATE_SCREENSHOTS === '1'
    ? path.join(projectRoot, 'docs')
    : mkdtempSync(path.join(os.tmpdir(), 'earshot-screenshots-'));
const scratch = mkdtempSync(path.join(os.tmpdir(), 'earshot-browser-'));
const jfkFlac = testAudio('jfk.flac');

/** Mono pcm16 WAV of float samples in [-1, 1]. */
function wav(samples: Float32Array, sampleRate: number): Buffer {
  const data = Buffer.alloc(samples.length * 2);
  samples.forEach((sample, index) =>
    data.writeInt16LE(Math.round(Math.max(-1, Math.min(1, sample)) * 32767), index * 2),
  );
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + data.length, 4);
  header.write('WAVEfmt ', 8);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(sampleRate, 24);
  header.writeUInt32LE(sampleRate * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36);
  header.writeUInt32LE(data.length, 40);
  return Buffer.concat([header, data]);
}

/** Word error rate of a hypothesis against a reference, compared as normalised words. */
function wordErrorRate(reference: string, hypothesis: string): number {
  const ref = normalise(reference).split(' ');
  const hyp = normalise(hypothesis).split(' ').filter(Boolean);
  let row = Array.from({ length: hyp.length + 1 }, (_, j) => j);
  ref.forEach((word, i) => {
    const next = [i + 1];
    hyp.forEach((other, j) =>
      next.push(Math.min((row[j] ?? 0) + (word === other ? 0 : 1), (row[j + 1] ?? 0) + 1, (next[j] ?? 0) + 1)),
    );
    row = next;
  });
  return (row[hyp.length] ?? 0) / ref.length;
}

/** What went wrong in the page's own code (not a failed request, which the page reports itself). */
function watchForFaults(page: Page): string[] {
  const faults: string[] = [];
  page.on('pageerror', (error) => faults.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
      faults.push(`console error: ${message.text()}`);
    }
  });
  return faults;
}

async function openPlayground(browser: Browser, server: RunningServer, viewport = { width: 1200, height: 900 }) {
  const page = await browser.newPage({ viewport });
  const faults = watchForFaults(page);
  await page.goto(`${server.url}/`);
  await page.waitForSelector('body[data-ready="true"]');
  return { page, faults };
}

describe('the playground in Chromium', { timeout: 600_000 }, () => {
  let server: RunningServer;
  let browser: Browser;
  let microphoneWav: string;

  before(async () => {
    const executablePath = ensureChromium();
    // JFK at 48 kHz (the capture device's rate), then silence that ends the last turn.
    const samples = decodeAudio(jfkFlac, 48_000);
    microphoneWav = path.join(scratch, 'jfk-microphone.wav');
    writeFileSync(microphoneWav, wav(concat(samples, new Float32Array(48_000 * 2)), 48_000));
    [server, browser] = await Promise.all([
      startServer(),
      chromium.launch({
        executablePath,
        args: [
          '--autoplay-policy=no-user-gesture-required',
          '--use-fake-ui-for-media-stream',
          '--use-fake-device-for-media-stream',
          `--use-file-for-fake-audio-capture=${microphoneWav}%noloop`,
        ],
      }),
    ]);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    rmSync(scratch, { recursive: true, force: true });
    if (process.env.EARSHOT_UPDATE_SCREENSHOTS !== '1') rmSync(screenshotDir, { recursive: true, force: true });
  });

  it('transcribes a recording: the text streams in, then each word lights up as the audio plays', async () => {
    const { page, faults } = await openPlayground(browser, server);
    // Every change to the transcript while the answer streams in, as the page makes it.
    await page.evaluate(() => {
      const box = document.getElementById('transcript')!;
      const seen: { state: string; appended: number; text: string }[] = [];
      (window as unknown as { seen: typeof seen }).seen = seen;
      new MutationObserver((records) =>
        seen.push({
          state: box.dataset.state ?? '',
          appended: records.reduce((n, record) => n + record.addedNodes.length, 0),
          text: box.textContent ?? '',
        }),
      ).observe(box, { childList: true, characterData: true, subtree: true });
    });
    await page.setInputFiles('#file', jfkFlac);
    await page.getByRole('button', { name: 'Transcribe' }).click();
    await page.waitForSelector('#transcript[data-state="timed"]', { timeout: 120_000 });

    const seen = await page.evaluate(
      () => (window as unknown as { seen: { state: string; appended: number; text: string }[] }).seen,
    );
    const live = seen.filter((change) => change.state === 'live' && change.text !== '');
    assert.ok(live.length > 0, 'the text showed before the answer was complete');
    const deltas = live.reduce((n, change) => n + change.appended, 0);
    assert.ok(deltas >= 10, `the text came in pieces (${deltas} deltas)`);
    assert.equal(normalise(live.at(-1)?.text ?? ''), normalise(JFK_TEXT));

    const words = await page.locator('#transcript .word').allTextContents();
    assert.equal(normalise(words.join(' ')), normalise(JFK_TEXT));
    assert.equal(normalise((await page.locator('#transcript').textContent()) ?? ''), normalise(JFK_TEXT));
    assert.ok((await page.locator('#segment-rows tr').count()) >= 1);
    // The transcript as a phone shows it.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.locator('#result-section').screenshot({ path: path.join(screenshotDir, 'playground-phone.png') });
    await page.setViewportSize({ width: 1200, height: 900 });

    // Playback: the word lit up moves forward with the audio.
    await page.evaluate(() => document.querySelector('audio')!.play());
    const lit: number[] = [];
    for (let i = 0; i < 20; i++) {
      const start = await page
        .locator('#transcript .word.current')
        .getAttribute('data-start')
        .catch(() => null);
      if (start !== null && lit.at(-1) !== Number(start)) lit.push(Number(start));
      if (i === 12) await page.screenshot({ path: path.join(screenshotDir, 'playground.png'), fullPage: true });
      await page.waitForTimeout(200);
    }
    assert.ok(lit.length >= 4, `the highlight moved during playback (${lit.join(', ')})`);
    assert.deepEqual(
      lit,
      [...lit].sort((a, b) => a - b),
      'forward',
    );

    // A click on a word plays from it; a segment's button (by keyboard) from the segment's start.
    const word = page.locator('#transcript .word').nth(12);
    const wordStart = Number(await word.getAttribute('data-start'));
    await word.click();
    const afterWord = await page.evaluate(() => document.querySelector('audio')!.currentTime);
    assert.ok(afterWord >= wordStart - 0.01 && afterWord < wordStart + 0.5, `${afterWord} ≈ ${wordStart}`);
    const lastSegment = page.locator('#segment-rows button.seek').last();
    const segmentStart = Number(await lastSegment.getAttribute('data-start'));
    await lastSegment.focus();
    await page.keyboard.press('Enter');
    const afterSegment = await page.evaluate(() => document.querySelector('audio')!.currentTime);
    assert.ok(
      afterSegment >= segmentStart - 0.01 && afterSegment < segmentStart + 0.5,
      `${afterSegment} ≈ ${segmentStart}`,
    );
    assert.equal(
      await page.locator('#segment-rows tr.current button.seek').getAttribute('data-start'),
      String(segmentStart),
    );
    await page.evaluate(() => document.querySelector('audio')!.pause());

    // The downloads.
    // The downloads, as the browser saves them.
    const download = async (extension: string) => {
      const [saved] = await Promise.all([
        page.waitForEvent('download'),
        page.getByRole('link', { name: extension, exact: true }).click(),
      ]);
      assert.equal(saved.suggestedFilename(), `jfk.${extension}`);
      return readFileSync(await saved.path(), 'utf8');
    };
    assert.equal(normalise(await download('txt')), normalise(JFK_TEXT));
    assert.match(await download('srt'), /^1\n00:00:00,\d{3} --> 00:00:\d\d,\d{3}\n\S/);
    assert.match(await download('vtt'), /^WEBVTT\n\n00:00:00\.\d{3} --> /);
    const json = JSON.parse(await download('json')) as { words: unknown[]; segments: unknown[] };
    assert.equal(json.words.length, words.length);
    assert.deepEqual(faults, []);
    await page.close();
  });

  it('writes srt and vtt exactly as the server does', async () => {
    // Two speakers with pauses between them, for several segments.
    const pause = new Float32Array(16_000);
    const jfk = decodeAudio(jfkFlac, 16_000);
    const recording = wav(concat(jfk, pause, decodeAudio(testAudio('hotwords.mp3'), 16_000), pause, jfk), 16_000);
    const ask = async (format: string) => {
      const form = new FormData();
      form.append('file', new Blob([new Uint8Array(recording)]), 'recording.wav');
      // Greedy, without the temperature fallback (which samples): the three answers are one transcript.
      form.append('model', 'base');
      form.append('beam_size', '1');
      form.append('log_prob_threshold', '-100');
      form.append('compression_ratio_threshold', '100');
      form.append('response_format', format);
      const response = await fetch(`${server.baseURL}/audio/transcriptions`, { method: 'POST', body: form });
      const body = await response.text();
      assert.equal(response.status, 200, body);
      return body;
    };
    const [verbose, srt, vtt] = await Promise.all([ask('verbose_json'), ask('srt'), ask('vtt')]);
    assert.ok(srt.split('\n\n').length > 3, `several cues: ${srt}`);
    const { page, faults } = await openPlayground(browser, server);
    const written = await page.evaluate(
      async ({ body, module }) => {
        const { toSrt, toVtt } = (await import(module)) as {
          toSrt: (segments: unknown) => string;
          toVtt: (segments: unknown) => string;
        };
        const { segments } = JSON.parse(body) as { segments: unknown };
        return { srt: toSrt(segments), vtt: toVtt(segments) };
      },
      { body: verbose, module: '/playground/transcript.js' },
    );
    assert.equal(written.srt, srt);
    assert.equal(written.vtt, vtt);
    assert.deepEqual(faults, []);
    await page.close();
  });

  it("shows the server's message for a file that is not audio, dropped on the page", async () => {
    const notes = Buffer.from('These are meeting notes, not a recording.\n');
    const form = new FormData();
    form.append('file', new Blob([notes]), 'notes.txt');
    form.append('model', 'base');
    const expected = (await (
      await fetch(`${server.baseURL}/audio/transcriptions`, { method: 'POST', body: form })
    ).json()) as {
      error: { message: string };
    };

    const { page, faults } = await openPlayground(browser, server);
    // Dragged from elsewhere and dropped on the drop zone.
    const dropped = await page.evaluateHandle((text) => {
      const transfer = new DataTransfer();
      transfer.items.add(new File([text], 'notes.txt', { type: 'text/plain' }));
      return transfer;
    }, notes.toString());
    await page.dispatchEvent('#drop-zone', 'dragover', { dataTransfer: dropped });
    await page.dispatchEvent('#drop-zone', 'drop', { dataTransfer: dropped });
    assert.match((await page.locator('#file-name').textContent()) ?? '', /^notes\.txt/);
    await page.getByRole('button', { name: 'Transcribe' }).click();
    const problem = page.getByRole('alert').filter({ hasText: 'HTTP 400' });
    await problem.waitFor();
    assert.equal(await problem.locator('.message').textContent(), expected.error.message);
    assert.match((await problem.locator('.detail').textContent()) ?? '', /HTTP 400 · invalid_request_error/);
    assert.equal(await page.locator('#transcript').textContent(), '');
    assert.deepEqual(faults, []);
    await page.close();
  });

  it('transcribes the microphone live over the realtime WebSocket', async () => {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const faults = watchForFaults(page);
    // The audio the page sends, kept to check it is the recording (24 kHz pcm16, mono, in order).
    await page.addInitScript(() => {
      const appended: string[] = [];
      (window as unknown as { appended: string[] }).appended = appended;
      window.WebSocket = class extends WebSocket {
        override send(data: string | ArrayBufferLike | Blob | ArrayBufferView) {
          if (typeof data === 'string' && data.includes('"input_audio_buffer.append"')) {
            appended.push((JSON.parse(data) as { audio: string }).audio);
          }
          super.send(data);
        }
      };
    });
    await page.goto(`${server.url}/`);
    await page.waitForSelector('body[data-ready="true"]');
    // Every time a turn shows text before it is completed: the words that come while it is spoken.
    await page.evaluate(() => {
      const live: string[] = [];
      (window as unknown as { live: string[] }).live = live;
      new MutationObserver(() => {
        for (const turn of document.querySelectorAll<HTMLElement>('.turn:not([data-state="completed"])')) {
          if (turn.textContent) live.push(turn.textContent);
        }
      }).observe(document.getElementById('turns')!, { childList: true, characterData: true, subtree: true });
    });
    await page.getByLabel('The microphone, live').check();
    await page.getByLabel('Language').selectOption('en');
    await page.getByRole('button', { name: 'Start', exact: true }).click();
    const started = Date.now();
    // The recording is 11 s, played at real time, then 2 s of silence end the last turn: once it has
    // played, every turn is completed.
    await page.waitForFunction(
      (playedBy) => {
        const turns = [...document.querySelectorAll<HTMLElement>('.turn')];
        return Date.now() > playedBy && turns.length > 0 && turns.every((turn) => turn.dataset.state === 'completed');
      },
      started + 13_500,
      { timeout: 90_000, polling: 250 },
    );
    await page.screenshot({ path: path.join(screenshotDir, 'playground-microphone.png') });
    await page.getByRole('button', { name: 'Stop', exact: true }).click();
    await page.getByText(/^Stopped/).waitFor({ timeout: 30_000 });

    const live = await page.evaluate(() => (window as unknown as { live: string[] }).live);
    assert.ok(live.length > 0, 'words showed while a turn was being spoken');
    const turns = await page.locator('.turn').allTextContents();
    const together = turns.join(' ');
    // Each turn's transcript is the realtime decode of what the detector cut (its accuracy is
    // test/e2e_python/test_realtime.py's to measure); JFK's last phrase is a turn of its own.
    assert.ok(
      normalise(together).endsWith('ask what you can do for your country'),
      `the last turn completed with JFK's last words: ${JSON.stringify(turns)}`,
    );
    assert.ok(wordErrorRate(JFK_TEXT, together) <= 0.5, JSON.stringify(turns));
    // The audio sent was the recording: transcribed as a file, it is JFK's words.
    const appended = await page.evaluate(() => (window as unknown as { appended: string[] }).appended);
    const pcm = Buffer.concat(appended.map((chunk) => Buffer.from(chunk, 'base64')));
    assert.ok(pcm.length / 48_000 >= 11, `${pcm.length / 48_000} s of audio sent`);
    const samples = new Float32Array(pcm.length / 2).map((_, index) => pcm.readInt16LE(index * 2) / 32768);
    const form = new FormData();
    form.append('file', new Blob([new Uint8Array(wav(samples, 24_000))]), 'sent.wav');
    form.append('model', 'base');
    form.append('response_format', 'text');
    const sent = await fetch(`${server.baseURL}/audio/transcriptions`, { method: 'POST', body: form });
    assert.equal(normalise(await sent.text()), normalise(JFK_TEXT));
    assert.deepEqual(faults, []);
    await page.close();
  });

  it('with API keys on, asks for a key, shows the 401 of a wrong one, and opens the microphone with the right one', async () => {
    const keyed = await startServer(
      { EARSHOT_API_KEYS: 'playground-test-key-1', EARSHOT_WORKERS_PER_MODEL: '1' },
      { waitForReady: false },
    );
    try {
      const { page, faults } = await openPlayground(browser, keyed);
      const keySection = page.getByRole('region', { name: 'API key' });
      await keySection.waitFor();
      assert.match((await page.locator('#key-message').textContent()) ?? '', /API key/);
      await page.getByRole('textbox', { name: 'API key' }).fill('a-wrong-key-1234');
      await page.getByRole('button', { name: 'Use this key' }).click();
      await page.locator('#key-message', { hasText: 'Incorrect API key provided: a-w***1234' }).waitFor();
      assert.equal(await page.locator('#model option').count(), 0);

      await page.getByRole('textbox', { name: 'API key' }).fill('playground-test-key-1');
      await page.getByRole('button', { name: 'Use this key' }).click();
      await page.locator('#key-message', { hasText: 'Key accepted.' }).waitFor();
      assert.ok((await page.locator('#model option').allTextContents()).some((label) => label.startsWith('base')));
      assert.equal(await page.evaluate(() => sessionStorage.getItem('earshot.apiKey')), 'playground-test-key-1');
      // The microphone's session opens with an ephemeral key minted with that key.
      await page.getByLabel('The microphone, live').check();
      await page.getByRole('button', { name: 'Start', exact: true }).click();
      await page.getByText('Listening: speak.').waitFor({ timeout: 30_000 });
      await page.getByRole('button', { name: 'Stop', exact: true }).click();
      await page.getByText('Stopped.').waitFor({ timeout: 30_000 });
      assert.deepEqual(faults, []);
      await page.close();
    } finally {
      await keyed.stop();
    }
  });
});
