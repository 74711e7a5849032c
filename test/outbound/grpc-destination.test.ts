// gRPC from the app to a destination that is not a sidecar: a grpc-js server over TLS (server
// authentication only, as a cloud API is reached). The app's grpc-js client speaks h2c to the
// outbound listener; the sidecar adds the route's token, originates TLS checked against the trust
// bundle, and every call kind passes with its metadata and trailers.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { decodeJwt } from 'jose';
import { SERVER_ID, type TestPki } from '../support/pki.ts';
import { startOutboundFixture, type OutboundFixture } from './fixture.ts';
import { startHttpsIssuer, type IssuerProcess } from '../tokens/support.ts';
import { grpc, grpcClient, unary, serverStream, clientStream, bidiPingPong, startGrpcServer, type GrpcServer, type EchoClient } from '../support/grpc.ts';

const ROUTES = `apiVersion: authproxy.dev/v1
kind: OutboundRoute
metadata: { name: payments-grpc }
spec:
  hosts: ["localhost"]
  token: { audience: "api://payments", scopes: ["payments.charge"] }
  tls: tls
  trust: bundle
`;

const CLIENTS = `clients:
  orders:
    auth: tls_client_auth
    spiffeId: ${SERVER_ID}
    audiences:
      api://payments:
        scopes: [payments.charge]
`;

const issuerFor = (pki: TestPki, work: string): Promise<IssuerProcess> => startHttpsIssuer(pki, work, CLIENTS);

describe('gRPC from the app to a TLS gRPC destination', () => {
  let fixture: OutboundFixture; let server: GrpcServer; let client: EchoClient;

  before(async () => {
    fixture = await startOutboundFixture({ name: 'grpc-destination', policies: { 'routes.yaml': ROUTES }, issuer: issuerFor });
    const dest = await fixture.pki.issue('payments', { dnsNames: ['localhost'], ipAddresses: [] });
    server = await startGrpcServer('127.0.0.1:0', {}, {
      credentials: grpc.ServerCredentials.createSsl(null, [{ private_key: await readFile(dest.key), cert_chain: await readFile(dest.cert) }], false),
    });
    client = grpcClient(`127.0.0.1:${fixture.sidecar.outboundPort}`, { authority: `localhost:${server.port}` });
  });
  after(async () => {
    client?.close();
    await server?.close();
    await fixture?.close();
  });

  it('carries unary, server-streaming, client-streaming and bidi calls over TLS with the route\'s token, trailers included', async () => {
    const u = await unary(client, 'charge');
    assert.equal(u.reply.text, 'charge');
    const token = /^Bearer (.+)$/.exec(u.reply.metadata.authorization ?? '')?.[1];
    assert.ok(token, 'the destination got a bearer token');
    const claims = decodeJwt(token);
    assert.equal(claims.aud, 'api://payments');
    assert.equal(claims.scope, 'payments.charge');
    assert.equal(u.trailers['x-echo-trailer'], 'done');
    assert.deepEqual((await serverStream(client, 's', 3)).replies.map((r) => r.text), ['s#0', 's#1', 's#2']);
    assert.equal((await clientStream(client, ['a', 'b'])).reply.text, 'a,b');
    const bidi = await bidiPingPong(client, ['ping', 'pong']);
    assert.deepEqual(bidi.replies, ['PING', 'PONG']);
    assert.ok(bidi.first?.metadata.authorization?.startsWith('Bearer '), 'a streaming call carries the token too');
    assert.equal(bidi.trailers['x-echo-trailer'], 'done');
    assert.equal(server.calls(), 4);
    assert.equal(fixture.issuer.issued(), 1, 'one token for every call');
  });
});
