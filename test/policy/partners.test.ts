// Allow rules that federated partners' workloads match without the rule naming their trust
// domain: the sidecar warns about them when --federate is on (runtime/policies.ts).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { globLeavesTrustDomainOpen } from '../../src/policy/partners.ts';
import { loadSet, policy } from './helpers.ts';

it('a principal glob leaves the trust domain open when a wildcard can stand for it', () => {
  const open = ['spiffe://*/ns/billing/sa/api', 'spiffe://*', 'spiffe://prod-*/ns/x', '**', '*/**', 's*://*/x', 'spiffe:/**'];
  const closed = ['spiffe://example.org/ns/billing/**', 'spiffe://example.org/**', 'spiffe://partner.org/ns/*/sa/api', 'legacy.internal', 'boundary:*', '*.internal', 's*', 'x*'];
  assert.deepEqual(open.filter((g) => !globLeavesTrustDomainOpen(g)), [], 'all open');
  assert.deepEqual(closed.filter(globLeavesTrustDomainOpen), [], 'all closed');
});

it('lists the allow rules open to any trust domain, by policy and rule, and no deny rule', () => {
  const set = loadSet({
    'a.yaml': policy('orders', `- name: named
  action: allow
  from: [{ principals: ["spiffe://example.org/ns/billing/**"] }]
- name: any-domain
  action: allow
  from: [{ principals: ["spiffe://example.org/ns/shop/**"] }, { principals: ["spiffe://*/ns/ops/**"] }]
- name: no-from
  action: allow
  to: [{ paths: ["/healthz"] }]
- name: token-only
  action: allow
  from: [{ token: { roles: [Orders.Read] } }]
- name: deny-all-admin
  action: deny
  to: [{ paths: ["/admin/**"] }]
`),
  });
  assert.deepEqual(set.rulesOpenToAnyTrustDomain, ['orders/any-domain', 'orders/no-from', 'orders/token-only']);
});
