// The inbound verifier against the real dev issuer's JWKS: the claims it hands to policy and app,
// roles from a configurable claim, and the settings that guard it (algorithm allow-list, URLs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { makePki, type TestPki } from '../support/pki.ts';
import { startIssuer, type RunningIssuer } from '../../src/issuer/server.ts';
import { loadTlsMaterial, type TlsMaterial } from '../../src/identity/material.ts';
import { IssuerHttp } from '../../src/tokens/issuer-http.ts';
import { IssuerMetadata } from '../../src/tokens/discovery.ts';
import { TokenVerifier } from '../../src/tokens/verify.ts';
import { rolesFrom, claimsHeader } from '../../src/tokens/claims.ts';
import { buildConfig } from '../../src/config/config.ts';
import { ConfigError } from '../../src/errors.ts';
import { clientAssertion, postToken } from '../issuer/helpers.ts';
import { readFile } from 'node:fs/promises';

let pki: TestPki; let tls: TlsMaterial; let http: IssuerHttp; let issuer: RunningIssuer;

before(async () => {
  pki = await makePki();
  tls = await loadTlsMaterial({ cert: pki.server.cert, key: pki.server.key, ca: [pki.ca] });
  issuer = await startIssuer({
    listen: '127.0.0.1:0', quiet: true, padTokensTo: 4096,
    clients: { clients: { orders: { auth: 'private_key_jwt', certificate: pki.server.cert, audiences: { 'api://payments': { scopes: ['pay.charge', 'pay.refund'], roles: ['Payments.Writer'] } } } } },
  });
  http = new IssuerHttp(() => tls);
});
after(async () => { await http?.close(); await issuer?.close(); await pki?.cleanup(); });

const verifier = (rolesClaim = 'roles'): TokenVerifier => new TokenVerifier({
  metadata: new IssuerMetadata(issuer.url, { tokenEndpoint: null, jwksUri: null }, http), http,
  audience: () => 'api://payments', algorithms: ['ES256'], clockSkewSeconds: 5, rolesClaim,
});
const token = async (): Promise<string> => {
  const r = await postToken(issuer.tokenEndpoint, { ...await clientAssertion('orders', await readFile(pki.server.key, 'utf8'), issuer.url), resource: 'api://payments' });
  return r.body.access_token as string;
};

test('a valid token yields roles, iat and exp for policy, and compact standard claims for the app', async () => {
  const v = await verifier().verify(await token());
  assert.ok(v.ok);
  assert.deepEqual(v.token.claims.roles, ['Payments.Writer']);
  assert.equal(v.token.claims.exp! - v.token.claims.iat!, 300);
  const header = JSON.parse(v.token.header) as Record<string, unknown>;
  assert.deepEqual(Object.keys(header).sort(), ['aud', 'client_id', 'exp', 'iat', 'iss', 'jti', 'roles', 'scope', 'sub']);
  assert.ok(v.token.header.length < 600, 'the 4 KB padding never reaches the app');
});

test('roles can come from a space-separated scope claim instead', async () => {
  const v = await verifier('scope').verify(await token());
  assert.ok(v.ok);
  assert.deepEqual(v.token.claims.roles, ['pay.charge', 'pay.refund']);
  assert.deepEqual(rolesFrom(['a', 3, '', 'b']), ['a', 'b']);
  assert.deepEqual(rolesFrom(undefined), []);
});

test('the claims header escapes anything that is not printable ASCII', () => {
  const h = claimsHeader({ sub: 'bob\r\nx-evil: 1', iss: 'é' }, ['r']);
  assert.ok(/^[\x20-\x7e]+$/.test(h), h);
  assert.deepEqual(JSON.parse(h), { iss: 'é', sub: 'bob\r\nx-evil: 1', roles: ['r'] });
});

test('an unreachable JWKS makes every token a refusal with the reason, never an acceptance', async () => {
  const v = new TokenVerifier({
    metadata: new IssuerMetadata('http://127.0.0.1:1', { tokenEndpoint: null, jwksUri: null }, http), http,
    audience: () => 'api://payments', algorithms: ['ES256'], clockSkewSeconds: 5, rolesClaim: 'roles',
  });
  const r = await v.verify(await token());
  assert.ok(!r.ok);
  assert.match(r.reason, /issuer keys unavailable: issuer unreachable \(ECONNREFUSED\)/);
});

test('settings refuse none and HMAC algorithms, plain http off loopback, and tls_client_auth without https', () => {
  const base = { upstream: 'http://127.0.0.1:3000' };
  const fails = (raw: Record<string, unknown>, field: string): void => {
    assert.throws(() => buildConfig([{ ...base, ...raw }], '/tmp'), (e: Error) => e instanceof ConfigError && e.field === field, JSON.stringify(raw));
  };
  fails({ tokenAlgorithm: ['ES256', 'HS256'] }, 'tokenAlgorithm');
  fails({ tokenAlgorithm: 'none' }, 'tokenAlgorithm');
  fails({ issuer: 'http://issuer.example.com', clientAuth: 'private_key_jwt' }, 'issuer');
  fails({ issuer: 'http://127.0.0.1:15080' }, 'issuer');
  fails({ tokenRefreshFraction: '1' }, 'tokenRefreshFraction');
  fails({ outboundUnrouted: 'drop' }, 'outboundUnrouted');
  const c = buildConfig([{ ...base, issuer: 'http://127.0.0.1:15080', clientAuth: 'private_key_jwt', tokenAlgorithm: 'ES256', audience: 'api://me' }], '/tmp');
  assert.deepEqual([c.tokenAlgorithms, c.audience, c.tokenRefreshFraction, c.clockSkewMs, c.outboundUnrouted, c.audienceParam, c.rolesClaim],
    [['ES256'], 'api://me', 0.8, 30_000, 'passthrough', 'resource', 'roles']);
});
