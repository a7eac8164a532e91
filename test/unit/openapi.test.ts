// The API's description (/openapi.json), generated from the routes' own schemas: every route described
// with its answers and errors (openapi-valid.test.ts checks it against the OpenAPI specification), the audio fields those the parser knows, the docs page
// served offline and public (or not, as configured), and the audio endpoints in agreement with OpenAI's
// published API where the two overlap (as the official SDK types it: see support/openai-types.ts).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { errorKinds } from '../../src/api-errors.ts';
import { Metrics } from '../../src/metrics.ts';
import type { Transcript } from '../../src/engine/index.ts';
import { renderTranscript } from '../../src/openai/formatters.ts';
import { deltaEvent, doneEvent, SegmentEvents, verboseDoneEvent } from '../../src/openai/stream-events.ts';
import { formFieldSchemas } from '../../src/openai/transcription-request.ts';
import { compareShapes, openaiAudioTypes, schemaShape, SDK_SOURCES, type Shape } from '../support/openai-types.ts';
import { stubApp, type StubApp } from '../support/stub-app.ts';

type JsonSchema = Record<string, unknown>;
interface Operation {
  tags?: string[];
  summary?: string;
  operationId?: string;
  requestBody?: { content: Record<string, { schema: JsonSchema }> };
  responses: Record<string, { description: string; content?: Record<string, { schema: JsonSchema }> }>;
}
interface Document {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, JsonSchema>; securitySchemes: Record<string, unknown> };
}

const KEY = 'docs-test-key-0123456789';

/**
 * Where earshot knowingly differs from OpenAI's types. The done event's usage: OpenAI's streaming models
 * (gpt-4o-transcribe) bill tokens, so its SDK types the event's usage as token usage; earshot's models
 * are Whisper's, which OpenAI bills by duration, and earshot's done event carries the duration usage of
 * its json answer (README, "Compatibility"). The segment event's speaker: earshot sends the event in
 * verbose_json streams too, whose segments have no speaker.
 */
const KNOWN_DIFFERENCES = [
  "TranscriptTextDoneEvent.usage.type: values duration are not OpenAI's",
  "TranscriptTextDoneEvent.usage.type: OpenAI's values tokens are missing",
  'TranscriptTextSegmentEvent.speaker: OpenAI requires it',
];

describe('the OpenAPI document', () => {
  let stub: StubApp;
  let document: Document;

  before(async () => {
    stub = await stubApp({}, { apiKeys: [KEY], metrics: new Metrics() });
    const response = await stub.app.inject({ method: 'GET', url: '/openapi.json' });
    assert.equal(response.statusCode, 200, 'public, keys or not');
    document = response.json();
  });

  after(async () => stub.dispose());

  const operation = (path: string, method: string): Operation => {
    const found = document.paths[path]?.[method];
    assert.ok(found, `${method.toUpperCase()} ${path} is described`);
    return found;
  };

  it('describes every route, each with a tag, a summary, an id and its answers', () => {
    const described = Object.entries(document.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
    );
    assert.deepEqual(described.sort(), [
      'DELETE /api/ps/{model}',
      'GET /api/ps',
      'GET /health',
      'GET /metrics',
      'GET /ready',
      'GET /v1/models',
      'GET /v1/models/{model}',
      'GET /v1/realtime',
      'POST /api/ps/{model}',
      'POST /v1/audio/transcriptions',
      'POST /v1/audio/translations',
      'POST /v1/realtime/client_secrets',
      'POST /v1/realtime/transcription_sessions',
    ]);
    for (const [path, methods] of Object.entries(document.paths)) {
      for (const [method, described] of Object.entries(methods)) {
        const where = `${method.toUpperCase()} ${path}`;
        assert.ok(described.tags?.length && described.summary && described.operationId, where);
        assert.ok(
          Object.keys(described.responses).some((status) => /^(2\d\d|101)$/.test(status)),
          `${where} succeeds`,
        );
      }
    }
    const realtime = operation('/v1/realtime', 'get');
    assert.ok(realtime.responses['101'], 'the WebSocket upgrade is its answer');
  });

  it("describes errors in OpenAI's shape, with every code of the errors registry", () => {
    const error = document.components.schemas.ErrorResponse as {
      properties: { error: { properties: { code: { enum: (string | null)[] } }; required: string[] } };
    };
    assert.deepEqual(error.properties.error.required, ['message', 'type', 'param', 'code']);
    assert.deepEqual(
      new Set(error.properties.error.properties.code.enum),
      new Set(Object.values(errorKinds).map((kind) => kind.code)),
    );
    // Each error answer names its codes, with the status the registry gives them.
    for (const [path, methods] of Object.entries(document.paths)) {
      for (const described of Object.values(methods)) {
        for (const [status, answer] of Object.entries(described.responses)) {
          if (!/^[45]/.test(status) || !answer.content?.['application/json']) continue;
          for (const [, named] of answer.description.matchAll(/^`([a-z_]+)`/gm)) {
            const kinds = Object.entries(errorKinds).filter(([kind, { code }]) => (code ?? kind) === named);
            assert.ok(
              kinds.some(([, kind]) => String(kind.status) === status),
              `${path} ${status}: ${named}`,
            );
          }
        }
      }
    }
    const transcription = operation('/v1/audio/transcriptions', 'post');
    assert.match(transcription.responses['400']?.description ?? '', /`invalid_value`: /);
    assert.match(transcription.responses['413']?.description ?? '', /`file_too_large` \(code null\)/);
  });

  it("describes the audio routes' form fields from the parser's own table", () => {
    for (const [path, task] of [
      ['/v1/audio/transcriptions', 'transcribe'],
      ['/v1/audio/translations', 'translate'],
    ] as const) {
      const body = operation(path, 'post').requestBody?.content['multipart/form-data']?.schema as {
        properties: Record<string, JsonSchema>;
        required: string[];
      };
      assert.deepEqual(body.properties, formFieldSchemas(task));
      assert.deepEqual(body.required, ['file', 'model']);
    }
  });

  it('describes the answers: json, verbose_json, text formats and the event stream, with its duration header', () => {
    const ok = operation('/v1/audio/transcriptions', 'post').responses['200'] as unknown as {
      headers: Record<string, unknown>;
      content: Record<string, { schema: JsonSchema }>;
    };
    assert.deepEqual(Object.keys(ok.content).sort(), ['application/json', 'text/event-stream', 'text/plain']);
    assert.deepEqual(ok.content['application/json']?.schema, {
      oneOf: [
        { $ref: '#/components/schemas/Transcription' },
        { $ref: '#/components/schemas/TranscriptionVerbose' },
        { $ref: '#/components/schemas/TranscriptionDiarized' },
      ],
    });
    assert.ok(ok.headers['x-audio-duration']);
    for (const event of ['TranscriptTextDeltaEvent', 'TranscriptTextSegmentEvent', 'TranscriptTextDoneEvent']) {
      assert.ok(document.components.schemas[event], event);
    }
  });

  describe("agrees with OpenAI's audio API where the two overlap (the openai SDK's types)", () => {
    const sdk = openaiAudioTypes();
    const ours = (schema: JsonSchema): Shape => schemaShape(schema, document.components.schemas);
    const form = (path: string) =>
      ours(operation(path, 'post').requestBody?.content['multipart/form-data']?.schema ?? {});
    const component = (name: string) => ours({ $ref: `#/components/schemas/${name}` });

    /** Fields of earshot's that OpenAI does not have must say they are earshot's. */
    function assertMarkedExtensions(schema: JsonSchema, names: readonly string[]) {
      const properties = schema.properties as Record<string, { description?: string }>;
      for (const name of names) {
        const field = name.split('.').at(-1) ?? name;
        assert.match(properties[field]?.description ?? '', /earshot/, `${name} is marked as earshot's`);
      }
    }

    it('transcription request fields', () => {
      const schema =
        operation('/v1/audio/transcriptions', 'post').requestBody?.content['multipart/form-data']?.schema ?? {};
      const compared = compareShapes(
        'transcriptions',
        form('/v1/audio/transcriptions'),
        sdk.interfaceShape(SDK_SOURCES.transcriptions, 'TranscriptionCreateParamsBase'),
      );
      assert.deepEqual(compared.disagreements, []);
      assert.deepEqual(compared.onlyTheirs, []);
      assertMarkedExtensions(schema, compared.onlyOurs);
      assert.ok(compared.onlyOurs.includes('transcriptions.beam_size'));
      assert.ok(compared.onlyOurs.includes('transcriptions.num_speakers'));
    });

    it('translation request fields', () => {
      const schema =
        operation('/v1/audio/translations', 'post').requestBody?.content['multipart/form-data']?.schema ?? {};
      const compared = compareShapes(
        'translations',
        form('/v1/audio/translations'),
        sdk.interfaceShape(SDK_SOURCES.translations, 'TranslationCreateParams'),
      );
      assert.deepEqual(compared.disagreements, []);
      assert.deepEqual(compared.onlyTheirs, []);
      assertMarkedExtensions(schema, compared.onlyOurs);
      assert.ok(compared.onlyOurs.includes('translations.stream'), 'streamed translations are earshot’s');
    });

    it('answers: json, verbose_json (segments, words) and the stream events', () => {
      for (const [name, theirs] of [
        ['Transcription', 'Transcription'],
        ['TranscriptionVerbose', 'TranscriptionVerbose'],
        ['TranscriptionDiarized', 'TranscriptionDiarized'],
        ['TranscriptTextDeltaEvent', 'TranscriptionTextDeltaEvent'],
        ['TranscriptTextDoneEvent', 'TranscriptionTextDoneEvent'],
        ['TranscriptTextSegmentEvent', 'TranscriptionTextSegmentEvent'],
      ] as const) {
        const compared = compareShapes(name, component(name), sdk.interfaceShape(SDK_SOURCES.transcriptions, theirs));
        assert.deepEqual(
          compared.disagreements.filter((line) => !KNOWN_DIFFERENCES.includes(line)),
          [],
          name,
        );
        // What earshot adds to OpenAI's answers: verbose_json's task (OpenAI sends it too, untyped), the
        // words of a verbose_json stream's segment events, and the duration usage's seconds (above).
        assert.deepEqual(
          compared.onlyOurs,
          {
            TranscriptionVerbose: [`${name}.task`],
            TranscriptTextSegmentEvent: [`${name}.words`],
            TranscriptTextDoneEvent: [`${name}.usage.seconds`],
          }[name as string] ?? [],
          name,
        );
      }
    });
  });

  it('describes the answers the server builds: each fits its schema, and has no field the schema does not name', () => {
    const ajv = new Ajv2020({ strict: false });
    for (const [id, schema] of Object.entries(document.components.schemas))
      ajv.addSchema(schema, `#/components/schemas/${id}`);
    /** Validates `value` against the named schema, and checks its keys (and its segments' and words') are described. */
    function assertFits(name: string, value: unknown) {
      const validate = ajv.getSchema(`#/components/schemas/${name}`);
      assert.ok(validate, name);
      assert.ok(validate(value), `${name}: ${ajv.errorsText(validate.errors)}`);
      const described = (schema: JsonSchema | undefined, object: unknown, where: string) => {
        const properties = (schema?.properties ?? {}) as Record<string, JsonSchema>;
        for (const [key, inner] of Object.entries(object as Record<string, unknown>)) {
          assert.ok(properties[key], `${where}.${key} is described`);
          const items = properties[key]?.items as JsonSchema | undefined;
          if (Array.isArray(inner) && items?.properties)
            for (const item of inner) described(items, item, `${where}.${key}[]`);
        }
      };
      described(document.components.schemas[name], value, name);
    }
    const segment = {
      id: 1,
      seek: 0,
      start: 0,
      end: 2.5,
      text: ' Ask not.',
      tokens: [50364, 1029],
      temperature: 0,
      avg_logprob: -0.2,
      compression_ratio: 1.1,
      no_speech_prob: 0.01,
      words: [{ word: ' Ask', start: 0, end: 1, probability: 0.9 }],
      logprobs: [{ token: ' Ask', logprob: -0.1, bytes: [32, 65, 115, 107] }],
    };
    const transcript: Transcript = {
      task: 'transcribe',
      info: { language: 'en', language_probability: 0.99, duration: 2.5, duration_after_vad: 2.5 },
      segments: [segment],
    };
    const both = { granularities: new Set(['word', 'segment'] as const) };
    const event = (line: string): unknown => JSON.parse(line.slice('data: '.length));
    assertFits(
      'Transcription',
      JSON.parse(renderTranscript(transcript, 'json', { ...both, includeLogprobs: true }).body),
    );
    assertFits('TranscriptionVerbose', JSON.parse(renderTranscript(transcript, 'verbose_json', both).body));
    assertFits('TranscriptTextDeltaEvent', event(deltaEvent({ delta: 'Ask', logprobs: segment.logprobs })));
    // A diarized transcript: the speakers on its words split its segment in two.
    const diarized: Transcript = {
      ...transcript,
      segments: [
        {
          ...segment,
          speaker: 'A',
          words: [
            { word: ' Ask', start: 0, end: 1, probability: 0.9, speaker: 'A' },
            { word: ' not.', start: 1, end: 2.5, probability: 0.9, speaker: 'B' },
          ],
        },
      ],
    };
    assertFits('TranscriptionDiarized', JSON.parse(renderTranscript(diarized, 'diarized_json', both).body));
    for (const line of [
      ...new SegmentEvents({ speakers: false, words: true }).push(segment),
      ...new SegmentEvents({ speakers: true }).push(diarized.segments[0] ?? segment),
    ]) {
      assertFits('TranscriptTextSegmentEvent', event(line));
    }
    assertFits('TranscriptTextDoneEvent', event(doneEvent(transcript, true)));
    // A verbose_json stream's done event: the verbose_json answer, with the event's type.
    const { type, ...verbose } = event(verboseDoneEvent(transcript, both)) as Record<string, unknown>;
    assert.equal(type, 'transcript.text.done');
    assertFits('TranscriptionVerbose', verbose);
  });

  describe('the docs page', () => {
    it('is served from the package, with no file from elsewhere', async () => {
      const page = await stub.app.inject({ method: 'GET', url: '/docs/' });
      assert.equal(page.statusCode, 200);
      assert.match(String(page.headers['content-type']), /^text\/html/);
      const assets = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map(([, url]) => url ?? '');
      assert.ok(assets.length >= 4, page.body);
      for (const asset of assets) {
        assert.ok(!/^[a-z]+:|^\/\//i.test(asset), `${asset} is local`);
        const file = await stub.app.inject({ method: 'GET', url: new URL(asset, 'http://x/docs/').pathname });
        assert.equal(file.statusCode, 200, asset);
      }
      const initializer = await stub.app.inject({ method: 'GET', url: '/docs/static/swagger-initializer.js' });
      assert.ok(
        !/https?:\/\//.test(initializer.body.replace(/\/\/ .*$/gm, '')),
        'the page asks nothing of the network',
      );
    });

    it('needs no key (EARSHOT_PUBLIC_DOCS), unlike the API it describes', async () => {
      for (const url of ['/openapi.json', '/docs', '/docs/static/swagger-ui-bundle.js']) {
        assert.equal((await stub.app.inject({ method: 'GET', url })).statusCode, 200, url);
      }
      assert.equal((await stub.app.inject({ method: 'GET', url: '/v1/models' })).statusCode, 401);
    });

    it('takes a key when EARSHOT_PUBLIC_DOCS=false', async () => {
      const closed = await stubApp({ EARSHOT_PUBLIC_DOCS: 'false' }, { apiKeys: [KEY] });
      try {
        for (const url of ['/openapi.json', '/docs', '/docs/static/swagger-ui-bundle.js']) {
          assert.equal((await closed.app.inject({ method: 'GET', url })).statusCode, 401, url);
        }
        const authorized = await closed.app.inject({
          method: 'GET',
          url: '/openapi.json',
          headers: { authorization: `Bearer ${KEY}` },
        });
        assert.equal(authorized.statusCode, 200);
      } finally {
        await closed.dispose();
      }
    });
  });
});
