// HTTP/1.1 requests Node's parser refuses on the inbound listeners (400 malformed, 431 over
// --max-header-bytes, 408 at --header-timeout) are audited: one deny record each, with the request
// id the caller got, the caller the connection was identified as (certificate on the mTLS
// listener, `boundary:<name>` on the plaintext one, none from outside every boundary), no method or
// path (the parser gave none) and nothing the caller sent. The real CLI, raw TLS and TCP clients.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tcpConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { once } from 'node:events';
import { rm, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makePki, BILLING_ID, SHOP_ID, type TestPki } from '../support/pki.ts';
import { startApp, type TestApp } from '../support/app.ts';
import { startSidecar, type Sidecar } from '../support/sidecar.ts';
import { policyDir, TEST_POLICY } from '../support/policy-dir.ts';
import { rawTls, statusOf, tlsOptions } from '../support/clients.ts';
import { auditLines, waitForAuditLine } from '../support/audit.ts';

const SECRET = 'Bearer do-not-log-this-token';
// Two loopback addresses stand in for a network inside the trust boundary and one outside it.
const INSIDE = '127.0.0.2';
const OUTSIDE = '127.0.0.3';
const BOUNDARY = `apiVersion: authproxy.dev/v1
kind: TrustBoundary
metadata: { name: cluster }
spec: { cidrs: ["${INSIDE}/32"] }
`;

interface Refusal { status: number; requestIdHeader: string | undefined; body: { error: string; message: string; requestId: string } }

function parseRefusal(raw: string): Refusal {
  const split = raw.indexOf('\r\n\r\n');
  assert.ok(split > 0, `an HTTP answer, got: ${JSON.stringify(raw)}`);
  const head = raw.slice(0, split);
  return {
    status: statusOf(raw),
    requestIdHeader: /^x-request-id: (.+)$/mi.exec(head)?.[1],
    body: JSON.parse(raw.slice(split + 4)) as Refusal['body'],
  };
}

describe('requests the HTTP/1.1 parser refuses are audited', () => {
  let pki: TestPki; let app: TestApp; let sidecar: Sidecar; let policies: string; let work: string; let audit: string;
  let plaintextPort: number; let digest: string;

  before(async () => {
    pki = await makePki();
    // /stream: an answer whose headers and first half go out at once and whose rest follows later.
    app = await startApp({ handler: (req, res) => {
      if (req.url !== '/stream') return false;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '20' });
      res.write('first-half|');
      setTimeout(() => res.end('second!!!'), 400);
      return true;
    } });
    policies = await policyDir({ 'orders.yaml': TEST_POLICY, 'boundary.yaml': BOUNDARY });
    work = await mkdtemp(join(tmpdir(), 'authproxy-parser-audit-')); audit = join(work, 'audit.log');
    sidecar = await startSidecar(['--upstream', app.upstream, '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
      '--policies', policies, '--audit-log', audit, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0',
      '--plaintext-listen', '127.0.0.1:0', '--max-header-bytes', '4k', '--header-timeout', '1s']);
    plaintextPort = Number(String((await sidecar.waitForLog('ready')).plaintext).split(':').at(-1));
    const config = await fetch(`http://127.0.0.1:${sidecar.adminPort}/config`).then((r) => r.json()) as { policy: { digest: string } };
    digest = config.policy.digest;
  });
  after(async () => {
    await sidecar?.stop(); await app?.close(); await pki?.cleanup();
    await rm(policies, { recursive: true, force: true }); await rm(work, { recursive: true, force: true });
  });

  /**
   * The one record of the refusal the caller got: found by the request id of its answer (body and
   * header carry the same one), and nothing in it but what the refusal and the connection say.
   */
  async function assertAudited(raw: string, expected: { status: number; code: string; principal: string | null; address?: string; tls: 'mtls' | 'plaintext'; boundary: string | null }): Promise<void> {
    const r = parseRefusal(raw);
    assert.equal(r.status, expected.status);
    assert.equal(r.body.error, expected.code);
    assert.match(r.body.requestId, /^[0-9a-f-]{36}$/);
    assert.equal(r.requestIdHeader, r.body.requestId, 'the x-request-id header and the body name the same request');
    const line = await waitForAuditLine(audit, (l) => l.requestId === r.body.requestId);
    assert.ok(line, `an audit record with requestId ${r.body.requestId}`);
    const { time, ...rest } = line;
    assert.match(String(time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.deepEqual(rest, {
      requestId: r.body.requestId, direction: 'inbound', event: 'request',
      peer: { principal: expected.principal, address: expected.address ?? '127.0.0.1' }, method: null, path: null,
      decision: 'deny', status: expected.status, code: expected.code, policy: null, rule: null,
      reason: r.body.message, policyDigest: digest, tls: expected.tls, boundary: expected.boundary,
    });
    assert.equal((await auditLines(audit)).filter((l) => l.requestId === r.body.requestId).length, 1, 'one record per refusal');
  }

  it('audits a malformed request line on the mTLS listener as a 400 bad_request deny naming the client certificate', async () => {
    const before = app.seen.length;
    const raw = await rawTls(sidecar.inboundPort, `NOT A REQUEST\r\nAuthorization: ${SECRET}\r\n\r\n`, pki.ca, pki.clients.billing);
    await assertAudited(raw, { status: 400, code: 'bad_request', principal: BILLING_ID, tls: 'mtls', boundary: null });
    assert.equal(app.seen.length, before);
  });

  it('audits headers over --max-header-bytes on HTTP/1.1 as a 431 headers_too_large deny naming the client certificate', async () => {
    const before = app.seen.length;
    const raw = await rawTls(sidecar.inboundPort,
      `GET /orders HTTP/1.1\r\nHost: localhost\r\nAuthorization: ${SECRET}\r\nx-big: ${'a'.repeat(8 * 1024)}\r\n\r\n`, pki.ca, pki.clients.shop);
    assert.match(raw, /4096 bytes \(--max-header-bytes\)/);
    await assertAudited(raw, { status: 431, code: 'headers_too_large', principal: SHOP_ID, tls: 'mtls', boundary: null });
    assert.equal(app.seen.length, before);
  });

  it('audits a request whose headers never finish as a 408 request_timeout deny naming the client certificate', async () => {
    const before = app.seen.length;
    const slow = tlsConnect({ host: '127.0.0.1', port: sidecar.inboundPort, ...tlsOptions(pki.ca, pki.clients.billing) });
    await once(slow, 'secureConnect');
    let raw = '';
    slow.setEncoding('utf8').on('data', (d: string) => { raw += d; });
    const closed = once(slow, 'close');
    slow.write(`GET /orders HTTP/1.1\r\nHost: localhost\r\nAuthorization: ${SECRET}\r\n`);
    await closed;
    assert.match(raw, /--header-timeout/);
    await assertAudited(raw, { status: 408, code: 'request_timeout', principal: BILLING_ID, tls: 'mtls', boundary: null });
    assert.equal(app.seen.length, before);
  });

  /**
   * Node's parser reports a connection that ends mid-body as a parse error (HPE_INVALID_EOF_STATE);
   * it is the client leaving a request the handler already has, not a request of its own.
   */
  for (const c of [
    { name: 'a small body (read whole first)', path: '/upload/left-small', declared: 1000 },
    { name: 'a streamed body', path: '/upload/left-large', declared: 200_000 },
  ]) {
    it(`a client that leaves in the middle of ${c.name} leaves its request's record alone, not a second 400 bad_request`, async () => {
      const before = (await auditLines(audit)).length;
      const s = tlsConnect({ host: '127.0.0.1', port: sidecar.inboundPort, ALPNProtocols: ['http/1.1'], ...tlsOptions(pki.ca, pki.clients.billing) });
      await once(s, 'secureConnect');
      let raw = '';
      s.setEncoding('utf8').on('data', (d: string) => { raw += d; });
      s.write(`POST ${c.path} HTTP/1.1\r\nHost: localhost\r\ncontent-length: ${c.declared}\r\nx-request-id: ${c.path.slice(8)}\r\n\r\n`);
      s.write('x'.repeat(500));
      await new Promise((r) => setTimeout(r, 300));
      const closed = once(s, 'close');
      s.end();
      await closed;
      await waitForAuditLine(audit, (l) => l.requestId === c.path.slice(8));
      await new Promise((r) => setTimeout(r, 300));
      const added = (await auditLines(audit)).slice(before);
      assert.deepEqual(added.map((l) => [l.requestId, l.path, l.decision, l.status]), [[c.path.slice(8), c.path, 'allow', null]]);
      assert.equal(raw, '', 'nothing is answered to a client that left');
    });
  }

  it('a small body still incomplete at its deadline is audited as its 408 alone, also once the client leaves', async () => {
    const before = (await auditLines(audit)).length;
    const s = tlsConnect({ host: '127.0.0.1', port: sidecar.inboundPort, ALPNProtocols: ['http/1.1'], ...tlsOptions(pki.ca, pki.clients.billing) });
    await once(s, 'secureConnect');
    let raw = '';
    s.setEncoding('utf8').on('data', (d: string) => { raw += d; });
    s.write('POST /upload/stalled-then-gone HTTP/1.1\r\nHost: localhost\r\ncontent-length: 1000\r\nx-authproxy-deadline: 300\r\nx-request-id: stalled-then-gone\r\n\r\nabc');
    await waitForAuditLine(audit, (l) => l.requestId === 'stalled-then-gone');
    const closed = once(s, 'close');
    s.end();
    await closed;
    await new Promise((r) => setTimeout(r, 300));
    const added = (await auditLines(audit)).slice(before);
    assert.deepEqual(added.map((l) => [l.requestId, l.decision, l.status, l.code]), [['stalled-then-gone', 'deny', 408, 'request_timeout']]);
    assert.equal((raw.match(/^HTTP\/1\.1 /gm) ?? []).length, 1, 'one answer, the 408');
  });

  it('a malformed request pipelined behind an answer being written is refused after that answer, never inside it', async () => {
    const s = tlsConnect({ host: '127.0.0.1', port: sidecar.inboundPort, ALPNProtocols: ['http/1.1'], ...tlsOptions(pki.ca, pki.clients.billing) });
    await once(s, 'secureConnect');
    let raw = '';
    s.setEncoding('utf8').on('data', (d: string) => { raw += d; });
    const closed = once(s, 'close');
    s.write('GET /stream HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await new Promise((r) => setTimeout(r, 200));
    s.write(`NOT A REQUEST\r\nAuthorization: ${SECRET}\r\n\r\n`);
    s.write('more junk\r\n');
    await closed;
    const split = raw.indexOf('first-half|second!!!');
    assert.ok(split > 0 && raw.startsWith('HTTP/1.1 200 '), `the first answer whole, got: ${JSON.stringify(raw)}`);
    await assertAudited(raw.slice(split + 'first-half|second!!!'.length),
      { status: 400, code: 'bad_request', principal: BILLING_ID, tls: 'mtls', boundary: null });
  });

  /** What a plaintext caller at `from` gets for `head`, read until the sidecar closes the connection. */
  async function plaintext(from: string, head: string): Promise<string> {
    const s = tcpConnect({ host: '127.0.0.1', port: plaintextPort, localAddress: from });
    let raw = '';
    s.setEncoding('utf8').on('data', (d: string) => { raw += d; });
    const closed = once(s, 'close');
    s.write(head);
    await closed;
    return raw;
  }
  const MALFORMED = `GET /orders HTTP/1.1\r\nHost: localhost\r\nAuthorization: ${SECRET}\r\nnot a header line\r\n\r\n`;

  it('audits a malformed request on the plaintext listener as a 400 bad_request deny naming the trust boundary', async () => {
    const before = app.seen.length;
    const raw = await plaintext(INSIDE, MALFORMED);
    await assertAudited(raw, { status: 400, code: 'bad_request', principal: 'boundary:cluster', address: INSIDE, tls: 'plaintext', boundary: 'cluster' });
    assert.equal(app.seen.length, before);
  });

  it('audits a malformed plaintext request from outside every boundary with no principal and boundary outside', async () => {
    const raw = await plaintext(OUTSIDE, MALFORMED);
    await assertAudited(raw, { status: 400, code: 'bad_request', principal: null, address: OUTSIDE, tls: 'plaintext', boundary: 'outside' });
  });
});
