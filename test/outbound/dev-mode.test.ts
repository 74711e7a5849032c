// Dev mode brings its own token issuer: with nothing but --upstream and a policies directory
// holding an OutboundRoute, the app's outbound calls carry tokens from the embedded dev issuer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { startApp } from '../support/app.ts';
import { startSidecar } from '../support/sidecar.ts';
import { viaProxy, echoed, bearer } from '../tokens/support.ts';

test('dev mode starts the embedded issuer and the outbound path gets tokens from it', async () => {
  const cwd = await mkdtemp(join(tmpdir(), 'authproxy-devmode-'));
  const app = await startApp();
  await mkdir(join(cwd, 'policies'));
  await writeFile(join(cwd, 'policies', 'routes.yaml'), `apiVersion: authproxy.dev/v1
kind: OutboundRoute
metadata: { name: app }
spec:
  hosts: ["127.0.0.1"]
  token: { audience: "api://payments" }
  tls: none
---
apiVersion: authproxy.dev/v1
kind: TrustBoundary
metadata: { name: loopback }
spec: { cidrs: ["127.0.0.0/8"] }
`);
  const s = await startSidecar(['--upstream', app.upstream, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'], { cwd });
  try {
    // The banner follows the ready log line.
    await s.waitForStdout(/try it/);
    const issuerUrl = /token issuer\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(s.stdout())?.[1];
    assert.ok(issuerUrl, `the banner names the issuer:\n${s.stdout()}`);
    const r = await viaProxy(s.outboundPort, `http://127.0.0.1:${new URL(app.upstream).port}/x`);
    assert.equal(r.status, 200, r.body);
    const claims = decodeJwt(bearer(echoed(r).headers));
    assert.equal(claims.iss, issuerUrl);
    assert.equal(claims.aud, 'api://payments');
    assert.equal(claims.client_id, 'spiffe://example.org/ns/dev/sa/app');
  } finally {
    assert.equal(await s.stop(), 0);
    await app.close();
    await rm(cwd, { recursive: true, force: true });
  }
});
