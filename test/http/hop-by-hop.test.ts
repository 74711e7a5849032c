import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectionTokens } from '../../src/http/hop-by-hop.ts';

test('a Connection header names extra hop-by-hop headers, lowercased; keep-alive and close alone name none', () => {
  assert.equal(connectionTokens(undefined), null);
  assert.equal(connectionTokens(''), null);
  for (const plain of ['keep-alive', 'Keep-Alive', 'close', 'CLOSE', ' close , keep-alive ']) assert.equal(connectionTokens(plain), null, plain);
  assert.deepEqual(connectionTokens('Upgrade'), new Set(['upgrade']));
  assert.deepEqual(connectionTokens('X-Hop'), new Set(['x-hop']));
  assert.deepEqual(connectionTokens('keep-alive, X-Hop,x-other'), new Set(['x-hop', 'x-other']));
});
