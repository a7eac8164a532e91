// Which words of a turn being spoken are sent, and the rule that makes a turn's deltas its transcript.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AudioBuffer } from '../../src/realtime/audio-buffer.ts';
import { agreedWords, continuationAfter, StableText, words } from '../../src/realtime/stability.ts';

test('words keep their leading spaces, so joining them gives the text back', () => {
  const text = ' And so, my fellow Americans.';
  assert.deepEqual(words(text), [' And', ' so,', ' my', ' fellow', ' Americans.']);
  assert.equal(words(text).join(''), text);
  assert.deepEqual(words(''), []);
});

test('the continuation is what a prefix-forced decode adds after the sent text', () => {
  assert.equal(continuationAfter(' And so my fellow', 'And so'), ' my fellow');
  // A decode whose spacing of the prefix changed: the sent words are skipped by count.
  assert.equal(continuationAfter(' And  so my fellow', 'And so'), ' my fellow');
  assert.equal(continuationAfter(' Hello there', ''), 'Hello there');
});

test('words are agreed from the start until the first difference, punctuation included', () => {
  assert.deepEqual(agreedWords([' my', ' fellow', ' Americans.'], [' my', ' fellow', ' Americans,', ' ask']), [
    ' my',
    ' fellow',
  ]);
  assert.deepEqual(agreedWords([], [' my']), []);
});

test('a word is sent once two consecutive partials propose it, and the deltas join into the transcript', () => {
  const stable = new StableText();
  const sent: string[] = [];
  const offer = (decoded: string) => {
    const delta = stable.offer(decoded);
    if (delta) sent.push(delta);
    return delta;
  };
  assert.equal(offer(' And so'), ''); // nothing to agree with yet
  assert.equal(offer(' And so my fellow'), 'And so'); // the first delta has no leading space
  assert.equal(offer(' And so my fellow Americans.'), ' my fellow');
  assert.equal(offer(' And so my fellow Americans, ask not'), ''); // "Americans." became "Americans,"
  assert.equal(offer(' And so my fellow Americans, ask not what'), ' Americans, ask not');
  const rest = stable.finish(' And so my fellow Americans, ask not what your country can do for you.');
  sent.push(rest);
  assert.equal(rest, ' what your country can do for you.');
  assert.equal(sent.join(''), 'And so my fellow Americans, ask not what your country can do for you.');
  assert.equal(stable.sent, sent.join(''));
});

test('segments of a decode with nothing sent before are added as they come', () => {
  const stable = new StableText();
  assert.equal(stable.add(' First segment.'), 'First segment.');
  assert.equal(stable.add(' Second one.'), ' Second one.');
  assert.equal(stable.sent, 'First segment. Second one.');
});

test('the audio buffer slices by session index across chunks and forgets what is dropped', () => {
  const buffer = new AudioBuffer();
  buffer.append(Float32Array.from([0, 1, 2]));
  buffer.append(Float32Array.from([3, 4]));
  buffer.append(Float32Array.from([5, 6, 7]));
  assert.equal(buffer.end, 8);
  assert.deepEqual([...buffer.slice(2, 6)], [2, 3, 4, 5]);
  buffer.dropBefore(4);
  assert.equal(buffer.start, 4);
  assert.deepEqual([...buffer.slice(0, 8)], [4, 5, 6, 7]);
  buffer.clear();
  assert.equal(buffer.start, 8);
  assert.equal(buffer.end, 8);
  buffer.append(Float32Array.from([8]));
  assert.deepEqual([...buffer.slice(8)], [8]);
});
