// The inbound path end to end: the real CLI, real mTLS handshakes with generated certificates,
// real clients (Node https, curl, openssl s_client, raw TLS), and an app that records arrivals.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { makePki, BILLING_ID, SHOP_ID, type ClientFiles, type TestPki } from '../support/pki.ts';
import { startApp, type TestApp } from '../support/app.ts';
import type { Sidecar } from '../support/sidecar.ts';
import { startPolicedSidecar } from '../support/policed-sidecar.ts';
import { httpsGet, rawTls, statusOf, curl } from '../support/clients.ts';
import { waitForAuditLine, type AuditLine } from '../support/audit.ts';

describe('inbound mTLS path', () => {
  let pki: TestPki; let app: TestApp; let sidecar: Sidecar; let auditFile: string; let closeSidecar: () => Promise<void>;

  before(async () => {
    pki = await makePki();
    app = await startApp();
    ({ sidecar, auditFile, close: closeSidecar } = await startPolicedSidecar(pki, app));
  });
  after(async () => {
    await closeSidecar?.();
    await app?.close();
    await pki?.cleanup();
  });

  const get = (path: string, who: keyof TestPki['clients'], headers?: Record<string, string>) =>
    httpsGet(sidecar.inboundPort, path, pki.ca, pki.clients[who], headers ? { headers } : {});
  const raw = (target: string, who: keyof TestPki['clients'] = 'billing', extra = '') =>
    rawTls(sidecar.inboundPort, `GET ${target} HTTP/1.1\r\nHost: localhost\r\n${extra}Connection: close\r\n\r\n`, pki.ca, pki.clients[who]);
  const auditLine = (match: (l: AuditLine) => boolean) => waitForAuditLine(auditFile, match);
  const arrivals = (): number => app.seen.length;

  it('forwards an allowed request with the verified identity in x-forwarded-client-cert and x-authproxy-principal', async () => {
    const r = await get('/orders/42', 'billing');
    assert.equal(r.status, 200);
    const seen = JSON.parse(r.body) as { url: string; headers: Record<string, string> };
    assert.equal(seen.url, '/orders/42');
    assert.equal(seen.headers['x-authproxy-principal'], BILLING_ID);
    assert.match(seen.headers['x-forwarded-client-cert']!, new RegExp(`^Hash=[0-9a-f]{64};URI=${BILLING_ID.replaceAll('.', '\\.')};Subject="CN=api"$`));
    assert.match(seen.headers['x-request-id']!, /^[0-9a-f-]{36}$/);
    assert.equal(r.headers['x-request-id'], undefined, 'the app did not set it, so the sidecar does not invent a response header');
  });

  it('removes identity headers a caller tries to spoof before adding its own', async () => {
    const r = await get('/orders', 'billing', {
      'x-forwarded-client-cert': 'Hash=00;URI=spiffe://example.org/ns/ops/sa/root',
      'x-authproxy-principal': 'spiffe://example.org/ns/ops/sa/root',
      'X-Authproxy-Claims': '{"roles":["admin"]}',
      'x-authproxy-anything': 'x',
    });
    const h = (JSON.parse(r.body) as { headers: Record<string, string> }).headers;
    assert.equal(h['x-authproxy-principal'], BILLING_ID);
    assert.ok(!h['x-forwarded-client-cert']!.includes('ops'), 'spoofed XFCC must not survive');
    assert.equal(h['x-authproxy-claims'], undefined);
    assert.equal(h['x-authproxy-anything'], undefined);
  });

  it('keeps a sane caller request id and passes it to the app', async () => {
    const r = await get('/orders', 'billing', { 'x-request-id': 'trace-abc.123' });
    assert.equal((JSON.parse(r.body) as { headers: Record<string, string> }).headers['x-request-id'], 'trace-abc.123');
  });

  it('denies a principal no rule allows with 403 forbidden, audits it, and the app never sees it', async () => {
    const before = arrivals();
    const r = await get('/payments', 'shop', { 'x-request-id': 'deny-1' });
    assert.equal(r.status, 403);
    assert.deepEqual(JSON.parse(r.body), { error: 'forbidden', message: 'denied by policy', requestId: 'deny-1' });
    assert.equal(arrivals(), before);
    const line = await auditLine((l) => l.requestId === 'deny-1');
    assert.ok(line, 'deny is audited');
    assert.equal(line.decision, 'deny');
    assert.equal(line.status, 403);
    assert.deepEqual(line.peer, { principal: SHOP_ID, address: '127.0.0.1' });
    assert.equal(line.path, '/payments');
    assert.match(String(line.policyDigest), /^[0-9a-f]{64}$/);
  });

  it('audits an allow with the rule and policy that decided it', async () => {
    await get('/orders/7', 'shop', { 'x-request-id': 'allow-1' });
    const line = await auditLine((l) => l.requestId === 'allow-1');
    assert.equal(line?.decision, 'allow');
    assert.equal(line?.rule, 'shop-reads-orders');
    assert.equal(line?.policy, 'orders');
    assert.equal(line?.method, 'GET');
  });

  it('lets a matching deny win over an allow for the same principal', async () => {
    const before = arrivals();
    const r = await get('/admin/users', 'billing');
    assert.equal(r.status, 403);
    assert.equal(arrivals(), before);
  });

  it('uses the first DNS SAN as the principal when the certificate has no SPIFFE ID', async () => {
    const r = await get('/legacy', 'dnsOnly');
    assert.equal(r.status, 200);
    assert.equal((JSON.parse(r.body) as { headers: Record<string, string> }).headers['x-authproxy-principal'], 'legacy.internal');
  });

  describe('path normalization stops the bypass tricks', () => {
    const cases: Array<[string, number, string]> = [
      ['/orders/..%2Fadmin/x', 400, 'encoded slash'],
      ['/orders/..%2fadmin/x', 400, 'encoded slash, lowercase hex'],
      ['/orders%5c..%5cadmin', 400, 'encoded backslash'],
      ['/orders/%00', 400, 'encoded NUL'],
      ['/../admin/x', 400, 'escapes the root'],
      ['/orders/%zz', 400, 'malformed escape'],
      ['/admin;x=y/users', 403, 'path parameters'],
      ['/admin;x=y', 403, 'path parameters on the last segment'],
      ['/%61dmin/users', 403, 'encoded unreserved letter'],
      ['/orders/%2e%2e/admin/users', 403, 'encoded dot-segments'],
      ['/orders/../admin/users', 403, 'dot-segments'],
      ['//admin//users', 403, 'repeated slashes'],
      ['/./admin/users', 403, 'single dot segment'],
      ['/admin/.', 403, 'trailing dot'],
      ['/admin/', 403, 'trailing slash'],
      ['http://localhost/admin/users', 403, 'absolute-form target'],
    ];
    for (const [target, status, what] of cases) {
      it(`answers ${status} to ${target} (${what}) without reaching the app`, async () => {
        const before = arrivals();
        const r = await raw(target);
        assert.equal(statusOf(r), status, r);
        assert.equal(arrivals(), before);
        if (status === 400) assert.match(r, /"error":"bad_path"/);
      });
    }

    it('matches paths case-sensitively, so /ORDERS is not /orders', async () => {
      const before = arrivals();
      assert.equal(statusOf(await raw('/ORDERS', 'shop')), 403);
      assert.equal(arrivals(), before);
    });

    it('judges by the path whatever Host says', async () => {
      assert.equal(statusOf(await rawTls(sidecar.inboundPort, 'GET /admin/x HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n', pki.ca, pki.clients.billing)), 403);
      assert.equal(statusOf(await rawTls(sidecar.inboundPort, 'GET /orders HTTP/1.1\r\nHost: admin.local/admin\r\nConnection: close\r\n\r\n', pki.ca, pki.clients.shop)), 200);
    });

    it('sends the app the normalized path and keeps the query', async () => {
      const r = await raw('/orders/./a//b/%7Euser/../c?q=%2F1');
      assert.equal(statusOf(r), 200);
      assert.match(r, /"url":"\/orders\/a\/b\/c\?q=%2F1"/);
    });

    it('forwards an absolute-form target as the origin-form path', async () => {
      const r = await raw('http://localhost/orders/9', 'shop');
      assert.equal(statusOf(r), 200);
      assert.match(r, /"url":"\/orders\/9"/);
    });
  });

  describe('refuses peers at the TLS layer', () => {
    const refusedWith = async (args: string[]): Promise<void> => {
      const before = arrivals();
      const r = await curl(['--cacert', pki.ca, ...args, `https://localhost:${sidecar.inboundPort}/orders`]);
      assert.notEqual(r.code, 0, `curl should fail, got: ${r.stdout}`);
      assert.equal(arrivals(), before, 'the app must not be reached');
    };
    it('refuses a client with no certificate', () => refusedWith([]));
    it('refuses a certificate from another CA', () => refusedWith(['--cert', pki.clients.otherCa.cert, '--key', pki.clients.otherCa.key]));
    it('refuses an expired certificate', () => refusedWith(['--cert', pki.clients.expired.cert, '--key', pki.clients.expired.key]));
    it('refuses a CA certificate used as a leaf', () => refusedWith(['--cert', pki.clients.caAsLeaf.cert, '--key', pki.clients.caAsLeaf.key]));
    it('refuses an SVID with two URI SANs', () => refusedWith(['--cert', pki.clients.twoUris.cert, '--key', pki.clients.twoUris.key]));
    it('refuses a SPIFFE ID from a trust domain that is not accepted', () => refusedWith(['--cert', pki.clients.foreignDomain.cert, '--key', pki.clients.foreignDomain.key]));

    it('audits an X.509-SVID refusal with its reason', async () => {
      await curl(['--cacert', pki.ca, '--cert', pki.clients.twoUris.cert, '--key', pki.clients.twoUris.key, `https://localhost:${sidecar.inboundPort}/`]);
      const line = await auditLine((l) => l.event === 'handshake' && /exactly one URI SAN/.test(String(l.reason)));
      assert.ok(line, 'the SVID refusal is audited with its reason');
    });

    it('completes the handshake for openssl s_client with a valid certificate and refuses it without one', async () => {
      const s = (args: string[]): Promise<string> => new Promise((resolve) => {
        const p = execFile('openssl', ['s_client', '-connect', `127.0.0.1:${sidecar.inboundPort}`, '-CAfile', pki.ca, '-quiet', ...args],
          { timeout: 10_000 }, (_e, stdout, stderr) => resolve(stdout + stderr));
        p.stdin!.end('GET /orders HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
      });
      assert.match(await s(['-cert', pki.clients.billing.cert, '-key', pki.clients.billing.key]), /HTTP\/1\.1 200/);
      const refused = await s([]);
      assert.doesNotMatch(refused, /HTTP\/1\.1 200/);
      assert.match(refused, /certificate required|alert|error/i);
    });
  });

  describe('refuses certificates whose names given as text pass for a SPIFFE ID or carry XFCC syntax', () => {
    let cnSpiffe: ClientFiles; let cnForeign: ClientFiles; let dnsSpiffe: ClientFiles; let dnsInjection: ClientFiles;
    before(async () => {
      // From the trusted CA, no URI SAN. TEST_POLICY allows BILLING_ID everything and the DNS principal legacy.internal /legacy.
      [cnSpiffe, cnForeign, dnsSpiffe, dnsInjection] = await Promise.all([
        pki.issue('cn-spiffe', { commonName: BILLING_ID }),
        pki.issue('cn-foreign', { commonName: 'spiffe://evil.example/ns/billing/sa/api' }),
        pki.issue('dns-spiffe', { dnsNames: [BILLING_ID], commonName: 'x' }),
        pki.issue('dns-injection', { dnsNames: ['legacy.internal', `legacy.internal;URI=${BILLING_ID}`], commonName: 'legacy' }),
      ]);
    });

    const refusals = async (kind: string): Promise<number> => {
      const metrics = await fetch(`http://127.0.0.1:${sidecar.adminPort}/metrics`).then((r) => r.text());
      return Number(new RegExp(`^authproxy_tls_handshake_refusals_total\\{reason="${kind}"\\} (\\d+)$`, 'm').exec(metrics)?.[1] ?? 0);
    };
    /** The connection is cut before any request is read, the app sees nothing, and the refusal is counted and audited. */
    const refusedAtHandshake = async (client: ClientFiles, path: string, kind: string, reason: string): Promise<void> => {
      const seen = arrivals(); const counted = await refusals(kind);
      await assert.rejects(httpsGet(sidecar.inboundPort, path, pki.ca, client), 'the connection is closed instead of answered');
      assert.equal(arrivals(), seen, 'the app must not be reached');
      assert.equal(await refusals(kind), counted + 1, `counted as ${kind}`);
      assert.ok(await auditLine((l) => l.event === 'handshake' && l.reason === reason), `refusal audited with the reason: ${reason}`);
    };

    it('refuses a certificate whose CN is spelled like an allowed SPIFFE ID and that has no URI SAN', () =>
      refusedAtHandshake(cnSpiffe, '/orders', 'lookalike_name', `subject CN "${BILLING_ID}" passes for a SPIFFE ID, which is only taken from a URI SAN`));

    it('refuses a CN spelled like a SPIFFE ID of a trust domain that is not accepted', () =>
      refusedAtHandshake(cnForeign, '/orders', 'lookalike_name', 'subject CN "spiffe://evil.example/ns/billing/sa/api" passes for a SPIFFE ID, which is only taken from a URI SAN'));

    it('refuses a DNS SAN spelled like an allowed SPIFFE ID', () =>
      refusedAtHandshake(dnsSpiffe, '/orders', 'lookalike_name', `DNS SAN "${BILLING_ID}" passes for a SPIFFE ID, which is only taken from a URI SAN`));

    it('never hands the app an x-forwarded-client-cert with a URI smuggled in through a DNS SAN', () =>
      refusedAtHandshake(dnsInjection, '/legacy', 'bad_dns_san',
        `DNS SAN "legacy.internal;URI=${BILLING_ID}" is not a DNS name (letters, digits, '-', '_' and '.', optionally under a leading '*.')`));
  });

  it('answers 431 headers_too_large naming the limit and its flag', async () => {
    const before = arrivals();
    const r = await raw('/orders', 'billing', `x-big: ${'a'.repeat(70 * 1024)}\r\n`);
    assert.equal(statusOf(r), 431);
    assert.match(r, /"error":"headers_too_large"/);
    assert.match(r, /65536 bytes \(--max-header-bytes\)/);
    assert.equal(arrivals(), before);
  });

  it('passes a 32 KB header (the size of a large token) to the app', async () => {
    const r = await get('/orders', 'billing', { 'x-large': 'b'.repeat(32 * 1024) });
    assert.equal(r.status, 200);
    assert.equal((JSON.parse(r.body) as { headers: Record<string, string> }).headers['x-large']!.length, 32 * 1024);
  });

  it('serves health, readiness, Prometheus metrics and a config view without key material', async () => {
    const admin = (p: string): Promise<{ status: number; body: string }> => fetch(`http://127.0.0.1:${sidecar.adminPort}${p}`).then(async (r) => ({ status: r.status, body: await r.text() }));
    assert.equal((await admin('/healthz')).status, 200);
    assert.equal((await admin('/readyz')).status, 200);
    const metrics = (await admin('/metrics')).body;
    assert.match(metrics, /authproxy_requests_total\{direction="inbound",decision="deny",status="403"\} [1-9]/);
    assert.match(metrics, /authproxy_requests_total\{direction="inbound",decision="allow",status="200"\} [1-9]/);
    assert.match(metrics, /authproxy_request_duration_seconds_bucket\{direction="inbound",le="\+Inf"\} [1-9]/);
    assert.match(metrics, /authproxy_certificate_expiry_seconds\{principal="spiffe:\/\/example\.org\/ns\/prod\/sa\/orders"\} \d+/);
    const config = (await admin('/config')).body;
    const parsed = JSON.parse(config) as { certificate: { principal: string }; policy: { digest: string } };
    assert.equal(parsed.certificate.principal, 'spiffe://example.org/ns/prod/sa/orders');
    assert.match(parsed.policy.digest, /^[0-9a-f]{64}$/);
    const key = await readFile(pki.server.key, 'utf8');
    assert.ok(!config.includes('PRIVATE KEY') && !config.includes(key.split('\n')[1]!), 'no key material in /config');
  });
});
