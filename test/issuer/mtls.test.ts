// tls_client_auth (RFC 8705) over real mutual TLS: the issuer serves HTTPS with a certificate
// from the dev CA, asks for client certificates, verifies them against its trust bundle and
// matches the client by the SPIFFE ID in the certificate's URI SAN.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createCA, issueCertificate, type PemPair } from '../../src/certs/pki.ts';
import { startIssuer, type RunningIssuer } from '../../src/issuer/server.ts';
import { postToken, tlsAgent, verifyAccessToken } from './helpers.ts';

const ORDERS_ID = 'spiffe://example.org/ns/orders/sa/orders';
let ca: PemPair;
let issuer: RunningIssuer;
let orders: PemPair;

before(async () => {
  ca = await createCA({ trustDomain: 'example.org' });
  const server = await issueCertificate(ca, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  orders = await issueCertificate(ca, { spiffeId: ORDERS_ID });
  issuer = await startIssuer({
    listen: '127.0.0.1:0', quiet: true,
    tls: { certPem: server.certPem, keyPem: server.keyPem, caPems: [ca.certPem] },
    clients: { clients: {
      orders: { auth: 'tls_client_auth', spiffeId: ORDERS_ID,
        audiences: { 'api://payments': { scopes: ['payments.charge'], roles: ['Payments.Writer'] } } },
    } },
  });
});

after(async () => { await issuer?.close(); });

test('the issuer serves HTTPS and advertises tls_client_auth', async () => {
  assert.match(issuer.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const agent = tlsAgent({ ca: ca.certPem });
  try {
    const res = await agent.request({ origin: issuer.url, path: '/.well-known/openid-configuration', method: 'GET' });
    const meta = await res.body.json() as { token_endpoint_auth_methods_supported: string[] };
    assert.ok(meta.token_endpoint_auth_methods_supported.includes('tls_client_auth'));
  } finally { await agent.close(); }
});

test('a client presenting a CA-signed certificate with its registered SPIFFE ID gets a token', async () => {
  const agent = tlsAgent({ ca: ca.certPem, cert: orders.certPem, key: orders.keyPem });
  try {
    const res = await postToken(issuer.tokenEndpoint, { client_id: 'orders', resource: 'api://payments' }, { dispatcher: agent });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const claims = await verifyAccessToken(res.body.access_token as string, issuer.url, 'api://payments', agent);
    assert.equal(claims.client_id, 'orders');
    assert.equal(claims.scope, 'payments.charge');
    assert.deepEqual(claims.roles, ['Payments.Writer']);
  } finally { await agent.close(); }
});

test('a CA-signed certificate with another SPIFFE ID is refused', async () => {
  const other = await issueCertificate(ca, { spiffeId: 'spiffe://example.org/ns/billing/sa/billing' });
  const agent = tlsAgent({ ca: ca.certPem, cert: other.certPem, key: other.keyPem });
  try {
    const res = await postToken(issuer.tokenEndpoint, { client_id: 'orders', resource: 'api://payments' }, { dispatcher: agent });
    assert.equal(res.status, 401);
    assert.equal(res.body.error, 'invalid_client');
  } finally { await agent.close(); }
});

test('a certificate with the right SPIFFE ID from an untrusted CA is refused', async () => {
  const rogueCa = await createCA({ trustDomain: 'example.org' });
  const forged = await issueCertificate(rogueCa, { spiffeId: ORDERS_ID });
  const agent = tlsAgent({ ca: ca.certPem, cert: forged.certPem, key: forged.keyPem });
  try {
    const res = await postToken(issuer.tokenEndpoint, { client_id: 'orders', resource: 'api://payments' }, { dispatcher: agent });
    assert.equal(res.status, 401);
    assert.equal(res.body.error, 'invalid_client');
  } finally { await agent.close(); }
});

test('a certificate carrying the SPIFFE ID beside a second URI SAN is not a valid SVID and is refused', async () => {
  const twoUris = await issueCertificate(ca, { spiffeId: ORDERS_ID, uris: ['https://orders.example.org'] });
  const agent = tlsAgent({ ca: ca.certPem, cert: twoUris.certPem, key: twoUris.keyPem });
  try {
    const res = await postToken(issuer.tokenEndpoint, { client_id: 'orders', resource: 'api://payments' }, { dispatcher: agent });
    assert.equal(res.status, 401);
  } finally { await agent.close(); }
});

test('a tls_client_auth client without a certificate is refused', async () => {
  const agent = tlsAgent({ ca: ca.certPem });
  try {
    const res = await postToken(issuer.tokenEndpoint, { client_id: 'orders', resource: 'api://payments' }, { dispatcher: agent });
    assert.equal(res.status, 401);
    assert.equal(res.body.error, 'invalid_client');
  } finally { await agent.close(); }
});
