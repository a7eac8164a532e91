// The playground page: its options, a recording transcribed (text live, then words with their
// times), the microphone live, the API key when the server asks for one.
import { ApiProblem, apiKey, listLanguages, listModels, parseJson, transcribe, transcriptionPath } from './api.js';
import { LiveTranscription } from './microphone.js';
import { TimedTranscript, toSrt, toVtt } from './transcript.js';

/** @typedef {import('./api.js').VerboseTranscript} VerboseTranscript */
/** @typedef {import('./api.js').FormFields} FormFields */
/** @typedef {import('./microphone.js').RealtimeEvent} RealtimeEvent */

/**
 * @template {HTMLElement} T
 * @param {string} id
 * @param {new () => T} type
 * @returns {T}
 */
function element(id, type) {
  const found = document.getElementById(id);
  if (!(found instanceof type)) throw new Error(`The page has no ${type.name} #${id}.`);
  return found;
}

const ui = {
  keySection: element('key-section', HTMLElement),
  keyMessage: element('key-message', HTMLElement),
  keyForm: element('key-form', HTMLFormElement),
  keyInput: element('api-key', HTMLInputElement),
  model: element('model', HTMLSelectElement),
  task: element('task', HTMLSelectElement),
  language: element('language', HTMLSelectElement),
  format: element('response-format', HTMLSelectElement),
  temperature: element('temperature', HTMLInputElement),
  prompt: element('prompt', HTMLTextAreaElement),
  stream: element('stream', HTMLInputElement),
  fileSection: element('file-section', HTMLElement),
  fileForm: element('file-form', HTMLFormElement),
  fileInput: element('file', HTMLInputElement),
  dropZone: element('drop-zone', HTMLElement),
  fileName: element('file-name', HTMLElement),
  transcribe: element('transcribe', HTMLButtonElement),
  cancel: element('cancel', HTMLButtonElement),
  microphoneSection: element('microphone-section', HTMLElement),
  microphoneStart: element('microphone-start', HTMLButtonElement),
  microphoneStop: element('microphone-stop', HTMLButtonElement),
  microphoneStatus: element('microphone-status', HTMLElement),
  turns: element('turns', HTMLOListElement),
  problem: element('problem', HTMLElement),
  resultSection: element('result-section', HTMLElement),
  status: element('status', HTMLElement),
  player: element('player', HTMLAudioElement),
  transcript: element('transcript', HTMLElement),
  downloads: element('downloads', HTMLElement),
  segmentsBox: element('segments-box', HTMLDetailsElement),
  segmentRows: element('segment-rows', HTMLTableSectionElement),
  responseBox: element('response-box', HTMLDetailsElement),
  response: element('response', HTMLElement),
  curl: element('curl', HTMLElement),
};

const granularityBoxes = /** @type {HTMLInputElement[]} */ ([
  ...document.querySelectorAll('input[name="granularity"]'),
]);
const modeRadios = /** @type {HTMLInputElement[]} */ ([...document.querySelectorAll('input[name="mode"]')]);

const timed = new TimedTranscript({ textBox: ui.transcript, segmentRows: ui.segmentRows, audio: ui.player });

/** The recording chosen, and its object URL (the player's source). */
let chosen = /** @type {{ file: File, url: string } | undefined} */ (undefined);
let running = /** @type {AbortController | undefined} */ (undefined);
let live = /** @type {LiveTranscription | undefined} */ (undefined);
/** The download links' object URLs, released when the next result replaces them. */
let downloadUrls = /** @type {string[]} */ ([]);

// ---------------------------------------------------------------------------------------------------
// Errors and the API key

/** @param {unknown} error */
function describe(error) {
  if (!(error instanceof ApiProblem))
    return { message: error instanceof Error ? error.message : String(error), detail: '' };
  const detail = [
    error.status > 0 && `HTTP ${error.status}`,
    error.type,
    error.code,
    error.param && `param ${error.param}`,
  ];
  return { message: error.message, detail: detail.filter(Boolean).join(' · ') };
}

/** Shows the server's message (OpenAI's error shape); a 401 also asks for a key. @param {unknown} error */
function showProblem(error) {
  const { message, detail } = describe(error);
  const text = document.createElement('p');
  text.className = 'message';
  text.textContent = message;
  const facts = document.createElement('p');
  facts.className = 'detail';
  facts.textContent = detail;
  ui.problem.replaceChildren(text, facts);
  ui.problem.hidden = false;
  if (error instanceof ApiProblem && error.status === 401) askForKey(error);
}

function clearProblem() {
  ui.problem.hidden = true;
  ui.problem.replaceChildren();
}

/** @param {ApiProblem} problem */
function askForKey(problem) {
  ui.keySection.hidden = false;
  ui.keyMessage.textContent = problem.message;
  ui.keyInput.focus();
}

ui.keyForm.addEventListener('submit', (event) => {
  event.preventDefault();
  apiKey.set(ui.keyInput.value.trim());
  void loadModels();
});

// ---------------------------------------------------------------------------------------------------
// Options

async function loadModels() {
  try {
    const models = await listModels();
    const previous = ui.model.value;
    ui.model.replaceChildren(
      ...models.map((model) => new Option(model.state ? `${model.id} (${model.state})` : model.id, model.id)),
    );
    const loaded = models.find((model) => model.state === 'loaded');
    ui.model.value = models.some((model) => model.id === previous) ? previous : (loaded?.id ?? models[0]?.id ?? '');
    if (!ui.keySection.hidden) ui.keyMessage.textContent = apiKey.get() === '' ? '' : 'Key accepted.';
    updateOptions();
  } catch (error) {
    if (error instanceof ApiProblem && error.status === 401) askForKey(error);
    else showProblem(error);
  }
}

async function loadLanguages() {
  let languages;
  try {
    languages = await listLanguages();
  } catch (error) {
    showProblem(error);
    return;
  }
  const byName = [...languages].sort((a, b) => a.name.localeCompare(b.name));
  for (const { code, name } of byName) {
    ui.language.append(new Option(`${name.charAt(0).toUpperCase()}${name.slice(1)} (${code})`, code));
  }
}

const mode = () => modeRadios.find((radio) => radio.checked)?.value ?? 'file';
const streamable = () => ui.format.value === 'json' || ui.format.value === 'text';
const granularities = () => granularityBoxes.filter((box) => box.checked).map((box) => box.value);

/** The fields a transcription sends, from the options (only those that differ from the defaults). */
function commonFields() {
  /** @type {FormFields} */
  const fields = { model: ui.model.value };
  if (ui.task.value === 'transcribe' && ui.language.value !== '') fields.language = ui.language.value;
  if (ui.prompt.value.trim() !== '') fields.prompt = ui.prompt.value;
  const temperature = ui.temperature.value.trim();
  if (temperature !== '' && Number(temperature) !== 0) fields.temperature = temperature;
  return fields;
}

/** The request the options make: what the curl line shows and the first request sends. */
function mainFields() {
  /** @type {FormFields} */
  const fields = { ...commonFields(), response_format: ui.format.value };
  if (ui.format.value === 'verbose_json') fields.timestamp_granularities = granularities();
  if (ui.stream.checked && streamable()) fields.stream = 'true';
  return fields;
}

/** @param {string} value */
const shellQuoted = (value) => (/^[\w.,:/@%+=-]+$/.test(value) ? value : `'${value.replaceAll("'", `'\\''`)}'`);

function updateCurl() {
  const fields = mainFields();
  // -N: curl prints the events as they come rather than when its buffer fills.
  const parts = [`curl${fields.stream ? ' -N' : ''} ${location.origin}${transcriptionPath(ui.task.value)}`];
  if (!ui.keySection.hidden) parts.push('-H "Authorization: Bearer $EARSHOT_API_KEY"');
  parts.push(`-F file=@${shellQuoted(chosen?.file.name ?? 'recording.mp3')}`);
  for (const [name, value] of Object.entries(fields)) {
    for (const item of Array.isArray(value) ? value : [value]) {
      parts.push(`-F ${shellQuoted(`${Array.isArray(value) ? `${name}[]` : name}=${item}`)}`);
    }
  }
  ui.curl.textContent = parts.join(' \\\n  ');
}

function updateOptions() {
  const microphone = mode() === 'microphone';
  for (const field of document.querySelectorAll('.file-only')) {
    if (field instanceof HTMLElement) field.hidden = microphone;
  }
  ui.fileSection.hidden = microphone;
  ui.resultSection.hidden = microphone;
  ui.microphoneSection.hidden = !microphone;
  ui.language.disabled = ui.task.value === 'translate' && !microphone;
  for (const box of granularityBoxes) box.disabled = ui.format.value !== 'verbose_json';
  ui.stream.disabled = !streamable();
  updateCurl();
}

for (const control of [ui.model, ui.task, ui.language, ui.format, ui.temperature, ui.prompt, ui.stream]) {
  control.addEventListener('input', updateOptions);
}
for (const control of [...granularityBoxes, ...modeRadios]) control.addEventListener('change', updateOptions);

// ---------------------------------------------------------------------------------------------------
// A recording

/** Shows (or hides and clears) what a transcription produced. @param {boolean} shown */
function showResult(shown) {
  if (!shown) {
    timed.clear();
    ui.transcript.dataset.state = 'empty';
    status('');
  }
  ui.downloads.hidden = !shown;
  ui.segmentsBox.hidden = !shown || ui.segmentRows.childElementCount === 0;
  ui.responseBox.hidden = !shown;
}

/** @param {File} file */
function choose(file) {
  if (chosen) URL.revokeObjectURL(chosen.url);
  chosen = { file, url: URL.createObjectURL(file) };
  ui.fileName.textContent = `${file.name} (${(file.size / 1024).toFixed(0)} KiB)`;
  ui.transcribe.disabled = false;
  ui.player.src = chosen.url;
  ui.player.hidden = false;
  showResult(false);
  updateCurl();
}

ui.fileInput.addEventListener('change', () => {
  const file = ui.fileInput.files?.[0];
  if (file) choose(file);
});
ui.dropZone.addEventListener('dragover', (event) => {
  event.preventDefault();
  ui.dropZone.classList.add('dragging');
});
ui.dropZone.addEventListener('dragleave', () => ui.dropZone.classList.remove('dragging'));
ui.dropZone.addEventListener('drop', (event) => {
  event.preventDefault();
  ui.dropZone.classList.remove('dragging');
  const file = event.dataTransfer?.files[0];
  if (file) choose(file);
});

/**
 * The text of an answer, shown until the timed words replace it (srt and vtt: under "Server response").
 * @param {string} body
 * @param {string} format
 */
function textOf(body, format) {
  if (format === 'json' || format === 'verbose_json') return /** @type {{ text: string }} */ (parseJson(body)).text;
  return format === 'text' ? body.trim() : '';
}

/**
 * @param {VerboseTranscript} transcript
 * @param {string} verboseBody the server's verbose_json, offered as is
 * @param {string} baseName
 */
function offerDownloads(transcript, verboseBody, baseName) {
  for (const url of downloadUrls) URL.revokeObjectURL(url);
  /** @type {[string, string, string][]} */
  const files = [
    ['txt', `${transcript.text}\n`, 'text/plain'],
    ['srt', toSrt(transcript.segments ?? []), 'text/plain'],
    ['vtt', toVtt(transcript.segments ?? []), 'text/vtt'],
    ['json', verboseBody, 'application/json'],
  ];
  downloadUrls = files.map(([extension, body, type]) => {
    const link = element(`download-${extension}`, HTMLAnchorElement);
    link.href = URL.createObjectURL(new Blob([body], { type: `${type};charset=utf-8` }));
    link.download = `${baseName}.${extension}`;
    return link.href;
  });
}

/** @param {string} text */
function status(text) {
  ui.status.textContent = text;
}

async function transcribeChosen() {
  if (!chosen || running) return;
  const { file } = chosen;
  const controller = new AbortController();
  running = controller;
  const started = performance.now();
  clearProblem();
  showResult(false);
  ui.transcribe.disabled = true;
  ui.cancel.hidden = false;
  const call = { file, fileName: file.name, task: ui.task.value, signal: controller.signal };
  const format = ui.format.value;
  const fields = mainFields();
  try {
    ui.transcript.dataset.state = 'live';
    status(fields.stream ? 'Transcribing: the text comes as it is decoded…' : 'Transcribing…');
    const answer = await transcribe({
      ...call,
      fields,
      onDelta: (delta) => ui.transcript.append(delta),
    });
    ui.response.textContent = answer.body;
    if (!fields.stream) ui.transcript.textContent = textOf(answer.body, format);

    // The words' times: from this answer when it has them, else from a second request that asks for them.
    const hasTimings =
      format === 'verbose_json' && granularities().includes('word') && granularities().includes('segment');
    let verboseBody = answer.body;
    if (!hasTimings) {
      status('Timing the words (a second request, verbose_json with word timestamps)…');
      const timing = await transcribe({
        ...call,
        fields: { ...commonFields(), response_format: 'verbose_json', timestamp_granularities: ['word', 'segment'] },
      });
      verboseBody = timing.body;
    }
    const transcript = /** @type {VerboseTranscript} */ (parseJson(verboseBody));
    timed.show(transcript);
    ui.transcript.dataset.state = 'timed';
    offerDownloads(transcript, verboseBody, file.name.replace(/\.[^.]*$/, '') || 'transcript');
    showResult(true);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const words = transcript.words?.length ?? 0;
    status(
      `Done in ${seconds} s: ${words} words${transcript.duration ? ` in ${transcript.duration.toFixed(1)} s of audio` : ''}. Play it, or click a word or a segment to hear it.`,
    );
  } catch (error) {
    if (error instanceof DOMException && error.name === 'AbortError') {
      status('Cancelled.');
    } else {
      status('');
      showProblem(error);
    }
    if (ui.transcript.dataset.state === 'live') ui.transcript.dataset.state = 'empty';
  } finally {
    running = undefined;
    ui.transcribe.disabled = false;
    ui.cancel.hidden = true;
  }
}

ui.fileForm.addEventListener('submit', (event) => {
  event.preventDefault();
  void transcribeChosen();
});
ui.cancel.addEventListener('click', () => running?.abort());

// ---------------------------------------------------------------------------------------------------
// The microphone

/** The list item of a turn (made when its first event arrives). @param {string} item */
function turnElement(item) {
  const id = `turn-${item}`;
  const existing = document.getElementById(id);
  if (existing) return existing;
  const turn = document.createElement('li');
  turn.id = id;
  turn.className = 'turn';
  turn.dataset.state = 'speaking';
  ui.turns.append(turn);
  return turn;
}

/** @param {RealtimeEvent} event */
function onRealtimeEvent(event) {
  const item = event.item_id;
  switch (event.type) {
    case 'session.created':
      ui.microphoneStatus.textContent = 'Listening: speak.';
      break;
    case 'input_audio_buffer.speech_started':
      ui.microphoneStatus.textContent = 'Hearing speech…';
      if (item) turnElement(item);
      break;
    case 'input_audio_buffer.speech_stopped':
      ui.microphoneStatus.textContent = 'Listening: speak.';
      if (item) turnElement(item).dataset.state = 'finishing';
      break;
    case 'conversation.item.input_audio_transcription.delta':
      if (item && event.delta) turnElement(item).append(event.delta);
      break;
    case 'conversation.item.input_audio_transcription.completed':
      if (item) {
        const turn = turnElement(item);
        turn.textContent = event.transcript ?? '';
        turn.dataset.state = 'completed';
      }
      break;
    case 'conversation.item.input_audio_transcription.failed':
      if (item) {
        const turn = turnElement(item);
        turn.textContent = event.error?.message ?? 'This turn could not be transcribed.';
        turn.dataset.state = 'failed';
      }
      break;
    case 'error':
      showProblem(new ApiProblem(0, event.error ?? { message: 'The server reported an error.' }));
      break;
  }
}

ui.microphoneStart.addEventListener('click', () => {
  if (live) return;
  clearProblem();
  ui.microphoneStart.disabled = true;
  ui.microphoneStatus.textContent = 'Starting the microphone…';
  const finished = () => {
    live = undefined;
    ui.microphoneStart.disabled = false;
    ui.microphoneStop.disabled = true;
    for (const radio of modeRadios) radio.disabled = false;
  };
  const session = new LiveTranscription({
    onEvent: onRealtimeEvent,
    onClose: (why) => {
      finished();
      ui.microphoneStatus.textContent = why === undefined ? 'Stopped.' : `Stopped: ${why}.`;
    },
  });
  live = session;
  // The source stays the microphone while a session is open.
  for (const radio of modeRadios) radio.disabled = true;
  session
    .start({ model: ui.model.value, language: ui.language.value, prompt: ui.prompt.value.trim() })
    .then(() => {
      ui.microphoneStop.disabled = false;
      ui.microphoneStop.focus();
    })
    .catch((/** @type {unknown} */ error) => {
      finished();
      ui.microphoneStatus.textContent = '';
      showProblem(error);
    });
});

ui.microphoneStop.addEventListener('click', () => {
  ui.microphoneStop.disabled = true;
  ui.microphoneStatus.textContent = 'Finishing the last turn…';
  void live?.stop();
});

// ---------------------------------------------------------------------------------------------------

updateOptions();
ui.keyInput.value = apiKey.get();
await Promise.all([loadLanguages(), loadModels()]);
document.body.dataset.ready = 'true';
