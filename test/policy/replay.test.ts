// Replaying one audit record against a policy set (policy/replay.ts): the cases a real sidecar
// cannot easily produce in a test, an allow by a rule that requires a token among them.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { replayRecord, type RecordedDecision } from '../../src/policy/replay.ts';
import { loadSet, policy, boundary } from './helpers.ts';

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

it('a record whose fields the sidecar never writes so is not confirmed: tls missing or odd, decision in another spelling, a lower-case method', () => {
  const withBoundary = loadSet({
    'a.yaml': policy('loopback', `- name: loopback-reads
  action: allow
  from: [{ principals: ["boundary:loopback"] }]
  to: [{ methods: [GET] }]
`),
    'b.yaml': boundary('loopback', '{ cidrs: ["127.0.0.0/8"] }'),
  });
  // A plaintext request from outside every boundary, its record claiming the boundary's principal.
  const outside = (over: Partial<RecordedDecision>): RecordedDecision => ({
    direction: 'inbound', event: 'request', requestId: 'r2', peer: { principal: 'boundary:loopback', address: '8.8.8.8' },
    method: 'GET', path: '/x', decision: 'allow', code: null, policy: 'loopback', rule: 'loopback-reads', policyDigest: withBoundary.digest, tls: 'plaintext', ...over,
  });
  assert.equal(replayRecord(withBoundary, outside({})).kind, 'mismatch');
  const { tls: _, ...noTls } = outside({});
  assert.equal(replayRecord(withBoundary, noTls).kind, 'unreadable');
  assert.equal(replayRecord(withBoundary, outside({ tls: 'PLAINTEXT' })).kind, 'unreadable');
  assert.equal(replayRecord(set, record({ method: 'GET', path: '/orders', rule: 'ops-reads', decision: 'ALLOW' })).kind, 'unreadable');
  assert.deepEqual(replayRecord(set, record({ method: 'get', path: '/orders', rule: 'ops-reads' })),
    { kind: 'mismatch', recorded: 'allow by orders/ops-reads', replayed: 'deny bad_request' });
  assert.equal(replayRecord(set, record({ method: 'GET', path: '/orders', rule: 'ops-reads' })).kind, 'confirmed');
});

it('an allow by a token rule that cannot match the recorded caller, method or path is a mismatch, whatever the set says without a token', () => {
  const two = loadSet({
    'a.yaml': policy('ops', `- name: reports-with-token
  action: allow
  from: [{ principals: ["spiffe://example.org/ns/ops/**"], token: { roles: [Reports] } }]
  to: [{ paths: ["/reports/**"] }]
- name: admin-with-token
  action: allow
  from: [{ principals: ["spiffe://example.org/ns/ops/**"], token: { roles: [Admin], jit: { maxAge: 5m } } }]
  to: [{ paths: ["/admin/**"] }]
- name: anyone-health
  action: allow
  to: [{ paths: ["/health"] }]
`),
  });
  const r = (path: string, principal: string, rule: string): RecordedDecision => ({
    direction: 'inbound', event: 'request', requestId: 'r3', peer: { principal, address: '10.0.0.1' },
    method: 'GET', path, decision: 'allow', code: null, policy: 'ops', rule, policyDigest: two.digest, tls: 'mtls',
  });
  const ops = 'spiffe://example.org/ns/ops/sa/x';
  // Asked without a token the set answers 401 naming another token rule, or allows by a tokenless rule.
  assert.deepEqual(replayRecord(two, r('/reports/q', ops, 'admin-with-token')),
    { kind: 'mismatch', recorded: 'allow by ops/admin-with-token', replayed: 'deny invalid_token (ops/reports-with-token)' });
  assert.equal(replayRecord(two, r('/health', 'spiffe://other.org/x', 'admin-with-token')).kind, 'mismatch');
  assert.equal(replayRecord(two, r('/admin/x', 'spiffe://example.org/ns/shop/sa/y', 'admin-with-token')).kind, 'mismatch');
  // The rule that can match, with its roles and a fresh jit token, is consistent.
  assert.equal(replayRecord(two, r('/admin/x', ops, 'admin-with-token')).kind, 'token');
  assert.equal(replayRecord(two, r('/reports/q', ops, 'reports-with-token')).kind, 'token');
});
