// Which words of a turn being spoken are sent, and the rule that makes a turn's deltas its transcript.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AudioBuffer } from '../../src/realtime/audio-buffer.ts';
import {
  agreedWords,
  continuationAfter,
  FIRST_WORDS_MIN_PROBABILITY,
  HELD_BACK_WORDS,
  restAfter,
  StableText,
  wordProbabilities,
  words,
} from '../../src/realtime/stability.ts';

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

test('words are agreed from the start until the first that differs in its letters, and spelled as the later partial has them', () => {
  assert.deepEqual(agreedWords([' My', ' fellow', ' Americans.', ' Ask'], [' my', ' fellow', ' Americans,', ' ask']), [
    ' my',
    ' fellow',
    ' Americans,',
    ' ask',
  ]);
  assert.deepEqual(agreedWords([' rather', ' cold.'], [' rather', ' cold-hearted']), [' rather']);
  // A word of punctuation alone agrees only with itself.
  assert.deepEqual(agreedWords([' so', ' -', ' be'], [' so', ' --', ' be']), [' so']);
  assert.deepEqual(agreedWords([], [' my']), []);
});

test('a word is sent once two consecutive partials propose it and a word after it, and the deltas join into the transcript', () => {
  const stable = new StableText();
  const sent: string[] = [];
  const offer = (decoded: string) => {
    const delta = stable.offer(decoded);
    if (delta) sent.push(delta);
    return delta;
  };
  assert.equal(offer(' And so'), ''); // nothing to agree with yet
  assert.equal(offer(' And so my fellow'), 'And'); // "so" is agreed but last: held back; no leading space
  assert.equal(offer(' And so my fellow Americans.'), ' so my');
  // "Americans." became "Americans,": the same word, held back as the last agreed one.
  assert.equal(offer(' And so my fellow Americans, ask not'), ' fellow');
  assert.equal(offer(' And so my fellow Americans, ask not what'), ' Americans, ask');
  // The final decode is not forced to start with the sent text: its punctuation differs ("so,").
  const rest = stable.finish(' And so, my fellow Americans, ask not what your country can do for you.');
  sent.push(rest);
  assert.equal(rest, ' not what your country can do for you.');
  assert.equal(sent.join(''), 'And so my fellow Americans, ask not what your country can do for you.');
  assert.equal(stable.sent, sent.join(''));
});

test('two partials that agree on one word only send nothing: a guess at the end of the audio waits', () => {
  const stable = new StableText();
  assert.equal(stable.offer(' How do you marry?'), '');
  // The two agree on "How" alone (the real partials of "Had he married" at 0.75 and 1 s of audio).
  assert.equal(stable.offer(' How he married'), '');
  assert.equal(stable.offer(' Had he married a more'), '');
  assert.equal(stable.offer(' Had he married a more amiable'), 'Had he married a');
  assert.equal(stable.sent, 'Had he married a');
  assert.equal(HELD_BACK_WORDS, 1);
});

test("each word's probability comes from the engine's words it overlaps, however they split the text", () => {
  const w = (word: string, probability: number) => ({ word, probability });
  assert.deepEqual(
    wordProbabilities(' Had he married', [w(' Had', 0.3), w(' he', 0.9), w(' married', 0.8)]),
    [0.3, 0.9, 0.8],
  );
  // faster-whisper splits "cold-hearted" in two, and Chinese one character a word: the least counts.
  assert.deepEqual(
    wordProbabilities(' cold-hearted and', [w(' cold', 0.9), w('-hearted', 0.5), w(' and', 0.7)]),
    [0.5, 0.7],
  );
  assert.deepEqual(wordProbabilities(' 你好世界', [w(' 你', 0.9), w('好', 0.5), w('世', 0.7), w('界', 0.8)]), [0.5]);
  // Engine words that do not spell the text give nothing.
  assert.equal(wordProbabilities(' x y', [w(' x', 0.9)]), undefined);
});

test('the first delta of a turn waits while its partial is unsure of its words after the first', () => {
  const stable = new StableText();
  const unsure = FIRST_WORDS_MIN_PROBABILITY - 0.1;
  // The real word probabilities of the partials of "Had he married a more amiable woman" at 1.25 to 2.5 s.
  assert.equal(stable.offer(' How do you marry the more?', [0.18, 0.52, 0.91, 0.78, 0.27, 0.72]), '');
  // "How do you marry the" is agreed ("the" held back), but the partial is unsure of "do".
  assert.equal(stable.offer(' How do you marry the more', [0.27, 0.47, 0.9, 0.88, 0.37, 0.96]), '');
  assert.equal(stable.offer(' Had he married a more amiable woman?', [0.31, 0.92, 0.96, 0.97, 0.99, 0.77, 1.0]), '');
  // "Had he married a more" is agreed ("amiable" held back): an unsure first word goes with the sure
  // ones after it, up to the first unsure one.
  assert.equal(
    stable.offer(' Had he married a more amiable woman he', [0.4, 0.96, unsure, 0.99, 1.0, 0.8, 1.0, 0.38]),
    'Had he',
  );
  // Once words are sent, probabilities no longer hold the next ones (one for each word after "Had he").
  assert.equal(
    stable.offer('Had he married a more amiable woman he might', Array(7).fill(unsure)),
    ' married a more amiable woman',
  );
  assert.equal(stable.sent, 'Had he married a more amiable woman');
});

test('the first words must be sure in both partials that propose them', () => {
  const stable = new StableText();
  // The real partials of "Had he married a more amiable woman" at 1.47 to 2.43 s of audio: the second
  // is sure of "do" (0.62), the first is not (0.48).
  assert.equal(stable.offer(' How do you marry the more', [0.43, 0.48, 0.94, 0.91, 0.25, 0.83]), '');
  assert.equal(stable.offer(' How do you marry the more emi-', [0.42, 0.62, 0.96, 0.81, 0.58, 0.97, 0.3]), '');
  assert.equal(stable.offer(' Had he married a more amiable woman?', [0.25, 0.89, 0.93, 0.96, 0.99, 0.77, 0.29]), '');
  assert.equal(
    stable.offer(' Had he married a more amiable woman?', [0.29, 0.92, 0.95, 0.99, 1.0, 0.81, 0.99]),
    'Had he married a more amiable',
  );
});

test('a first word alone is sent only when it is sure itself; probabilities that do not match the words hold nothing', () => {
  const unsure = FIRST_WORDS_MIN_PROBABILITY - 0.1;
  const alone = new StableText();
  alone.offer(' Unless to be', [0.62, 0.97, 0.99]);
  assert.equal(alone.offer(' Unless to be rather', [0.55, unsure, 0.99, 0.55]), '');
  const sure = new StableText();
  sure.offer(' Permission is here by', [0.87, 0.97, 0.95, 0.71]);
  assert.equal(sure.offer(' Permission is hereby granted.', [0.92, 1, 0.93, 0.97]), 'Permission');
  const unmatched = new StableText();
  unmatched.offer(' And so my', [0.1]);
  assert.equal(unmatched.offer(' And so my fellow', [0.1]), 'And so');
});

test('with the rule off (EARSHOT_REALTIME_FIRST_WORDS_MIN_PROBABILITY=0) the first words go once two partials agree', () => {
  const off = new StableText(0);
  assert.equal(off.offer(' How do you marry', [0.18, 0.52, 0.91, 0.78]), '');
  assert.equal(off.offer(' How do you marry the', [0.27, 0.47, 0.9, 0.88, 0.37]), 'How do you');
});

test('the rest of the final decode follows the sent words it aligns with, case and punctuation ignored', () => {
  // A sent word the final decode has otherwise is neither repeated nor followed by the whole turn again.
  assert.equal(
    restAfter(' Had he married a more amiable woman, he might', 'How do you marry a more amiable'),
    ' woman, he might',
  );
  assert.equal(
    restAfter(
      ' He began a confused complaint against the wizard, who had vanished behind the curtain on the left.',
      'He began a confused complaint against the wizard who',
    ),
    ' had vanished behind the curtain on the left.',
  );
  // A first word the partials lost ("And") is not sent again after the sent words.
  assert.equal(restAfter(' And Mr. John Dashwood had then leisure', 'Mr John Dashwood had'), ' then leisure');
  // A final decode that ends before the sent text does: nothing more.
  assert.equal(restAfter(' One two', 'One two three'), '');
  assert.equal(restAfter(' One two three four', ''), ' One two three four');
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
