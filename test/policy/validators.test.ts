import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { validatorsSource, VALIDATORS_FILE } from '../../scripts/generate-validators.ts';
import { DOCUMENT_SCHEMAS } from '../../src/policy/document-schemas.ts';

// The sidecar runs validators compiled ahead of time; a schema edited without `npm run
// generate:validators` would leave it validating against the old schema.
test('the committed policy validators are what ajv generates from the current schemas', async () => {
  assert.equal(await readFile(VALIDATORS_FILE, 'utf8'), validatorsSource(), 'stale: run `npm run generate:validators`');
});

test('the generated source follows a schema change (so the test above can fail)', () => {
  const before = validatorsSource();
  const spec = (DOCUMENT_SCHEMAS.TrustBoundary as { properties: { spec: { minProperties: number } } }).properties.spec;
  spec.minProperties = 2;
  try { assert.notEqual(validatorsSource(), before); } finally { spec.minProperties = 1; }
});
