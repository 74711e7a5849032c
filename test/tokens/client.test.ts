// The client credentials grant against the real dev issuer, for each client authentication
// method, over plain HTTP (loopback) and HTTPS with the workload certificate (tls_client_auth).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makePki, SERVER_ID, type TestPki } from '../support/pki.ts';
import { startIssuer, type RunningIssuer } from '../../src/issuer/server.ts';
import { loadTlsMaterial, type TlsMaterial } from '../../src/identity/material.ts';
import { IssuerHttp } from '../../src/tokens/issuer-http.ts';
import { IssuerMetadata } from '../../src/tokens/discovery.ts';
import { TokenClient, TokenUnavailable, type TokenClientOptions } from '../../src/tokens/client.ts';
import { verifyAccessToken, tlsAgent } from '../issuer/helpers.ts';

const SECRET = 'correct-horse-battery-staple';
let pki: TestPki; let tls: TlsMaterial; let http: IssuerHttp;
let plain: RunningIssuer; let secure: RunningIssuer;

before(async () => {
  pki = await makePki();
  tls = await loadTlsMaterial({ cert: pki.server.cert, key: pki.server.key, ca: [pki.ca] });
  const issuerPair = await pki.issue('issuer', { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  await writeFile(join(pki.dir, 'reporting.secret'), `${SECRET}\n`);
  await writeFile(join(pki.dir, 'wrong.secret'), 'not-the-secret\n');
  plain = await startIssuer({
    listen: '127.0.0.1:0', quiet: true,
    clients: { clients: {
      orders: { auth: 'private_key_jwt', certificate: pki.server.cert, audiences: { 'api://payments': { scopes: ['payments.charge', 'payments.refund'], roles: ['Payments.Writer'] } } },
      reporting: { auth: 'client_secret_basic', secretFile: join(pki.dir, 'reporting.secret'), audiences: { 'api://orders': { scopes: ['orders.read'] } } },
    } },
  });
  secure = await startIssuer({
    listen: '127.0.0.1:0', quiet: true,
    tls: { certPem: await readFile(issuerPair.cert, 'utf8'), keyPem: await readFile(issuerPair.key, 'utf8'), caPems: [pki.caPair.certPem] },
    clients: { clients: { orders: { auth: 'tls_client_auth', spiffeId: SERVER_ID, audiences: { 'api://payments': { roles: ['Payments.Writer'] } } } } },
  });
  http = new IssuerHttp(() => tls);
});

after(async () => {
  await http?.close();
  await plain?.close();
  await secure?.close();
  await pki?.cleanup();
});

function client(issuer: string | null, o: Partial<TokenClientOptions> & { tokenEndpoint?: string } = {}): TokenClient {
  const metadata = new IssuerMetadata(issuer, { tokenEndpoint: o.tokenEndpoint ?? null, jwksUri: null }, http);
  return new TokenClient({
    metadata, http, clientId: () => 'orders', clientAuth: 'private_key_jwt', clientSecretFile: null, audienceParam: 'resource',
    tls: () => tls, ...o,
  });
}
const REQ = { audience: 'api://payments', scopes: ['payments.charge'], approval: null };

test('private_key_jwt signed with the workload key gets a JWT for the audience and scopes, found through discovery', async () => {
  const t = await client(plain.url).request(REQ);
  const claims = await verifyAccessToken(t.accessToken, plain.url, 'api://payments');
  assert.equal(claims.client_id, 'orders');
  assert.equal(claims.scope, 'payments.charge');
  assert.deepEqual(claims.roles, ['Payments.Writer']);
  // expires_in says 300 s; the JWT's whole-second exp can make it up to a second less, and that wins.
  assert.ok(t.lifetimeMs > 298_000 && t.lifetimeMs <= 300_000, `lifetime ${t.lifetimeMs}`);
});

test('an issuer given with a trailing slash: the assertion is addressed to the identifier its metadata names', async () => {
  // The dev issuer's identifier has no trailing slash and it refuses an assertion whose aud is not it.
  const t = await client(`${plain.url}/`).request(REQ);
  assert.equal((await verifyAccessToken(t.accessToken, plain.url, 'api://payments')).client_id, 'orders');
});

test('the audience can be named with resource, audience, or both', async () => {
  for (const audienceParam of ['audience', 'both'] as const) {
    const t = await client(plain.url, { audienceParam }).request(REQ);
    assert.equal((await verifyAccessToken(t.accessToken, plain.url, 'api://payments')).aud, 'api://payments', audienceParam);
  }
});

test('tls_client_auth presents the workload certificate to an HTTPS issuer signed by the mesh CA', async () => {
  const t = await client(secure.url, { clientAuth: 'tls_client_auth' }).request(REQ);
  const claims = await verifyAccessToken(t.accessToken, secure.url, 'api://payments', tlsAgent({ ca: pki.caPair.certPem }));
  assert.equal(claims.client_id, 'orders');
});

test('client_secret_basic reads the secret file; a wrong secret is refused without the secret in the message', async () => {
  const ok = await client(plain.url, { clientId: () => 'reporting', clientAuth: 'client_secret_basic', clientSecretFile: join(pki.dir, 'reporting.secret') })
    .request({ audience: 'api://orders', scopes: [], approval: null });
  assert.equal((await verifyAccessToken(ok.accessToken, plain.url, 'api://orders')).client_id, 'reporting');
  await assert.rejects(
    client(plain.url, { clientId: () => 'reporting', clientAuth: 'client_secret_basic', clientSecretFile: join(pki.dir, 'wrong.secret') })
      .request({ audience: 'api://orders', scopes: [], approval: null }),
    (e: Error) => e instanceof TokenUnavailable && /invalid_client/.test(e.message) && !e.message.includes('not-the-secret') && !e.message.includes(SECRET),
  );
  await assert.rejects(
    client(plain.url, { clientAuth: 'client_secret_basic', clientSecretFile: join(pki.dir, 'missing.secret') }).request(REQ),
    (e: Error) => e instanceof TokenUnavailable && /secret file cannot be read \(ENOENT\)/.test(e.message) && !e.message.includes(pki.dir),
  );
});

test('an explicit token endpoint works without discovery', async () => {
  const t = await client(null, { tokenEndpoint: plain.tokenEndpoint, clientId: () => 'reporting', clientAuth: 'client_secret_basic', clientSecretFile: join(pki.dir, 'reporting.secret') })
    .request({ audience: 'api://orders', scopes: ['orders.read'], approval: null });
  assert.equal((await verifyAccessToken(t.accessToken, plain.url, 'api://orders')).scope, 'orders.read');
});

/** A metadata server that serves only the RFC 8414 document, or one naming another issuer. */
async function metadataServer(kind: 'rfc8414' | 'mixup'): Promise<{ url: string; server: Server; paths: string[] }> {
  const paths: string[] = [];
  const server = createServer((req, res) => {
    paths.push(req.url ?? '');
    const self = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const serve = kind === 'mixup' ? req.url === '/.well-known/openid-configuration' : req.url === '/.well-known/oauth-authorization-server';
    if (!serve) { res.writeHead(404).end(); return; }
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ issuer: kind === 'mixup' ? plain.url : self, token_endpoint: plain.tokenEndpoint, jwks_uri: plain.jwksUri }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, paths };
}

test('discovery falls back to /.well-known/oauth-authorization-server when OpenID discovery is absent', async () => {
  const m = await metadataServer('rfc8414');
  try {
    const t = await client(m.url, { clientId: () => 'reporting', clientAuth: 'client_secret_basic', clientSecretFile: join(pki.dir, 'reporting.secret') })
      .request({ audience: 'api://orders', scopes: [], approval: null });
    assert.ok(t.accessToken.length > 0);
    assert.deepEqual(m.paths, ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server']);
  } finally { m.server.close(); }
});

test('metadata that names a different issuer is refused (mix-up defence)', async () => {
  const m = await metadataServer('mixup');
  try {
    await assert.rejects(client(m.url).request(REQ), (e: Error) => e instanceof TokenUnavailable && /metadata names issuer/.test(e.message));
  } finally { m.server.close(); }
});

test('an unreachable issuer and an unknown JIT approval are TokenUnavailable with the reason', async () => {
  const dead = await metadataServer('rfc8414');
  const deadUrl = dead.url;
  await new Promise<void>((r) => dead.server.close(() => r()));
  await assert.rejects(client(deadUrl).request(REQ), (e: Error) => e instanceof TokenUnavailable && /ECONNREFUSED/.test(e.message));
  await assert.rejects(client(plain.url).request({ ...REQ, approval: 'apv_nope' }),
    (e: Error) => e instanceof TokenUnavailable && /invalid_grant \(approval is unknown\)/.test(e.message));
});
