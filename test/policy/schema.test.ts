import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DOCUMENT_SCHEMAS } from '../../src/policy/document-schemas.ts';
import { policyAjv } from '../../scripts/generate-validators.ts';

// The schemas under JSON Schema's meta-schema, checked by the ajv the validators are generated
// with (its strict settings and the `hint` vocabulary).

test('every policy document schema is valid JSON Schema under the meta-schema', () => {
  const ajv = policyAjv();
  for (const [kind, schema] of Object.entries(DOCUMENT_SCHEMAS)) {
    assert.equal(ajv.validateSchema(schema), true, `${kind}: ${ajv.errorsText(ajv.errors)}`);
  }
});

test('the meta-schema check refuses a malformed schema (so the test above can fail)', () => {
  const ajv = policyAjv();
  assert.equal(ajv.validateSchema({ type: 'object', properties: { action: { type: 'strng' } } }), false);
});
