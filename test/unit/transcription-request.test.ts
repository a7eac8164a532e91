import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiError } from '../../src/api-errors.ts';
import {
  engineKnobs,
  formFieldSchemas,
  parseTranscriptionRequest,
  unknownFields,
  type FormFields,
} from '../../src/openai/transcription-request.ts';

const form = (entries: Record<string, string | string[]>): FormFields =>
  new Map(Object.entries(entries).map(([name, value]) => [name, Array.isArray(value) ? value : [value]]));

function rejects(
  fields: FormFields,
  param: string | null,
  kind: string,
  task: 'transcribe' | 'translate' = 'transcribe',
) {
  assert.throws(
    () => parseTranscriptionRequest(fields, task),
    (error) => error instanceof ApiError && error.param === param && error.kind === kind && error.status === 400,
  );
}

describe('transcription request fields', () => {
  it('has OpenAI defaults: json, segment granularity, temperature fallback', () => {
    const request = parseTranscriptionRequest(form({ model: 'whisper-1' }), 'transcribe');
    assert.equal(request.model, 'whisper-1');
    assert.equal(request.responseFormat, 'json');
    assert.deepEqual([...request.granularities], ['segment']);
    assert.deepEqual(request.options, { task: 'transcribe', temperature: [0, 0.2, 0.4, 0.6, 0.8, 1] });
  });

  it('maps OpenAI fields to faster-whisper options', () => {
    const request = parseTranscriptionRequest(
      form({
        model: 'base',
        language: 'DE',
        prompt: 'Grüße',
        temperature: '0.3',
        response_format: 'verbose_json',
        timestamp_granularities: ['word', 'segment'],
        chunking_strategy: 'auto',
      }),
      'transcribe',
    );
    assert.deepEqual(request.options, {
      task: 'transcribe',
      temperature: [0.3],
      initial_prompt: 'Grüße',
      language: 'de',
      vad_filter: true,
      word_timestamps: true,
    });
    assert.deepEqual([...request.granularities].sort(), ['segment', 'word']);
  });

  it('accepts granularities as a JSON array string', () => {
    const request = parseTranscriptionRequest(
      form({ model: 'm', response_format: 'verbose_json', timestamp_granularities: '["word"]' }),
      'transcribe',
    );
    assert.deepEqual([...request.granularities], ['word']);
  });

  it('rejects each bad field with its name as param', () => {
    rejects(form({}), 'model', 'missing_model');
    rejects(form({ model: '  ' }), 'model', 'missing_model');
    rejects(form({ model: 'm', response_format: 'xml' }), 'response_format', 'invalid_value');
    rejects(
      form({ model: 'm', response_format: 'diarized_json' }),
      'response_format',
      'unsupported_value',
      'translate',
    );
    rejects(form({ model: 'm', temperature: '1.5' }), 'temperature', 'invalid_value');
    rejects(form({ model: 'm', temperature: 'hot' }), 'temperature', 'invalid_value');
    rejects(form({ model: 'm', temperature: '-0.1' }), 'temperature', 'invalid_value');
    rejects(form({ model: 'm', language: 'xx' }), 'language', 'invalid_language');
    rejects(form({ model: 'm', timestamp_granularities: 'word' }), 'timestamp_granularities', 'invalid_value');
    rejects(
      form({ model: 'm', response_format: 'verbose_json', timestamp_granularities: 'character' }),
      'timestamp_granularities',
      'invalid_value',
    );
    rejects(form({ model: ['a', 'b'] }), 'model', 'invalid_value');
    rejects(form({ model: 'm', stream: 'perhaps' }), 'stream', 'invalid_value');
    rejects(form({ model: 'm', stream: 'true', response_format: 'srt' }), 'response_format', 'unsupported_value');
    rejects(form({ model: 'm', include: 'tokens' }), 'include', 'invalid_value');
    rejects(form({ model: 'm', include: 'logprobs', response_format: 'text' }), 'include', 'unsupported_value');
    rejects(form({ model: 'm', chunking_strategy: 'manual' }), 'chunking_strategy', 'invalid_value');
    rejects(
      form({ model: 'm', chunking_strategy: '{"type":"server_vad","threshold":2}' }),
      'chunking_strategy.threshold',
      'invalid_value',
    );
    rejects(
      form({ model: 'm', chunking_strategy: '{"type":"server_vad","window":2}' }),
      'chunking_strategy',
      'invalid_value',
    );
    rejects(form({ model: 'm', chunking_strategy: '{not json' }), 'chunking_strategy', 'invalid_value');
    rejects(form({ model: 'm', beam_size: '0' }), 'beam_size', 'invalid_value');
    rejects(form({ model: 'm', beam_size: '2.5' }), 'beam_size', 'invalid_value');
    rejects(form({ model: 'm', best_of: 'many' }), 'best_of', 'invalid_value');
    rejects(form({ model: 'm', batch_size: '65' }), 'batch_size', 'invalid_value');
    rejects(form({ model: 'm', vad_filter: 'yes please' }), 'vad_filter', 'invalid_value');
    rejects(form({ model: 'm', no_speech_threshold: '1.2' }), 'no_speech_threshold', 'invalid_value');
    rejects(
      form({ model: 'm', hallucination_silence_threshold: '0' }),
      'hallucination_silence_threshold',
      'invalid_value',
    );
    rejects(form({ model: 'm', hotwords: 'x'.repeat(1001) }), 'hotwords', 'invalid_value');
    rejects(form({ model: 'm', vad_parameters: '[1]' }), 'vad_parameters', 'invalid_value');
    rejects(form({ model: 'm', vad_parameters: '{"speed":1}' }), 'vad_parameters', 'invalid_value');
    rejects(form({ model: 'm', 'vad_parameters[threshold]': 'high' }), 'vad_parameters.threshold', 'invalid_value');
    rejects(
      form({ model: 'm', vad_parameters: '{}', 'vad_parameters[threshold]': '0.2' }),
      'vad_parameters',
      'invalid_value',
    );
  });

  it('accepts plain decimal numbers only (and an exponent, as SDKs print tiny floats), naming the field', () => {
    const bad = [
      '0x1',
      '0x14',
      '0b1',
      '0o7',
      '1_0',
      ' 5',
      '5 ',
      '+5',
      'Infinity',
      '-Infinity',
      'NaN',
      '',
      ' ',
      '1e999',
    ];
    bad.push('.5', '5.', '1,5', '5\n', '١');
    for (const raw of bad) {
      rejects(form({ model: 'm', beam_size: raw }), 'beam_size', 'invalid_value');
      rejects(form({ model: 'm', patience: raw }), 'patience', 'invalid_value');
      rejects(form({ model: 'm', 'vad_parameters[threshold]': raw }), 'vad_parameters.threshold', 'invalid_value');
      if (raw.trim() !== '') rejects(form({ model: 'm', temperature: raw }), 'temperature', 'invalid_value');
    }
    rejects(form({ model: 'm', vad_parameters: '{"threshold":"0x1"}' }), 'vad_parameters.threshold', 'invalid_value');
    const parse = (fields: Record<string, string>) =>
      parseTranscriptionRequest(form({ model: 'm', ...fields }), 'transcribe');
    assert.equal(parse({ beam_size: '10' }).options.beam_size, 10);
    assert.equal(parse({ beam_size: '1e1' }).options.beam_size, 10);
    assert.equal(parse({ patience: '0.5' }).options.patience, 0.5);
    assert.deepEqual(parse({ temperature: '1e-7' }).options.temperature, [1e-7]);
    assert.deepEqual(parse({ temperature: '1E-05' }).options.temperature, [1e-5]);
    assert.equal(parse({ log_prob_threshold: '-1.5' }).options.log_prob_threshold, -1.5);
    assert.deepEqual(parse({ vad_parameters: '{"threshold":1e-3}' }).options.vad_parameters, { threshold: 0.001 });
  });

  it('refuses nested or non-string timestamp_granularities, include and object values with 400, never a crash', () => {
    const verbose = { model: 'm', response_format: 'verbose_json' };
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    for (const value of ['[["word"]]', '["word",["segment"]]', '[{"toString":1}]', '[null]', '[1]', '[[]]', deep]) {
      rejects(form({ ...verbose, timestamp_granularities: value }), 'timestamp_granularities', 'invalid_value');
      rejects(
        form({ ...verbose, timestamp_granularities: ['word', value] }),
        'timestamp_granularities',
        'invalid_value',
      );
    }
    for (const value of ['["logprobs"]', '[["logprobs"]]', '{"toString":1}']) {
      rejects(form({ model: 'm', include: value }), 'include', 'invalid_value');
    }
    for (const value of [
      '{"type":{"toString":1}}',
      '{"type":["server_vad"]}',
      '{"type":"server_vad","threshold":[[0.5]]}',
      '{"type":"server_vad","threshold":{"toString":1}}',
      `{"type":"server_vad","threshold":${deep}}`,
    ]) {
      assert.throws(
        () => parseTranscriptionRequest(form({ model: 'm', chunking_strategy: value }), 'transcribe'),
        (error) =>
          error instanceof ApiError && error.kind === 'invalid_value' && /^chunking_strategy/.test(error.param ?? ''),
        value,
      );
    }
    for (const value of ['{"threshold":[[0.5]]}', '{"threshold":{"valueOf":1}}', `{"threshold":${deep}}`]) {
      rejects(form({ model: 'm', vad_parameters: value }), 'vad_parameters.threshold', 'invalid_value');
    }
  });

  it('knows object keys by their own names: no prototype key passes as a VAD parameter', () => {
    for (const key of ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf', '__defineGetter__']) {
      rejects(form({ model: 'm', vad_parameters: `{"${key}":1}` }), 'vad_parameters', 'invalid_value');
      rejects(form({ model: 'm', [`vad_parameters[${key}]`]: '1' }), 'vad_parameters', 'invalid_value');
      rejects(
        form({ model: 'm', chunking_strategy: `{"type":"server_vad","${key}":1}` }),
        'chunking_strategy',
        'invalid_value',
      );
      rejects(
        form({ model: 'm', 'chunking_strategy[type]': 'server_vad', [`chunking_strategy[${key}]`]: '1' }),
        'chunking_strategy',
        'invalid_value',
      );
    }
  });

  it('streams json and text, and asks the engine for logprobs when include[]=logprobs', () => {
    const streamed = parseTranscriptionRequest(form({ model: 'm', stream: 'true', include: 'logprobs' }), 'transcribe');
    assert.equal(streamed.stream, true);
    assert.equal(streamed.includeLogprobs, true);
    assert.equal(streamed.options.logprobs, true);
    assert.equal(
      parseTranscriptionRequest(form({ model: 'm', stream: 'true', response_format: 'text' }), 'transcribe').stream,
      true,
    );
    assert.equal(parseTranscriptionRequest(form({ model: 'm', stream: 'false' }), 'transcribe').stream, false);
  });

  it('maps chunking_strategy server_vad, as the SDK sends it, onto faster-whisper VAD options', () => {
    const bracketed = parseTranscriptionRequest(
      form({
        model: 'm',
        'chunking_strategy[type]': 'server_vad',
        'chunking_strategy[threshold]': '0.4',
        'chunking_strategy[prefix_padding_ms]': '300',
        'chunking_strategy[silence_duration_ms]': '500',
      }),
      'transcribe',
    );
    const expected = { threshold: 0.4, speech_pad_ms: 300, min_silence_duration_ms: 500 };
    assert.equal(bracketed.options.vad_filter, true);
    assert.deepEqual(bracketed.options.vad_parameters, expected);
    const json = parseTranscriptionRequest(
      form({
        model: 'm',
        chunking_strategy: '{"type":"server_vad","threshold":0.4,"prefix_padding_ms":300,"silence_duration_ms":500}',
      }),
      'transcribe',
    );
    assert.deepEqual(json.options.vad_parameters, expected);
  });

  it("passes faster-whisper's own knobs through, validated", () => {
    const request = parseTranscriptionRequest(
      form({
        model: 'm',
        beam_size: '1',
        best_of: '3',
        vad_filter: 'true',
        vad_parameters: '{"threshold":0.3,"min_silence_duration_ms":800}',
        hotwords: 'ComfyUI',
        condition_on_previous_text: 'false',
        without_timestamps: 'true',
        no_speech_threshold: '0.5',
        hallucination_silence_threshold: '2',
        batch_size: '8',
      }),
      'translate',
    );
    assert.deepEqual(request.options, {
      task: 'translate',
      temperature: [0, 0.2, 0.4, 0.6, 0.8, 1],
      beam_size: 1,
      best_of: 3,
      batch_size: 8,
      vad_filter: true,
      condition_on_previous_text: false,
      without_timestamps: true,
      no_speech_threshold: 0.5,
      hallucination_silence_threshold: 2,
      hotwords: 'ComfyUI',
      vad_parameters: { threshold: 0.3, min_silence_duration_ms: 800 },
    });
    assert.deepEqual(
      unknownFields(form({ model: 'm', beam_size: '1', 'vad_parameters[threshold]': '0.2' }), 'transcribe'),
      [],
    );
  });

  it('translations take no language and always translate', () => {
    const request = parseTranscriptionRequest(form({ model: 'm', language: 'de' }), 'translate');
    assert.equal(request.options.task, 'translate');
    assert.equal(request.options.language, undefined);
    assert.deepEqual(unknownFields(form({ model: 'm', language: 'de', file: 'x' }), 'translate'), ['language']);
  });

  it("never takes the gateway's own live-turn options from a client: prefix, fit_window and partial are unknown fields", () => {
    const fields = form({ model: 'm', prefix: 'Forced text', fit_window: 'true', partial: 'true', priority: 'live' });
    const request = parseTranscriptionRequest(fields, 'transcribe');
    assert.deepEqual(request.options, { task: 'transcribe', temperature: [0, 0.2, 0.4, 0.6, 0.8, 1] });
    assert.deepEqual(unknownFields(fields, 'transcribe'), ['prefix', 'fit_window', 'partial', 'priority']);
  });

  it('streams verbose_json and translations too (earshot extensions); srt and vtt never', () => {
    const verbose = parseTranscriptionRequest(
      form({ model: 'm', stream: 'true', response_format: 'verbose_json' }),
      'transcribe',
    );
    assert.equal(verbose.stream, true);
    const translation = parseTranscriptionRequest(form({ model: 'm', stream: 'true' }), 'translate');
    assert.equal(translation.stream, true);
    assert.deepEqual(unknownFields(form({ model: 'm', stream: 'true' }), 'translate'), []);
    rejects(
      form({ model: 'm', stream: 'true', response_format: 'vtt' }),
      'response_format',
      'unsupported_value',
      'translate',
    );
  });

  it('knows exactly the fields its schemas describe (one table feeds both)', () => {
    for (const task of ['transcribe', 'translate'] as const) {
      const described = Object.keys(formFieldSchemas(task));
      for (const name of described)
        assert.deepEqual(unknownFields(form({ [name]: 'x' }), task), [], `${task}: ${name}`);
      assert.deepEqual(
        unknownFields(form({ speaker: 'x', language: 'x' }), task),
        task === 'translate' ? ['speaker', 'language'] : ['speaker'],
      );
      assert.ok(described.includes('file') && described.includes('model'));
    }
  });

  it("accepts a knob's documented bounds and refuses what lies past them", () => {
    const schemas = formFieldSchemas('transcribe');
    for (const [name, knob] of Object.entries(engineKnobs)) {
      if (knob.kind !== 'number') continue;
      const schema = schemas[name] as { type: string; minimum?: number; exclusiveMinimum?: number; maximum: number };
      const parse = (value: number) =>
        parseTranscriptionRequest(form({ model: 'm', [name]: String(value) }), 'transcribe');
      assert.doesNotThrow(() => parse(schema.maximum), name);
      rejects(form({ model: 'm', [name]: String(schema.maximum + 1) }), name, 'invalid_value');
      if (schema.minimum !== undefined) {
        assert.doesNotThrow(() => parse(schema.minimum!), name);
        rejects(form({ model: 'm', [name]: String(schema.minimum - 1) }), name, 'invalid_value');
      } else {
        rejects(form({ model: 'm', [name]: String(schema.exclusiveMinimum) }), name, 'invalid_value');
      }
      if (schema.type === 'integer')
        rejects(form({ model: 'm', [name]: String(schema.maximum - 0.5) }), name, 'invalid_value');
    }
  });

  it('lists unknown fields for logging instead of rejecting them', () => {
    assert.deepEqual(unknownFields(form({ model: 'm', user: 'x', beam: '5' }), 'transcribe'), ['user', 'beam']);
    assert.doesNotThrow(() => parseTranscriptionRequest(form({ model: 'm', user: 'x' }), 'transcribe'));
  });

  it('diarized_json: the diarize option with the speaker counts; known speakers decoded from their data URLs', () => {
    const plain = parseTranscriptionRequest(form({ model: 'm', response_format: 'diarized_json' }), 'transcribe');
    assert.equal(plain.responseFormat, 'diarized_json');
    assert.deepEqual(plain.options.diarize, {});
    assert.deepEqual(plain.speakerReferences, []);
    assert.equal(plain.stream, false);
    const counted = parseTranscriptionRequest(
      form({ model: 'm', response_format: 'diarized_json', num_speakers: '2', min_speakers: '1', max_speakers: '3' }),
      'transcribe',
    );
    assert.deepEqual(counted.options.diarize, { num_speakers: 2, min_speakers: 1, max_speakers: 3 });
    const wav = Buffer.from('RIFF\x00\x00\x00\x00WAVE');
    const known = parseTranscriptionRequest(
      form({
        model: 'm',
        response_format: 'diarized_json',
        stream: 'true',
        known_speaker_names: ['ada', 'bo'],
        known_speaker_references: [
          `data:audio/wav;base64,${wav.toString('base64')}`,
          `data:;base64,${Buffer.from('mp3').toString('base64')}`,
        ],
      }),
      'transcribe',
    );
    assert.equal(known.stream, true);
    assert.deepEqual(
      known.speakerReferences.map(({ name, audio }) => [name, audio.toString('latin1')]),
      [
        ['ada', wav.toString('latin1')],
        ['bo', 'mp3'],
      ],
    );
    // srt and vtt diarize only when asked for labels.
    const srt = parseTranscriptionRequest(
      form({ model: 'm', response_format: 'srt', speaker_labels: 'true' }),
      'transcribe',
    );
    assert.deepEqual(srt.options.diarize, {});
    const unlabelled = parseTranscriptionRequest(
      form({ model: 'm', response_format: 'vtt', speaker_labels: 'false' }),
      'transcribe',
    );
    assert.equal(unlabelled.options.diarize, undefined);
  });

  it('rejects bad diarization fields with 400 invalid_value naming the field', () => {
    const diarized = (fields: Record<string, string | string[]>) =>
      form({ model: 'm', response_format: 'diarized_json', ...fields });
    const clip = `data:audio/wav;base64,${Buffer.from('RIFF').toString('base64')}`;
    const cases: [FormFields, string][] = [
      [diarized({ num_speakers: '0' }), 'num_speakers'],
      [diarized({ max_speakers: 'two' }), 'max_speakers'],
      [diarized({ min_speakers: '1.5' }), 'min_speakers'],
      [diarized({ min_speakers: '3', max_speakers: '2' }), 'min_speakers'],
      [diarized({ known_speaker_names: ['ada'] }), 'known_speaker_references'],
      [diarized({ known_speaker_references: [clip] }), 'known_speaker_names'],
      [
        diarized({ known_speaker_names: ['ada'], known_speaker_references: ['https://x/a.wav'] }),
        'known_speaker_references',
      ],
      [
        diarized({ known_speaker_names: ['ada'], known_speaker_references: ['data:audio/wav;base64,%%%'] }),
        'known_speaker_references',
      ],
      [
        diarized({ known_speaker_names: ['ada'], known_speaker_references: ['data:text/plain;base64,QUJD'] }),
        'known_speaker_references',
      ],
      [
        diarized({ known_speaker_names: ['ada'], known_speaker_references: ['data:audio/wav;base64,'] }),
        'known_speaker_references',
      ],
      [
        diarized({ known_speaker_names: ['ada', 'ada'], known_speaker_references: [clip, clip] }),
        'known_speaker_names',
      ],
      [diarized({ known_speaker_names: [' '], known_speaker_references: [clip] }), 'known_speaker_names'],
      [
        diarized({ known_speaker_names: ['a', 'b', 'c', 'd', 'e'], known_speaker_references: Array(5).fill(clip) }),
        'known_speaker_names',
      ],
      // Knobs of diarization without a diarized response.
      [form({ model: 'm', num_speakers: '2' }), 'num_speakers'],
      [form({ model: 'm', known_speaker_names: ['ada'], known_speaker_references: [clip] }), 'known_speaker_names'],
      [form({ model: 'm', response_format: 'json', speaker_labels: 'true' }), 'speaker_labels'],
      [form({ model: 'm', response_format: 'srt', speaker_labels: 'maybe' }), 'speaker_labels'],
    ];
    for (const [fields, param] of cases) rejects(fields, param, 'invalid_value');
  });
});
