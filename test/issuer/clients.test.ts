import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { createCA, issueCertificate } from '../../src/certs/pki.ts';
import { ConfigError } from '../../src/errors.ts';
import { loadClientsFile, parseClients } from '../../src/issuer/clients.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'authproxy-issuer-clients-'));
  const ca = await createCA({ trustDomain: 'example.org' });
  const cert = await issueCertificate(ca, { spiffeId: 'spiffe://example.org/ns/billing/sa/billing' });
  await writeFile(join(dir, 'billing.crt'), cert.certPem);
});
after(async () => { await rm(dir, { recursive: true, force: true }); });

const parse = (doc: unknown) => parseClients(doc, { baseDir: dir });
async function refused(doc: unknown, field: RegExp, message: RegExp): Promise<void> {
  await assert.rejects(parse(doc), (e: unknown) => {
    assert.ok(e instanceof ConfigError, String(e));
    assert.match(e.field ?? '', field);
    assert.match(e.message, message);
    return true;
  });
}

test('the documented example parses into clients with audiences, scopes and roles', async () => {
  await writeFile(join(dir, 'clients.yaml'), `
clients:
  billing:
    auth: private_key_jwt
    certificate: billing.crt
    audiences:
      api://payments:
        scopes: [payments.charge]
        roles: [Payments.Writer]
      api://orders: {}
`);
  const [billing] = await loadClientsFile(join(dir, 'clients.yaml'));
  assert.equal(billing!.id, 'billing');
  assert.equal(billing!.jwks!.keys[0]!.kty, 'EC');
  assert.equal(billing!.jwks!.keys[0]!.d, undefined);
  assert.deepEqual(billing!.audiences.get('api://payments'), { scopes: ['payments.charge'], roles: ['Payments.Writer'] });
  assert.deepEqual(billing!.audiences.get('api://orders'), { scopes: [], roles: [] });
});

test('an unknown key, a missing auth method and an empty audience list are refused by field', async () => {
  await refused({ clients: { a: { auth: 'private_key_jwt', certificate: 'billing.crt', audience: {} } } }, /^clients\.a\.audience$/, /unknown key/);
  await refused({ clients: { a: { audiences: { 'api://x': {} } } } }, /^clients\.a\.auth$/, /one of private_key_jwt/);
  await refused({ clients: { a: { auth: 'client_secret_basic', secret: 'x', audiences: {} } } }, /^clients\.a\.audiences$/, /at least one audience/);
  await refused({ clients: { a: { auth: 'client_secret_basic', secret: 'x', audiences: { 'not a uri': {} } } } }, /audiences\.not a uri/, /absolute URI/);
});

test('a JWKS holding a private key is refused without echoing the key', async () => {
  const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  await assert.rejects(parse({ clients: { a: { auth: 'private_key_jwt', jwks: { keys: [jwk] }, audiences: { 'api://x': {} } } } }), (e: Error) => {
    assert.match(e.message, /public keys only/);
    assert.ok(!e.message.includes(jwk.d!), 'the private key appeared in the error');
    return true;
  });
});

test('a certificate that does not carry the client\'s spiffeId is refused', async () => {
  await refused({ clients: { a: { auth: 'private_key_jwt', certificate: 'billing.crt', spiffeId: 'spiffe://example.org/ns/other/sa/other', audiences: { 'api://x': {} } } } },
    /certificate/, /does not carry the client's spiffeId/);
});

test('tls_client_auth needs a SPIFFE ID and takes no key or secret', async () => {
  await refused({ clients: { a: { auth: 'tls_client_auth', audiences: { 'api://x': {} } } } }, /spiffeId/, /required for tls_client_auth/);
  await refused({ clients: { a: { auth: 'tls_client_auth', spiffeId: 'spiffe://example.org/a', secret: 's', audiences: { 'api://x': {} } } } }, /secret/, /does not apply/);
  await refused({ clients: { a: { auth: 'tls_client_auth', spiffeId: 'https://example.org/a', audiences: { 'api://x': {} } } } }, /spiffeId/, /not a SPIFFE ID/);
});

test('a client secret never appears in an error about it', async () => {
  await assert.rejects(parse({ clients: { a: { auth: 'private_key_jwt', secret: 'hunter2-secret', audiences: { 'api://x': {} } } } }), (e: Error) => {
    assert.ok(!e.message.includes('hunter2-secret'));
    return true;
  });
});

test('an unreadable clients file names the file', async () => {
  await assert.rejects(loadClientsFile(join(dir, 'missing.yaml')), /missing\.yaml: cannot read clients file: ENOENT/);
});
