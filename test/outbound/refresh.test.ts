// Token lifetime end to end, with the real issuer issuing 6-second tokens: the sidecar refreshes
// ahead of expiry while requests keep flowing, and when the issuer stops it keeps sending the
// cached token until that token's expiry (minus the clock skew), then refuses with 503. And with
// the default clock skew (30 s), which leaves a short-lived token only half its life usable, the
// refresh still comes ahead of the usable end.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import type { TestPki } from '../support/pki.ts';
import type { TestApp } from '../support/app.ts';
import type { Sidecar } from '../support/sidecar.ts';
import { LOOPBACK_BOUNDARY } from '../support/policy-dir.ts';
import { startOutboundFixture, type OutboundFixture } from './fixture.ts';
import { startIssuerProcess, viaProxy, echoed, bearer, type IssuerProcess } from '../tokens/support.ts';

const ROUTES = `apiVersion: authproxy.dev/v1
kind: OutboundRoute
metadata: { name: payments }
spec:
  hosts: ["127.0.0.1"]
  token: { audience: "api://payments" }
  tls: none
`;
const POLICIES = { 'routes.yaml': ROUTES, 'boundary.yaml': LOOPBACK_BOUNDARY };

interface Sample { at: number; status: number; token: string; code: string | null }

async function issuerWithTtl(pki: TestPki, work: string, ttl: string): Promise<IssuerProcess> {
  await writeFile(join(work, 'clients.yaml'), `clients:\n  orders:\n    auth: private_key_jwt\n    certificate: ${pki.server.cert}\n    audiences:\n      api://payments: {}\n`);
  return startIssuerProcess(['--clients', join(work, 'clients.yaml'), '--token-ttl', ttl]);
}

function sampler(sidecar: () => Sidecar, app: () => TestApp): () => Promise<Sample> {
  return async () => {
    const at = Date.now();
    const r = await viaProxy(sidecar().outboundPort, `http://127.0.0.1:${new URL(app().upstream).port}/pay`);
    return r.status === 200
      ? { at, status: 200, token: bearer(echoed(r).headers), code: null }
      : { at, status: r.status, token: '', code: (JSON.parse(r.body) as { error: string }).error };
  };
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('token refresh ahead and issuer outage', () => {
  let fixture: OutboundFixture; let app: TestApp; let issuer: IssuerProcess; let sidecar: Sidecar;

  before(async () => {
    fixture = await startOutboundFixture({
      name: 'refresh', policies: POLICIES,
      issuer: (pki, work) => issuerWithTtl(pki, work, '6s'),
      sidecarArgs: () => ['--client-auth', 'private_key_jwt', '--token-refresh-fraction', '0.5', '--clock-skew', '1s'],
    });
    ({ app, issuer, sidecar } = fixture);
  });
  after(() => fixture?.close());

  const sample = sampler(() => sidecar, () => app);
  let second = '';

  it('refreshes the token ahead of its expiry while requests keep being served with the old one', async () => {
    const samples: Sample[] = [await sample()];
    const first = samples[0]!.token;
    assert.ok(first);
    while (samples.at(-1)!.token === first && Date.now() - samples[0]!.at < 6000) { await sleep(100); samples.push(await sample()); }
    assert.ok(samples.every((s) => s.status === 200), 'no request failed or waited out a refresh');
    second = samples.at(-1)!.token;
    assert.notEqual(second, first, 'a new token arrived');
    assert.equal(issuer.issued(), 2);
    const a = decodeJwt(first); const b = decodeJwt(second);
    assert.equal(a.exp! - a.iat!, 6);
    // Refreshed at half the usable life (about 5 s): well before the first token expired.
    assert.ok(b.iat! <= a.exp! - 2, `refreshed at iat ${b.iat}, first token expires at ${a.exp}`);
    assert.ok(samples.filter((s) => s.token === first).length >= 10, 'the first token was served up to the refresh');
    await sidecar.waitForLog(/token obtained/);
  });

  it('with the issuer stopped the cached token is used until expiry minus skew, then 503 token_unavailable', async () => {
    await issuer.stop();
    const exp = decodeJwt(second).exp! * 1000;
    const arrivalsAtStop = app.seen.length;
    const samples: Sample[] = [];
    while (Date.now() < exp + 1500) { samples.push(await sample()); await sleep(100); }
    const ok = samples.filter((s) => s.status === 200);
    const refused = samples.filter((s) => s.status !== 200);
    assert.ok(ok.length >= 5, 'the cached token kept working during the outage');
    assert.ok(ok.every((s) => s.token === second));
    assert.ok(ok.every((s) => s.at < exp - 1000 + 100), 'never sent past expiry minus the 1 s clock skew');
    assert.ok(ok.some((s) => s.at >= exp - 2000), 'served past its refresh point, through failed refreshes');
    assert.ok(refused.length >= 5, 'then refused');
    assert.ok(refused.every((s) => s.status === 503 && s.code === 'token_unavailable'));
    const firstRefusal = samples.indexOf(refused[0]!);
    assert.ok(samples.slice(firstRefusal).every((s) => s.status === 503), 'once expired, never served again');
    assert.equal(app.seen.length, arrivalsAtStop + ok.length, 'refused requests never left the pod');
    const metrics = await (await fetch(`http://127.0.0.1:${sidecar.adminPort}/metrics`)).text();
    assert.match(metrics, /authproxy_token_cache_total\{event="fetch_failed"\} [1-9]/);
    await sidecar.waitForLog(/token request failed/);
  });
});

describe('refresh ahead of a short-lived token with the default clock skew and refresh fraction', () => {
  let fixture: OutboundFixture;
  before(async () => {
    // 16 s tokens: the 30 s skew is capped at half the lifetime, so each is usable for about 8 s,
    // and the refresh-ahead window before that is over a second wide. With 6 s tokens it was 0.6 s,
    // and on a loaded host (the whole suite on two cores) no sample fell in it: a second miss.
    fixture = await startOutboundFixture({
      name: 'refresh-default', policies: POLICIES,
      issuer: (pki, work) => issuerWithTtl(pki, work, '16s'),
      sidecarArgs: () => ['--client-auth', 'private_key_jwt'],
    });
  });
  after(() => fixture?.close());

  it('fetches the next token before the first one stops being usable, and no request waits for it', async () => {
    const { issuer, sidecar } = fixture;
    const sample = sampler(() => fixture.sidecar, () => fixture.app);
    const samples: Sample[] = [await sample()];
    const first = samples[0]!.token;
    assert.ok(first);
    while (samples.at(-1)!.token === first && Date.now() - samples[0]!.at < 16_000) { await sleep(100); samples.push(await sample()); }
    assert.ok(samples.every((s) => s.status === 200), JSON.stringify(samples.filter((s) => s.status !== 200)));
    assert.notEqual(samples.at(-1)!.token, first, 'a new token arrived');
    assert.equal(issuer.issued(), 2);
    assert.ok(samples.filter((s) => s.token === first).length >= 10, 'the first token was served from the cache up to the refresh');
    const metrics = await (await fetch(`http://127.0.0.1:${sidecar.adminPort}/metrics`)).text();
    const count = (event: string): number => Number(new RegExp(`authproxy_token_cache_total\\{event="${event}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0);
    // Without refresh ahead, the first request after the usable end waits for the issuer: a second miss.
    assert.equal(count('miss'), 1, `only the very first request waited for the issuer:\n${metrics}`);
    assert.ok(count('stale') >= 1, 'served from the cache past the refresh point while the refresh ran');
    assert.equal(count('fetch'), 2);
    const obtained = await sidecar.waitForLog(/token obtained/);
    assert.ok(Number(obtained.refreshInSeconds) < Number(obtained.usableForSeconds), JSON.stringify(obtained));
  });
});
