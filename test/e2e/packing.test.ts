// Packing: short requests with a language that wait together are packed side by side into shared
// windows (the worker's packing.py), and each gets its own text, words and stream.
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { normalise } from '../support/text.ts';
import { audioDir, startServer, readTextStream, type RunningServer } from '../support/server.ts';

// Words only one of the recordings says.
const OWN_WORDS: Record<string, string> = {
  'jfk.flac': 'americans',
  'hotwords.mp3': 'folder',
  'stereo_diarization.wav': 'wizard',
};

describe('packing short requests', () => {
  let server: RunningServer;
  let client: OpenAI;

  before(async () => {
    // One worker, so that requests wait together behind a long one; jfk.flac (11 s) packs too.
    server = await startServer({
      EARSHOT_WORKERS_PER_MODEL: '1',
      EARSHOT_PACK_MAX_CLIPS: '8',
      EARSHOT_PACK_CLIP_SECONDS: '12',
      // A packed window is a whole 30 s window; the clips sent alone must be decoded in whole windows too, to
      // be compared with it.
      EARSHOT_FIT_SHORT_AUDIO_SECONDS: '0',
    });
    client = new OpenAI({ baseURL: server.baseURL, apiKey: 'not-needed', maxRetries: 0 });
  });

  after(async () => {
    assert.equal(await server.stop(), 0);
  });

  const file = (clip: string) => createReadStream(path.join(audioDir, clip));
  const words = (text: string) => new Set(normalise(text).split(' '));

  /** Whether a transcript says its own recording's word and none of the others'. */
  function ownWordsOnly(clip: string, text: string): void {
    for (const [other, word] of Object.entries(OWN_WORDS)) {
      assert.equal(words(text).has(word), other === clip, `${clip}: "${text}"`);
    }
  }

  it('gives each packed request its own text, words and stream', async () => {
    const alone = (
      await client.audio.transcriptions.create({ file: file('jfk.flac'), model: 'whisper-1', language: 'en' })
    ).text;
    // The long request holds the one worker while the short ones arrive and wait together.
    const blocker = client.audio.transcriptions.create({ file: file('multilingual.mp3'), model: 'whisper-1' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const logsBefore = server.logs.length;

    const plain = Promise.all(
      ['jfk.flac', 'hotwords.mp3', 'stereo_diarization.wav'].map(
        async (clip) =>
          [
            clip,
            (await client.audio.transcriptions.create({ file: file(clip), model: 'whisper-1', language: 'en' })).text,
          ] as const,
      ),
    );
    const verbose = client.audio.transcriptions.create({
      file: file('hotwords.mp3'),
      model: 'whisper-1',
      language: 'en',
      response_format: 'verbose_json',
      timestamp_granularities: ['word'],
    });
    const streamed = (async () => {
      const stream = await client.audio.transcriptions.create({
        file: file('stereo_diarization.wav'),
        model: 'whisper-1',
        language: 'en',
        stream: true,
      });
      return readTextStream(stream);
    })();

    const [texts, detailed, streamedText] = await Promise.all([plain, verbose, streamed]);
    await blocker;

    const packs = server.logs.slice(logsBefore).filter((entry) => entry.msg === 'packing short jobs');
    assert.ok(
      packs.some((entry) => (entry.jobs as string[]).length >= 3),
      'the waiting requests were packed together',
    );
    for (const [clip, text] of texts) ownWordsOnly(clip, text);
    assert.equal(normalise(texts[0]![1]), normalise(alone));
    ownWordsOnly('stereo_diarization.wav', streamedText);
    ownWordsOnly('hotwords.mp3', detailed.text);
    assert.ok(detailed.words && detailed.words.length > 0, 'verbose_json has words');
    for (const word of detailed.words) {
      assert.ok(word.start >= 0 && word.start <= word.end && word.end <= detailed.duration, JSON.stringify(word));
    }
    assert.equal(normalise(detailed.words.map((word) => word.word).join(' ')), normalise(detailed.text));
    assert.equal(detailed.language, 'english');
  });
});
