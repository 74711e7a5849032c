import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ajv } from 'ajv';
import { DOCUMENT_SCHEMAS } from '../../src/policy/document-schemas.ts';

// The schemas under JSON Schema's meta-schema, with the strict settings and vocabulary the
// validators are generated with (scripts/generate-validators.ts).
function metaChecker(): Ajv {
  const ajv = new Ajv({ strict: true, allErrors: true });
  ajv.addVocabulary(['hint']);
  return ajv;
}

test('every policy document schema is valid JSON Schema under the meta-schema', () => {
  const ajv = metaChecker();
  for (const [kind, schema] of Object.entries(DOCUMENT_SCHEMAS)) {
    assert.equal(ajv.validateSchema(schema), true, `${kind}: ${ajv.errorsText(ajv.errors)}`);
  }
});

test('the meta-schema check refuses a malformed schema (so the test above can fail)', () => {
  const ajv = metaChecker();
  assert.equal(ajv.validateSchema({ type: 'object', properties: { action: { type: 'strng' } } }), false);
});
