// What `earshot transcribe` shows while it works: plain lines when stderr is not a terminal, bars
// redrawn in place when it is (a stream that says it is a TTY stands in for one).
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { formatSeconds, progressDisplay } from '../../src/cli/progress.ts';

/** A writable that keeps what it is given; a terminal of 120 columns if `tty`. */
function sink(tty: boolean): Writable & { text: string; isTTY: boolean; columns: number } {
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      stream.text += chunk.toString();
      done();
    },
  }) as Writable & { text: string; isTTY: boolean; columns: number };
  stream.text = '';
  stream.isTTY = tty;
  stream.columns = 120;
  return stream;
}

describe('transcription progress', () => {
  it('formats seconds as a person reads them', () => {
    assert.equal(formatSeconds(9.46), '9.5 s');
    assert.equal(formatSeconds(65), '1:05');
    assert.equal(formatSeconds(3723), '1:02:03');
  });

  it('writes a line at the start, at each new tenth decoded, and at the end, when not a terminal', () => {
    const stream = sink(false);
    const display = progressDisplay(['talk.mp3'], stream as unknown as NodeJS.WriteStream);
    const file = display.file('talk.mp3');
    file.decoding(100);
    for (const end of [5, 12, 14, 19.9, 55, 100]) file.decoded(end);
    file.done('done in 20.0 s');
    display.stop();
    const lines = stream.text.trimEnd().split('\n');
    assert.equal(lines[0], 'talk.mp3: decoding 1:40 of audio');
    assert.deepEqual(
      lines.slice(1, -1).map((line) => line.replace(/ ETA .*$/, '')),
      [
        'talk.mp3: 5% (5.0 s of 1:40)',
        'talk.mp3: 12% (12.0 s of 1:40)',
        'talk.mp3: 55% (55.0 s of 1:40)',
        'talk.mp3: 100% (1:40 of 1:40)',
      ],
    );
    assert.equal(lines.at(-1), 'talk.mp3: 100% done in 20.0 s');
  });

  it('says why a file failed', () => {
    const stream = sink(false);
    progressDisplay(['a.wav'], stream as unknown as NodeJS.WriteStream)
      .file('a.wav')
      .failed('400 Invalid file format');
    assert.equal(stream.text, 'a.wav: failed: 400 Invalid file format\n');
  });

  it('draws a bar per file on a terminal', () => {
    const stream = sink(true);
    const display = progressDisplay(['one.flac', 'two.flac'], stream as unknown as NodeJS.WriteStream);
    const one = display.file('one.flac');
    const two = display.file('two.flac');
    one.decoding(10);
    one.decoded(5);
    two.failed('404 model_not_found');
    one.done('done in 1.0 s');
    display.stop();
    assert.match(stream.text, / one\.flac █+ 100% \| 10\.0 s of 10\.0 s \| done in 1\.0 s/);
    assert.match(stream.text, / two\.flac ░+ +0% \| - of - \| failed: 404 model_not_found/);
  });
});
