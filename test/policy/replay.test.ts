// Replaying one audit record against a policy set (policy/replay.ts): the cases a real sidecar
// cannot easily produce in a test, an allow by a rule that requires a token among them.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { replayRecord, type RecordedDecision } from '../../src/policy/replay.ts';
import { loadSet, policy } from './helpers.ts';

const set = loadSet({
  'a.yaml': policy('orders', `- name: admins-with-token
  action: allow
  from: [{ principals: ["spiffe://example.org/ns/ops/**"], token: { roles: [Orders.Admin] } }]
  to: [{ paths: ["/admin/**"] }]
- name: ops-reads
  action: allow
  from: [{ principals: ["spiffe://example.org/ns/ops/**"] }]
  to: [{ methods: [GET] }]
- name: no-deletes
  action: deny
  to: [{ methods: [DELETE] }]
`),
});

const record = (over: Partial<RecordedDecision>): RecordedDecision => ({
  direction: 'inbound', event: 'request', requestId: 'r1', peer: { principal: 'spiffe://example.org/ns/ops/sa/oncall', address: '10.0.0.1' },
  method: 'POST', path: '/admin/users', decision: 'allow', code: null, policy: 'orders', rule: 'admins-with-token', policyDigest: set.digest, tls: 'mtls', ...over,
});

it('an allow by a rule that requires a token is consistent, not confirmed: the log carries no claims', () => {
  assert.equal(replayRecord(set, record({})).kind, 'token');
  // Asked without the token, a GET is allowed by the tokenless rule: still consistent with an allow by the token rule before it.
  assert.equal(replayRecord(set, record({ method: 'GET' })).kind, 'token');
});

it('a token never turns a deny rule\'s refusal into an allow: such a record is a mismatch', () => {
  const r = replayRecord(set, record({ method: 'DELETE' }));
  assert.deepEqual(r, { kind: 'mismatch', recorded: 'allow by orders/admins-with-token', replayed: 'deny forbidden (orders/no-deletes)' });
});

it('a 401 naming the token rule is confirmed as recorded', () => {
  assert.equal(replayRecord(set, record({ decision: 'deny', code: 'invalid_token' })).kind, 'confirmed');
});

it('an allow by a rule that does not exist, or needs no token but is not the one that decides, is a mismatch', () => {
  assert.equal(replayRecord(set, record({ rule: 'made-up' })).kind, 'mismatch');
  assert.equal(replayRecord(set, record({ rule: 'ops-reads' })).kind, 'mismatch');
});
