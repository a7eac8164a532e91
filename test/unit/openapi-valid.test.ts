// The API's description (/openapi.json) is valid OpenAPI 3.1, by the specification's own JSON schema
// (@seriousme/openapi-schema-validator ships the OpenAPI Initiative's schemas and checks with ajv).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Metrics } from '../../src/metrics.ts';
import { stubApp, type StubApp } from '../support/stub-app.ts';

describe('the OpenAPI document against the specification', () => {
  let stub: StubApp;

  before(async () => {
    stub = await stubApp({}, { metrics: new Metrics() });
  });

  after(async () => stub.dispose());

  it('is valid OpenAPI 3.1', async () => {
    const document = (await stub.app.inject({ method: 'GET', url: '/openapi.json' })).json<{ openapi: string }>();
    assert.equal(document.openapi, '3.1.0');
    const validator = new Validator();
    const result = await validator.validate(document);
    assert.deepEqual(result.errors ?? [], []);
    assert.equal(result.valid, true);
    assert.equal(validator.version, '3.1');
  });

  it('would say so if it were not', async () => {
    const document = (await stub.app.inject({ method: 'GET', url: '/openapi.json' })).json<{
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
    }>();
    const health = document.paths['/health']?.get;
    assert.ok(health);
    health.responses['200'] = { content: {} };
    const result = await new Validator().validate(document);
    assert.equal(result.valid, false, 'a response without its description is refused');
  });
});
