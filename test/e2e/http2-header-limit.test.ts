// --max-header-bytes over HTTP/2, as over HTTP/1.1: a field section over the limit, measured as
// RFC 9113 §6.5.2 measures it (name + value + 32 a field line, pseudo-header fields included), is
// refused with 431 headers_too_large naming the limit and its flag (RESOURCE_EXHAUSTED for a gRPC
// call), audited, and never forwarded: on the first request of a connection, which node:http2
// lets through before SETTINGS are acknowledged, as on a settled one, where it reset the stream.
// Inbound (mTLS, plain HTTP/2 and gRPC) and on the outbound listener's h2c. Real clients:
// node:http2 and @grpc/grpc-js.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect as h2connect, type ClientHttp2Session, type SecureClientSessionOptions } from 'node:http2';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { makePki, BILLING_ID, type TestPki } from '../support/pki.ts';
import { startApp, type TestApp } from '../support/app.ts';
import { startSidecar, type Sidecar } from '../support/sidecar.ts';
import { startPolicedSidecar, type PolicedSidecar } from '../support/policed-sidecar.ts';
import { tlsOptions, h2request } from '../support/clients.ts';
import { waitForAuditLine } from '../support/audit.ts';
import { startGrpcServer, grpcClient, unary, grpc, type GrpcServer, type EchoClient } from '../support/grpc.ts';

const LIMIT = 8192;
/** What the sidecar advertises as SETTINGS_MAX_HEADER_LIST_SIZE: the limit plus 64 KiB of headroom. */
const ADVERTISED = LIMIT + 65_536;

/** The field section size of `headers` as RFC 9113 §6.5.2 counts it. */
function fieldSectionBytes(headers: Record<string, string>): number {
  let n = 0;
  for (const [name, value] of Object.entries(headers)) n += name.length + value.length + 32;
  return n;
}

/** `headers` padded with x-pad to a field section of exactly `bytes`. */
function sized(bytes: number, headers: Record<string, string>): Record<string, string> {
  const h = { ...headers, 'x-pad': '' };
  h['x-pad'] = 'p'.repeat(bytes - fieldSectionBytes(h));
  return h;
}

/** A GET of `path` on the mTLS port whose field section is exactly `bytes`. */
function headersOfSize(bytes: number, path: string, requestId: string): Record<string, string> {
  return sized(bytes, { ':method': 'GET', ':scheme': 'https', ':authority': 'localhost', ':path': path, 'x-request-id': requestId });
}

describe('--max-header-bytes over HTTP/2', () => {
  let pki: TestPki; let app: TestApp; let policed: PolicedSidecar; let sidecar: Sidecar; let audit: string;
  let grpcApp: GrpcServer; let grpcSidecar: Sidecar;
  const sessions: ClientHttp2Session[] = [];
  const clients: EchoClient[] = [];
  const open = (extra: SecureClientSessionOptions = {}): ClientHttp2Session => {
    const s = h2connect(`https://localhost:${sidecar.inboundPort}`, { ...tlsOptions(pki.ca, pki.clients.billing), host: '127.0.0.1', ...extra });
    s.on('error', () => {});
    sessions.push(s);
    return s;
  };
  /** A session whose SETTINGS both sides have acknowledged: an answered request proves the ACK arrived first. */
  const settled = async (): Promise<ClientHttp2Session> => {
    const s = open({ maxSendHeaderBlockLength: 1 << 20 });
    await once(s, 'remoteSettings');
    assert.equal((await h2request(s, { ':path': '/orders/settle' })).status, 200);
    return s;
  };
  const reached = (path: string): number => app.seen.filter((x) => x.url === path).length;
  const assertRefused = (r: { status: number; body: string }): void => {
    assert.equal(r.status, 431, r.body);
    const body = JSON.parse(r.body) as { error: string; message: string };
    assert.equal(body.error, 'headers_too_large');
    assert.match(body.message, /exceed 8192 bytes \(--max-header-bytes\)/);
  };

  before(async () => {
    pki = await makePki();
    [app, grpcApp] = await Promise.all([startApp(), startGrpcServer()]);
    policed = await startPolicedSidecar(pki, app, ['--max-header-bytes', String(LIMIT)]);
    ({ sidecar, auditFile: audit } = policed);
    grpcSidecar = await startSidecar(['--upstream', `h2c://127.0.0.1:${grpcApp.port}`, '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
      '--policies', policed.policies, '--audit-log', '/dev/null', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--max-header-bytes', String(LIMIT)]);
  });
  after(async () => {
    for (const s of sessions) s.destroy();
    for (const c of clients) c.close();
    await grpcSidecar?.stop(); await policed?.close();
    await Promise.all([app?.close(), grpcApp?.close()]);
    await pki?.cleanup();
  });

  it('refuses the first request of a fresh connection, one byte over the limit, with 431 before authorization; audited, never forwarded', async () => {
    const r = await h2request(open(), headersOfSize(LIMIT + 1, '/orders/first-over', 'h2-limit-first'));
    assertRefused(r);
    assert.equal(reached('/orders/first-over'), 0);
    const line = await waitForAuditLine(audit, (l) => l['requestId'] === 'h2-limit-first');
    assert.deepEqual([line?.['decision'], line?.['status'], line?.['code'], line?.['method']], ['deny', 431, 'headers_too_large', 'GET']);
    assert.deepEqual(line?.['peer'], { principal: BILLING_ID, address: '127.0.0.1' });
    assert.equal(line?.['rule'], null, 'refused before the policy was asked');
  });

  it('refuses it on a settled connection too, having advertised the limit plus headroom rather than resetting the stream', async () => {
    const s = await settled();
    assert.equal(s.remoteSettings.maxHeaderListSize, ADVERTISED);
    assertRefused(await h2request(s, headersOfSize(LIMIT + 1, '/orders/settled-over', 'h2-limit-settled')));
    // Far over the limit, within the advertised size: still an answer, not a reset.
    assertRefused(await h2request(s, headersOfSize(ADVERTISED, '/orders/settled-far-over', 'h2-limit-far')));
    assert.equal(reached('/orders/settled-over') + reached('/orders/settled-far-over'), 0);
  });

  it('passes a request exactly at the limit to the app, on a fresh connection and on a settled one', async () => {
    const fresh = await h2request(open(), headersOfSize(LIMIT, '/orders/at-limit', 'h2-limit-at-1'));
    assert.equal(fresh.status, 200, fresh.body);
    const again = await h2request(await settled(), headersOfSize(LIMIT, '/orders/at-limit', 'h2-limit-at-2'));
    assert.equal(again.status, 200, again.body);
    const seen = app.seen.filter((x) => x.url === '/orders/at-limit');
    assert.equal(seen.length, 2);
    assert.equal(seen[0]!.headers['x-pad'], headersOfSize(LIMIT, '/orders/at-limit', 'h2-limit-at-1')['x-pad']);
  });

  it('resets, once SETTINGS are acknowledged, a stream past the advertised size (node:http2 ceiling), which never reaches the app', async () => {
    const s = await settled();
    await assert.rejects(h2request(s, headersOfSize(ADVERTISED + 1, '/orders/past-ceiling', 'h2-limit-ceiling')), /NGHTTP2_ENHANCE_YOUR_CALM/);
    assert.equal(reached('/orders/past-ceiling'), 0);
  });

  it('refuses a WebSocket over HTTP/2 (extended CONNECT) over the limit with 431', async () => {
    const s = open();
    await once(s, 'remoteSettings');
    assertRefused(await h2request(s, sized(LIMIT + 1, { ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'https', ':authority': 'localhost',
      ':path': '/ws/over', 'sec-websocket-version': '13', 'x-request-id': 'h2-limit-ws' })));
    assert.equal(app.seen.filter((x) => x.url === '/ws/over').length, 0);
    const line = await waitForAuditLine(audit, (l) => l['requestId'] === 'h2-limit-ws');
    assert.deepEqual([line?.['method'], line?.['code']], ['GET', 'headers_too_large']);
  });

  it('answers a gRPC call whose metadata is over the limit with RESOURCE_EXHAUSTED, first call and later ones, and the server never sees it', async () => {
    const c = grpcClient(`127.0.0.1:${grpcSidecar.inboundPort}`, { tls: { ca: readFileSync(pki.ca), cert: readFileSync(pki.clients.billing.cert), key: readFileSync(pki.clients.billing.key), servername: 'localhost' } });
    clients.push(c);
    const before = grpcApp.calls();
    const tooLarge = (e: grpc.ServiceError): boolean => {
      assert.equal(e.code, grpc.status.RESOURCE_EXHAUSTED);
      assert.match(e.details, /^headers_too_large: request headers exceed 8192 bytes \(--max-header-bytes\)/);
      assert.equal(e.metadata.get('x-authproxy-error')[0], 'headers_too_large');
      return true;
    };
    await assert.rejects(unary(c, 'first', { 'x-pad': 'p'.repeat(LIMIT) }), tooLarge);
    assert.equal((await unary(c, 'small')).reply.text, 'small');
    await assert.rejects(unary(c, 'later', { 'x-pad': 'p'.repeat(LIMIT) }), tooLarge);
    assert.equal(grpcApp.calls(), before + 1, 'only the call within the limit reached the server');
  });

  it("refuses the app's h2c request over the limit on the outbound listener with 431, audited, before any route is chosen", async () => {
    const s = h2connect(`http://127.0.0.1:${sidecar.outboundPort}`);
    s.on('error', () => {});
    sessions.push(s);
    assertRefused(await h2request(s, sized(LIMIT + 1, { ':method': 'GET', ':scheme': 'http', ':authority': '127.0.0.1:9', ':path': '/out/over', 'x-request-id': 'h2-limit-outbound' })));
    const line = await waitForAuditLine(audit, (l) => l['requestId'] === 'h2-limit-outbound');
    assert.deepEqual([line?.['direction'], line?.['decision'], line?.['status'], line?.['code']], ['outbound', 'deny', 431, 'headers_too_large']);
  });
});
