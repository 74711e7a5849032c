import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { createCA, issueCertificate, type PemPair } from '../../src/certs/pki.ts';
import { startIssuer, type RunningIssuer } from '../../src/issuer/server.ts';
import { clientAssertion, postToken, verifyAccessToken } from './helpers.ts';

let dir: string;
let issuer: RunningIssuer;
let billing: PemPair;
let impostor: PemPair;

const CLIENTS = `
clients:
  billing:
    auth: private_key_jwt
    spiffeId: spiffe://example.org/ns/billing/sa/billing
    certificate: billing.crt
    audiences:
      api://payments:
        scopes: [payments.charge, payments.refund]
        roles: [Payments.Writer]
      api://orders: {}
  reporting:
    auth: client_secret_basic
    secretFile: reporting.secret
    audiences:
      api://orders:
        scopes: [orders.read]
        roles: [Orders.Reader]
`;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'authproxy-issuer-'));
  const ca = await createCA({ trustDomain: 'example.org' });
  billing = await issueCertificate(ca, { spiffeId: 'spiffe://example.org/ns/billing/sa/billing' });
  impostor = await issueCertificate(ca, { spiffeId: 'spiffe://example.org/ns/billing/sa/billing' });
  await writeFile(join(dir, 'billing.crt'), billing.certPem);
  await writeFile(join(dir, 'reporting.secret'), 'correct-horse-battery-staple\n');
  await writeFile(join(dir, 'clients.yaml'), CLIENTS);
  issuer = await startIssuer({ listen: '127.0.0.1:0', clients: join(dir, 'clients.yaml'), quiet: true });
});

after(async () => {
  await issuer?.close();
  await rm(dir, { recursive: true, force: true });
});

const billingAuth = (): Promise<Record<string, string>> => clientAssertion('billing', billing.keyPem, issuer.url);

test('both discovery documents describe the issuer, its token endpoint, JWKS and client auth methods', async () => {
  for (const path of ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server']) {
    const res = await request(`${issuer.url}${path}`);
    assert.equal(res.statusCode, 200, path);
    const meta = await res.body.json() as Record<string, unknown>;
    assert.equal(meta.issuer, issuer.url);
    assert.equal(meta.token_endpoint, issuer.tokenEndpoint);
    assert.equal(meta.jwks_uri, issuer.jwksUri);
    assert.ok((meta.grant_types_supported as string[]).includes('client_credentials'));
    assert.deepEqual(new Set(meta.token_endpoint_auth_methods_supported as string[]), new Set(['private_key_jwt', 'client_secret_basic']));
  }
  const jwks = await (await request(issuer.jwksUri)).body.json() as { keys: Record<string, unknown>[] };
  assert.equal(jwks.keys.length, 1);
  assert.equal(jwks.keys[0]!.kty, 'EC');
  assert.equal(jwks.keys[0]!.d, undefined, 'the JWKS must not publish the private key');
});

test('a private_key_jwt client signing with its workload key gets a JWT for the resource with its scopes and roles', async () => {
  const res = await postToken(issuer.tokenEndpoint, { ...await billingAuth(), resource: 'api://payments', scope: 'payments.charge' });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.token_type, 'Bearer');
  assert.equal(res.body.scope, 'payments.charge');
  const claims = await verifyAccessToken(res.body.access_token as string, issuer.url, 'api://payments');
  assert.equal(claims.aud, 'api://payments');
  assert.equal(claims.client_id, 'billing');
  assert.equal(claims.sub, 'billing');
  assert.equal(claims.scope, 'payments.charge');
  assert.deepEqual(claims.roles, ['Payments.Writer']);
  assert.equal(claims.exp! - claims.iat!, 300);
});

test('without a scope parameter the token carries every scope the client has for that audience', async () => {
  const res = await postToken(issuer.tokenEndpoint, { ...await billingAuth(), resource: 'api://payments' });
  const claims = await verifyAccessToken(res.body.access_token as string, issuer.url, 'api://payments');
  assert.equal(claims.scope, 'payments.charge payments.refund');
});

test('a scope the client is not allowed for the audience is left out of the token', async () => {
  const res = await postToken(issuer.tokenEndpoint, { ...await billingAuth(), resource: 'api://payments', scope: 'payments.charge orders.delete' });
  const claims = await verifyAccessToken(res.body.access_token as string, issuer.url, 'api://payments');
  assert.equal(claims.scope, 'payments.charge');
});

test('audience is accepted as an alias of resource', async () => {
  const res = await postToken(issuer.tokenEndpoint, { ...await billingAuth(), audience: 'api://orders' });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const claims = await verifyAccessToken(res.body.access_token as string, issuer.url, 'api://orders');
  assert.equal(claims.roles, undefined, 'no roles are configured for billing on api://orders');
});

test('an audience the client is not configured for is refused with invalid_target', async () => {
  const res = await postToken(issuer.tokenEndpoint, { ...await billingAuth(), resource: 'api://ledger' });
  assert.equal(res.status, 400);
  assert.equal(res.body.error, 'invalid_target');
});

test('a client with several audiences must name one', async () => {
  const res = await postToken(issuer.tokenEndpoint, await billingAuth());
  assert.equal(res.body.error, 'invalid_target');
});

test('an assertion signed with another key than the client certificate\'s is refused', async () => {
  const res = await postToken(issuer.tokenEndpoint, { ...await clientAssertion('billing', impostor.keyPem, issuer.url), resource: 'api://payments' });
  assert.equal(res.status, 401);
  assert.equal(res.body.error, 'invalid_client');
  assert.equal(res.body.access_token, undefined);
});

test('a replayed client assertion is refused', async () => {
  const auth = await billingAuth();
  assert.equal((await postToken(issuer.tokenEndpoint, { ...auth, resource: 'api://payments' })).status, 200);
  const again = await postToken(issuer.tokenEndpoint, { ...auth, resource: 'api://payments' });
  assert.equal(again.body.error, 'invalid_client');
});

test('a client_secret_basic client with the secret from its file gets its only audience by default', async () => {
  const res = await postToken(issuer.tokenEndpoint, {}, { basic: ['reporting', 'correct-horse-battery-staple'] });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const claims = await verifyAccessToken(res.body.access_token as string, issuer.url, 'api://orders');
  assert.equal(claims.scope, 'orders.read');
  assert.deepEqual(claims.roles, ['Orders.Reader']);
});

test('a wrong client secret is refused without saying why', async () => {
  const res = await postToken(issuer.tokenEndpoint, {}, { basic: ['reporting', 'wrong'] });
  assert.equal(res.status, 401);
  assert.deepEqual(res.body, { error: 'invalid_client', error_description: 'client authentication failed' });
});

test('a JIT approval adds its role and caps the token lifetime at the approval\'s remaining time', async () => {
  const approval = issuer.approve({ client: 'billing', role: 'Payments.Admin', forMs: 90_000, audience: 'api://payments' });
  const res = await postToken(issuer.tokenEndpoint, { ...await billingAuth(), resource: 'api://payments', approval: approval.id });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const claims = await verifyAccessToken(res.body.access_token as string, issuer.url, 'api://payments');
  assert.deepEqual(claims.roles, ['Payments.Writer', 'Payments.Admin']);
  assert.equal(claims.approval, approval.id);
  assert.ok(Math.abs(claims.iat! - Date.now() / 1000) <= 2, 'iat is now');
  assert.ok(claims.exp! - claims.iat! <= 90 && claims.exp! - claims.iat! >= 85, `lifetime ${claims.exp! - claims.iat!}s`);
  assert.ok(claims.exp! * 1000 <= approval.expiresAt.getTime(), 'the token ends no later than the approval');
});

test('an approval for one audience is refused for another', async () => {
  const approval = issuer.approve({ client: 'billing', role: 'Orders.Admin', forMs: 60_000, audience: 'api://orders' });
  const res = await postToken(issuer.tokenEndpoint, { ...await billingAuth(), resource: 'api://payments', approval: approval.id });
  assert.equal(res.status, 400);
  assert.equal(res.body.error, 'invalid_grant');
});

test('approvals are refused to callers that are not on loopback', async (t) => {
  const external = Object.values(networkInterfaces()).flat().find((i) => i && !i.internal && i.family === 'IPv4');
  if (!external) { t.skip('this machine has no non-loopback IPv4 address'); return; }
  const wide = await startIssuer({ listen: '0.0.0.0:0', clients: join(dir, 'clients.yaml'), quiet: true });
  try {
    const port = new URL(wide.url).port;
    const body = JSON.stringify({ client: 'billing', role: 'Orders.Admin', forMs: 60_000 });
    const post = (host: string) => request(`http://${host}:${port}/admin/approvals`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const far = await post(external.address);
    assert.equal(far.statusCode, 403);
    assert.equal((await far.body.json() as { error: string }).error, 'forbidden');
    const near = await post('127.0.0.1');
    assert.equal(near.statusCode, 201);
    await near.body.dump();
  } finally { await wide.close(); }
});

test('approvals are refused to requests that carry an Origin header or are not JSON', async () => {
  const body = JSON.stringify({ client: 'billing', role: 'Orders.Admin', forMs: 60_000 });
  const fromBrowser = await request(issuer.approvalsEndpoint, { method: 'POST', headers: { 'content-type': 'application/json', origin: 'https://evil.example' }, body });
  assert.equal(fromBrowser.statusCode, 403);
  await fromBrowser.body.dump();
  const asForm = await request(issuer.approvalsEndpoint, { method: 'POST', headers: { 'content-type': 'text/plain' }, body });
  assert.equal(asForm.statusCode, 415);
  await asForm.body.dump();
});

test('padTokensTo makes every access token that many characters, give or take two', async () => {
  for (const size of [4096, 32 * 1024]) {
    const padded = await startIssuer({ listen: '127.0.0.1:0', clients: join(dir, 'clients.yaml'), padTokensTo: size, quiet: true });
    try {
      const res = await postToken(padded.tokenEndpoint, { ...await clientAssertion('billing', billing.keyPem, padded.url), resource: 'api://payments' });
      const token = res.body.access_token as string;
      assert.ok(token.length <= size && token.length >= size - 2, `token is ${token.length} characters, wanted ${size}`);
      const claims = await verifyAccessToken(token, padded.url, 'api://payments');
      assert.deepEqual(claims.roles, ['Payments.Writer'], 'padding leaves the real claims intact');
    } finally { await padded.close(); }
  }
});

test('a tls_client_auth client is refused at start-up when the issuer does not serve HTTPS', async () => {
  await assert.rejects(startIssuer({ listen: '127.0.0.1:0', quiet: true, clients: { clients: {
    orders: { auth: 'tls_client_auth', spiffeId: 'spiffe://example.org/ns/orders/sa/orders', audiences: { 'api://payments': {} } },
  } } }), /tls_client_auth, which needs the issuer to serve HTTPS/);
});

test('a plain-HTTP issuer URL on a non-loopback host is refused', async () => {
  await assert.rejects(startIssuer({ listen: '127.0.0.1:0', issuerUrl: 'http://issuer.example.com', quiet: true }), /loopback/);
});
