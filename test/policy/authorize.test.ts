import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { JIT_CLOCK_SKEW_SECONDS } from '../../src/policy/authorize.ts';
import { normalizeTarget } from '../../src/policy/normalize.ts';
import { emptyPolicySet, type AuthzRequest, type PolicySet, type TokenClaims } from '../../src/policy/types.ts';
import { boundary, loadSet, policy, route } from './helpers.ts';

const BILLING = 'spiffe://example.org/ns/billing/sa/api';
const OPS = 'spiffe://example.org/ns/ops/sa/oncall';
const SHOP = 'spiffe://example.org/ns/shop/sa/web';
const NOW = 1_800_000_000;

async function examples(): Promise<PolicySet> {
  return loadSet({ 'orders.yaml': await readFile('policies/orders.yaml', 'utf8') });
}

function req(principal: string, method: string, target: string, token?: TokenClaims, nowSeconds = NOW): AuthzRequest {
  return { principal, method, matchPath: normalizeTarget(target).matchPath, token, nowSeconds };
}

const ADMIN_TOKEN: TokenClaims = { roles: ['Orders.Admin'], iat: NOW - 60, exp: NOW + 600 };

describe('authorization decisions', () => {
  it('allows a request an allow rule matches, naming the policy and rule', async () => {
    const set = await examples();
    const d = set.authorize(req(BILLING, 'GET', '/orders/42'));
    assert.deepEqual(d, {
      allow: true, code: null, policy: 'orders', rule: 'billing-reads-orders',
      reason: 'allowed by rule billing-reads-orders of policy orders', policyDigest: set.digest,
    });
    assert.equal(set.authorize(req(BILLING, 'GET', '/orders')).allow, true);
  });

  it('denies by default when policies are loaded and no allow rule matches, with no rule named', async () => {
    const set = await examples();
    for (const r of [req(BILLING, 'POST', '/orders'), req(SHOP, 'GET', '/orders'), req(BILLING, 'GET', '/orders/1/items'), req(BILLING, 'GET', '/ORDERS')]) {
      const d = set.authorize(r);
      assert.deepEqual({ allow: d.allow, code: d.code, policy: d.policy, rule: d.rule }, { allow: false, code: 'forbidden', policy: null, rule: null }, JSON.stringify(r));
      assert.match(d.reason, /no allow rule matches/);
    }
  });

  it('matches methods exactly: an allow for GET does not allow HEAD or a lowercase get', async () => {
    const set = await examples();
    assert.equal(set.authorize(req(BILLING, 'HEAD', '/orders')).allow, false);
    assert.equal(set.authorize(req(BILLING, 'get', '/orders')).allow, false);
  });

  it('lets a matching deny win over any allow, whichever file or order they come in', () => {
    const allow = policy('a-allow', '- name: billing-everything\n  action: allow\n  from: [{ principals: ["spiffe://example.org/ns/billing/**"] }]');
    const deny = policy('z-deny', '- name: nobody-admin\n  action: deny\n  to: [{ paths: ["/admin/**"] }]');
    const orders: Record<string, string>[] = [{ 'a.yaml': allow, 'b.yaml': deny }, { 'a.yaml': deny, 'b.yaml': allow }, { 'a.yaml': `${allow}---\n${deny}` }];
    for (const files of orders) {
      const set = loadSet(files);
      for (const target of ['/admin', '/admin/users', '/admin;x=y', '/admin/', '/admin/.', '//admin', '/%61dmin', '/orders/%2e%2e/admin', '/./admin']) {
        const d = set.authorize(req(BILLING, 'GET', target));
        assert.deepEqual([d.allow, d.code, d.policy, d.rule], [false, 'forbidden', 'z-deny', 'nobody-admin'], target);
        assert.equal(d.reason, 'denied by rule nobody-admin of policy z-deny');
      }
      assert.equal(set.authorize(req(BILLING, 'GET', '/orders')).rule, 'billing-everything');
      assert.equal(set.authorize(req(BILLING, 'GET', '/administrator')).allow, true, '/admin/** does not cover /administrator');
    }
  });

  it('lets a deny win over a rule whose token requirement failed', () => {
    const set = loadSet({ 'a.yaml': policy('p', `- name: jit
  action: allow
  from: [{ token: { roles: [Admin] } }]
- name: never-delete
  action: deny
  to: [{ methods: [DELETE] }]`) });
    assert.equal(set.authorize(req(OPS, 'DELETE', '/x')).code, 'forbidden');
    assert.equal(set.authorize(req(OPS, 'GET', '/x')).code, 'invalid_token');
  });

  it('allows everyone when no AuthorizationPolicy is loaded, saying so in the reason', () => {
    const onlyRoutes = loadSet({ 'r.yaml': `${route('r', '{ hosts: [a.svc.cluster.local], tls: none }')}---\n${boundary('cluster', '{ hosts: ["*.svc.cluster.local"] }')}` });
    for (const set of [onlyRoutes, emptyPolicySet()]) {
      const d = set.authorize(req('boundary:cluster', 'DELETE', '/admin'));
      assert.deepEqual([d.allow, d.code, d.policy, d.rule, d.policyDigest], [true, null, null, null, set.digest]);
      assert.match(d.reason, /no AuthorizationPolicy is loaded/);
      assert.equal(set.requiresToken, false);
    }
  });

  it('answers invalid_token when an allow rule matched except for its missing token', async () => {
    const set = await examples();
    const d = set.authorize(req(OPS, 'POST', '/admin/reindex'));
    assert.deepEqual([d.allow, d.code, d.policy, d.rule], [false, 'invalid_token', 'orders', 'ops-admin-just-in-time']);
    assert.equal(d.reason, 'rule ops-admin-just-in-time of policy orders requires a valid bearer token');
    assert.equal(set.authorize(req(OPS, 'POST', '/admin/reindex', ADMIN_TOKEN)).rule, 'ops-admin-just-in-time');
    assert.equal(set.authorize(req(OPS, 'POST', '/admin/reindex', ADMIN_TOKEN)).allow, true);
  });

  it('answers forbidden, not invalid_token, when the token rule would not match the caller or path anyway', async () => {
    const set = await examples();
    assert.equal(set.authorize(req(BILLING, 'GET', '/admin')).code, 'forbidden');
    assert.equal(set.authorize(req(OPS, 'GET', '/orders')).code, 'forbidden');
  });

  it('prefers another matching allow over a failed token requirement', () => {
    const set = loadSet({ 'a.yaml': policy('p', `- name: admins
  action: allow
  from: [{ principals: ["**"], token: { roles: [Admin] } }]
- name: readers
  action: allow
  to: [{ methods: [GET] }]`) });
    assert.equal(set.authorize(req(SHOP, 'GET', '/x')).rule, 'readers');
    assert.equal(set.authorize(req(SHOP, 'POST', '/x')).code, 'invalid_token');
  });

  it('requires every listed role, not just one of them', () => {
    const set = loadSet({ 'a.yaml': policy('p', '- name: r\n  action: allow\n  from: [{ token: { roles: [Orders.Admin, Orders.Write] } }]') });
    const with_ = (roles: string[]) => set.authorize(req(OPS, 'GET', '/', { roles })).allow;
    assert.equal(with_(['Orders.Admin', 'Orders.Write']), true);
    assert.equal(with_(['Orders.Write', 'Other', 'Orders.Admin']), true);
    assert.equal(with_(['Orders.Admin']), false);
    assert.equal(with_([]), false);
    const d = set.authorize(req(OPS, 'GET', '/', { roles: ['Orders.Admin'] }));
    assert.equal(d.code, 'invalid_token');
    assert.equal(d.reason, 'rule r of policy p requires a token carrying roles Orders.Admin, Orders.Write');
  });

  it('accepts an empty token block as "any valid token"', () => {
    const set = loadSet({ 'a.yaml': policy('p', '- name: r\n  action: allow\n  from: [{ token: {} }]') });
    assert.equal(set.authorize(req(OPS, 'GET', '/', { roles: [] })).allow, true);
    assert.equal(set.authorize(req(OPS, 'GET', '/')).code, 'invalid_token');
  });

  describe('just-in-time tokens (jit.maxAge: 15m)', () => {
    const at = (token: TokenClaims) => async () => (await examples()).authorize(req(OPS, 'GET', '/admin', token));

    it('allows a token issued within maxAge that lives at most maxAge, up to the exact limit', async () => {
      for (const token of [ADMIN_TOKEN, { roles: ['Orders.Admin'], iat: NOW - 900, exp: NOW }, { roles: ['Orders.Admin'], iat: NOW, exp: NOW + 900 }]) {
        assert.equal((await at(token)()).allow, true, JSON.stringify(token));
      }
    });

    it('refuses a token issued more than maxAge ago', async () => {
      const d = await at({ roles: ['Orders.Admin'], iat: NOW - 901, exp: NOW + 1 })();
      assert.deepEqual([d.allow, d.code, d.rule], [false, 'invalid_token', 'ops-admin-just-in-time']);
      assert.equal(d.reason, 'rule ops-admin-just-in-time of policy orders requires a token issued within the last 15m');
    });

    it('refuses a token that lives longer than maxAge, even if freshly issued', async () => {
      const d = await at({ roles: ['Orders.Admin'], iat: NOW - 10, exp: NOW + 900 })();
      assert.equal(d.code, 'invalid_token');
      assert.equal(d.reason, 'rule ops-admin-just-in-time of policy orders requires a token that lives at most 15m');
    });

    it('refuses a token without iat or exp, and one issued in the future beyond the clock-skew allowance', async () => {
      assert.equal((await at({ roles: ['Orders.Admin'], exp: NOW + 60 })()).code, 'invalid_token');
      assert.equal((await at({ roles: ['Orders.Admin'], iat: NOW - 60 })()).code, 'invalid_token');
      assert.equal((await at({ roles: ['Orders.Admin'], iat: NOW + JIT_CLOCK_SKEW_SECONDS + 1, exp: NOW + 120 })()).code, 'invalid_token');
      assert.equal((await at({ roles: ['Orders.Admin'], iat: NOW + JIT_CLOCK_SKEW_SECONDS, exp: NOW + 120 })()).allow, true);
    });

    it('still requires the roles', async () => {
      assert.match((await at({ roles: ['Orders.Reader'], iat: NOW, exp: NOW + 60 })()).reason, /requires a token carrying role Orders\.Admin$/);
    });
  });

  it('never puts token contents into a reason', () => {
    const set = loadSet({ 'a.yaml': policy('p', '- name: r\n  action: allow\n  from: [{ token: { roles: [Admin], jit: { maxAge: 1m } } }]') });
    const marker = 'eyJhbGciOiJFUzI1NiJ9.secret-claims';
    for (const token of [{ roles: [marker] }, { roles: ['Admin', marker], iat: 1, exp: 2 }, { roles: ['Admin', marker], iat: NOW, exp: NOW + 3600 }]) {
      const d = set.authorize(req(OPS, 'GET', '/', token));
      assert.equal(d.code, 'invalid_token');
      assert.ok(!JSON.stringify(d).includes(marker));
      assert.ok(!JSON.stringify(d).includes(String(NOW + 3600)));
    }
  });

  it('matches boundary:<name> principals like any other principal', () => {
    const set = loadSet({ 'a.yaml': policy('p', '- name: in-cluster-health\n  action: allow\n  from: [{ principals: ["boundary:cluster"] }]\n  to: [{ paths: ["/healthz"] }]') });
    assert.equal(set.authorize(req('boundary:cluster', 'GET', '/healthz')).allow, true);
    assert.equal(set.authorize(req('boundary:other', 'GET', '/healthz')).allow, false);
    assert.equal(set.authorize(req('boundary:cluster', 'GET', '/orders')).allow, false);
  });

  it('treats from and to as lists where any entry may match, and absent ones as matching anything', () => {
    const set = loadSet({ 'a.yaml': policy('p', `- name: two-callers-two-shapes
  action: allow
  from: [{ principals: ["${BILLING}"] }, { principals: ["spiffe://example.org/ns/shop/**"] }]
  to: [{ methods: [GET], paths: ["/orders/*"] }, { methods: [POST], paths: ["/carts"] }]
- name: anyone-health
  action: allow
  to: [{ paths: ["/healthz"] }]
- name: ops-anything
  action: allow
  from: [{ principals: ["${OPS}"] }]`) });
    assert.equal(set.authorize(req(SHOP, 'GET', '/orders/1')).allow, true);
    assert.equal(set.authorize(req(BILLING, 'POST', '/carts')).allow, true);
    assert.equal(set.authorize(req(BILLING, 'POST', '/orders/1')).allow, false);
    assert.equal(set.authorize(req('anything at all', 'PATCH', '/healthz')).rule, 'anyone-health');
    assert.equal(set.authorize(req(OPS, 'DELETE', '/x/y/z')).rule, 'ops-anything');
    assert.equal(set.requiresToken, false);
  });

  it('reports requiresToken only when some rule asks for a token', async () => {
    assert.equal((await examples()).requiresToken, true);
    assert.equal(loadSet({ 'a.yaml': policy('p', '- name: r\n  action: allow') }).requiresToken, false);
  });

  it('returns precomputed, frozen decisions', async () => {
    const set = await examples();
    const a = set.authorize(req(BILLING, 'GET', '/orders/1'));
    const b = set.authorize(req(BILLING, 'GET', '/orders/2'));
    assert.equal(a, b);
    assert.ok(Object.isFrozen(a));
    assert.ok(Object.isFrozen(set.authorize(req(SHOP, 'GET', '/'))));
  });
});
