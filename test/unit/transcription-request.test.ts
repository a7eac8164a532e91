import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiError } from '../../src/errors.ts';
import { parseTranscriptionRequest, unknownFields, type FormFields } from '../../src/protocol/transcription-request.ts';

const form = (entries: Record<string, string | string[]>): FormFields =>
  new Map(Object.entries(entries).map(([name, value]) => [name, Array.isArray(value) ? value : [value]]));

function rejects(
  fields: FormFields,
  param: string | null,
  code: string,
  task: 'transcribe' | 'translate' = 'transcribe',
) {
  assert.throws(
    () => parseTranscriptionRequest(fields, task),
    (error) => error instanceof ApiError && error.param === param && error.code === code && error.status === 400,
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
    rejects(form({}), 'model', 'missing_required_parameter');
    rejects(form({ model: '  ' }), 'model', 'missing_required_parameter');
    rejects(form({ model: 'm', response_format: 'xml' }), 'response_format', 'invalid_value');
    rejects(form({ model: 'm', response_format: 'diarized_json' }), 'response_format', 'unsupported_value');
    rejects(form({ model: 'm', temperature: '1.5' }), 'temperature', 'invalid_value');
    rejects(form({ model: 'm', temperature: 'hot' }), 'temperature', 'invalid_value');
    rejects(form({ model: 'm', temperature: '-0.1' }), 'temperature', 'invalid_value');
    rejects(form({ model: 'm', language: 'xx' }), 'language', 'invalid_value');
    rejects(form({ model: 'm', timestamp_granularities: 'word' }), 'timestamp_granularities', 'invalid_value');
    rejects(
      form({ model: 'm', response_format: 'verbose_json', timestamp_granularities: 'character' }),
      'timestamp_granularities',
      'invalid_value',
    );
    rejects(form({ model: ['a', 'b'] }), 'model', 'invalid_value');
    rejects(form({ model: 'm', stream: 'true' }), 'stream', 'unsupported_value');
    rejects(form({ model: 'm', stream: 'perhaps' }), 'stream', 'invalid_value');
  });

  it('translations take no language and always translate', () => {
    const request = parseTranscriptionRequest(form({ model: 'm', language: 'de' }), 'translate');
    assert.equal(request.options.task, 'translate');
    assert.equal(request.options.language, undefined);
    assert.deepEqual(unknownFields(form({ model: 'm', language: 'de', file: 'x' }), 'translate'), ['language']);
  });

  it('lists unknown fields for logging instead of rejecting them', () => {
    assert.deepEqual(unknownFields(form({ model: 'm', user: 'x', beam: '5' }), 'transcribe'), ['user', 'beam']);
    assert.doesNotThrow(() => parseTranscriptionRequest(form({ model: 'm', user: 'x' }), 'transcribe'));
  });
});
