// Every issuer call has one overall deadline (docs/tokens.md: 10 s), however the issuer spends it:
// a drip-feeding server that sends a byte every 500 ms never trips an idle timer, so only an
// overall deadline ends the call. Token endpoint, discovery (for tokens and for the verifier's
// JWKS URL) and the JWKS itself (jose's own 5 s) are each given such an issuer, side by side.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SignJWT, generateKeyPair } from 'jose';
import { makePki, type TestPki } from '../support/pki.ts';
import { loadTlsMaterial, type TlsMaterial } from '../../src/identity/material.ts';
import { IssuerHttp } from '../../src/tokens/issuer-http.ts';
import { IssuerMetadata } from '../../src/tokens/discovery.ts';
import { TokenClient, TokenUnavailable } from '../../src/tokens/client.ts';
import { TokenVerifier } from '../../src/tokens/verify.ts';
import { startDripServer, type DripServer } from './support.ts';

let pki: TestPki; let tls: TlsMaterial; let http: IssuerHttp; let drip: DripServer;

before(async () => {
  pki = await makePki();
  tls = await loadTlsMaterial({ cert: pki.server.cert, key: pki.server.key, ca: [pki.ca] });
  await writeFile(join(pki.dir, 'client.secret'), 's3cret\n');
  http = new IssuerHttp(() => tls);
  // Under /ok the metadata answers at once and points at slow endpoints; everything else is slow.
  drip = await startDripServer((path, _form, base) => path === '/ok/.well-known/openid-configuration'
    ? { body: { issuer: `${base}/ok`, token_endpoint: `${base}/slow/token`, jwks_uri: `${base}/slow/jwks` }, afterMs: 0 }
    : { body: { access_token: 'never-sent', token_type: 'Bearer', expires_in: 300 }, afterMs: Infinity });
});
// The server first: on code without the deadline its calls would otherwise hold http.close() forever.
after(async () => { await drip?.close(); await http?.close(); await pki?.cleanup(); });

const REQ = { audience: 'api://payments', scopes: [], approval: null };

function tokenClient(issuer: string | null, tokenEndpoint: string | null): TokenClient {
  return new TokenClient({
    metadata: new IssuerMetadata(issuer, { tokenEndpoint, jwksUri: null }, http), http, clientId: () => 'orders',
    clientAuth: 'client_secret_basic', clientSecretFile: join(pki.dir, 'client.secret'), audienceParam: 'resource', tls: () => tls,
  });
}
function verifier(issuer: string): TokenVerifier {
  return new TokenVerifier({
    metadata: new IssuerMetadata(issuer, { tokenEndpoint: null, jwksUri: null }, http), http,
    audience: () => 'api://payments', algorithms: ['ES256'], clockSkewSeconds: 5, rolesClaim: 'roles',
  });
}

/** How a call ended and after how long; 'still waiting' if it had not ended by `giveUpMs`. */
async function timed(p: Promise<unknown>, giveUpMs: number): Promise<{ ms: number; outcome: unknown }> {
  const t0 = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    p.then((v) => v, (e: unknown) => e),
    new Promise((r) => { timer = setTimeout(() => r('still waiting'), giveUpMs); }),
  ]);
  clearTimeout(timer);
  return { ms: Date.now() - t0, outcome };
}

test('token, discovery and JWKS calls to an issuer that drips its answer end at their deadline', async () => {
  const { privateKey } = await generateKeyPair('ES256');
  const jwt = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer(`${drip.url}/ok`)
    .setAudience('api://payments').setExpirationTime('5m').sign(privateKey);
  const [token, discovery, verifierDiscovery, jwks] = await Promise.all([
    timed(tokenClient(null, `${drip.url}/slow/token`).request(REQ), 25_000),
    timed(tokenClient(`${drip.url}/slow`, null).request(REQ), 25_000),
    timed(verifier(`${drip.url}/slow`).verify(jwt), 25_000),
    timed(verifier(`${drip.url}/ok`).verify(jwt), 25_000),
  ]);

  for (const [what, r] of [['token request', token], ['discovery', discovery]] as const) {
    assert.ok(r.outcome instanceof TokenUnavailable, `${what}: ${String(r.outcome)} after ${r.ms} ms`);
    assert.match(r.outcome.message, /issuer did not answer within 10s/, what);
    assert.ok(r.ms >= 9_000, `${what}: not before the documented 10 s (${r.ms} ms)`);
  }
  assert.match(discovery.outcome instanceof Error ? discovery.outcome.message : '', /^issuer discovery failed/);
  assert.deepEqual(verifierDiscovery.outcome, { ok: false, reason: 'issuer keys unavailable: issuer did not answer within 10s' },
    `verifier discovery after ${verifierDiscovery.ms} ms`);
  assert.deepEqual(jwks.outcome, { ok: false, reason: 'ERR_JWKS_TIMEOUT' }, `JWKS after ${jwks.ms} ms`);
  // The issuer really was dripping the whole time: the token call got its 200 and kept reading.
  assert.ok(drip.requests.some((r) => r.path === '/slow/token'));
});
