// The token cache's rules, on a clock the test moves: single flight, refresh ahead with jitter,
// serving through an issuer outage until expiry minus skew, backoff, JIT isolation, bounds.
// The fetcher stands in for the issuer (the end-to-end tests use the real one); what is under
// test here is the cache's timing logic, which needs exact control of time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenCache } from '../../src/tokens/cache.ts';
import { TokenUnavailable, type IssuedToken, type TokenRequest } from '../../src/tokens/client.ts';

interface Harness {
  cache: TokenCache;
  clock: { t: number };
  calls: TokenRequest[];
  /** Pending issuer answers, resolved by the test. */
  pending: Array<{ resolve: (t: IssuedToken) => void; reject: (e: Error) => void }>;
  mode: { auto: IssuedToken | Error | null };
  events: string[];
}

function harness(opts: { refreshFraction?: number; clockSkewMs?: number; max?: number; random?: () => number } = {}): Harness {
  const clock = { t: 1_000_000 };
  const calls: TokenRequest[] = [];
  const pending: Harness['pending'] = [];
  const mode: Harness['mode'] = { auto: null };
  const events: string[] = [];
  const cache = new TokenCache((req) => {
    calls.push(req);
    if (mode.auto instanceof Error) return Promise.reject(mode.auto);
    if (mode.auto) return Promise.resolve(mode.auto);
    return new Promise((resolve, reject) => pending.push({ resolve, reject }));
  }, {
    max: opts.max ?? 100, refreshFraction: opts.refreshFraction ?? 0.8, clockSkewMs: opts.clockSkewMs ?? 30_000,
    now: () => clock.t, ttlResolutionMs: 0, random: opts.random ?? (() => 0), onEvent: (e) => events.push(e),
  });
  return { cache, clock, calls, pending, mode, events };
}

const REQ: TokenRequest = { audience: 'api://payments', scopes: ['a', 'b'], approval: null };
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('concurrent misses for one key make exactly one issuer request and all get its token', async () => {
  const h = harness();
  const waiting = Array.from({ length: 500 }, () => h.cache.obtain('k', REQ));
  await tick();
  assert.equal(h.calls.length, 1);
  h.pending[0]!.resolve({ accessToken: 'tok-1', lifetimeMs: 300_000 });
  const got = await Promise.all(waiting);
  assert.ok(got.every((t) => t.token === 'tok-1'));
  assert.equal(h.cache.peek('k')?.token, 'tok-1', 'later lookups are served from the cache');
  assert.equal(h.calls.length, 1);
});

test('a token is refreshed ahead at the configured fraction of its usable life while the old one keeps being served', async () => {
  const h = harness({ refreshFraction: 0.5, clockSkewMs: 30_000, random: () => 0 });
  h.mode.auto = { accessToken: 'old', lifetimeMs: 100_000 };
  await h.cache.obtain('k', REQ);
  h.clock.t += 34_000; // usable for 70 s: the refresh point is at 35 s
  assert.equal(h.cache.peek('k')?.token, 'old', 'before the refresh point: a plain hit');
  h.clock.t += 2_000;
  assert.equal(h.cache.peek('k'), undefined, 'past the refresh point the fast path steps aside');
  h.mode.auto = null;
  const served = await h.cache.obtain('k', REQ);
  assert.equal(served.token, 'old', 'the caller does not wait for the refresh');
  assert.equal(h.calls.length, 2, 'one background refresh started');
  await h.cache.obtain('k', REQ);
  assert.equal(h.calls.length, 2, 'a second caller joins the running refresh');
  h.pending[0]!.resolve({ accessToken: 'new', lifetimeMs: 100_000 });
  await tick();
  assert.equal(h.cache.peek('k')?.token, 'new');
  assert.ok(h.events.includes('stale'));
});

test('the refresh point is spread with jitter of up to a tenth of the usable life earlier', async () => {
  // Usable for 99 s (100 s minus the 1 s skew): 0.8, 0.75 and 0.7 of that.
  for (const [random, expected] of [[0, 79_200], [0.5, 74_250], [0.999999, 69_300]] as const) {
    const h = harness({ refreshFraction: 0.8, clockSkewMs: 1_000, random: () => random });
    h.mode.auto = { accessToken: 't', lifetimeMs: 100_000 };
    const t = await h.cache.obtain('k', REQ);
    assert.ok(Math.abs(t.refreshAt - t.obtainedAt - expected) < 1, `random ${random}: refresh after ${t.refreshAt - t.obtainedAt} ms`);
  }
});

test('while the issuer is down the cached token is served until expiry minus clock skew, then TokenUnavailable', async () => {
  const h = harness({ refreshFraction: 0.5, clockSkewMs: 10_000 });
  h.mode.auto = { accessToken: 'only', lifetimeMs: 100_000 };
  await h.cache.obtain('k', REQ);
  h.mode.auto = new TokenUnavailable('issuer unreachable (ECONNREFUSED)');
  for (const at of [60_000, 75_000, 89_000]) {
    h.clock.t = 1_000_000 + at;
    assert.equal((await h.cache.obtain('k', REQ)).token, 'only', `at ${at} ms the old token is still served`);
    await tick();
  }
  h.clock.t = 1_000_000 + 90_000;
  await assert.rejects(h.cache.obtain('k', REQ), (e: Error) => e instanceof TokenUnavailable && /ECONNREFUSED/.test(e.message));
});

test('after a failure the issuer is not asked again until the jittered backoff has passed, and the delay grows', async () => {
  const h = harness({ random: () => 0 });
  h.mode.auto = new TokenUnavailable('issuer unreachable (ECONNREFUSED)');
  await assert.rejects(h.cache.obtain('k', REQ));
  assert.equal(h.calls.length, 1);
  await assert.rejects(h.cache.obtain('k', REQ), /next attempt in/);
  assert.equal(h.calls.length, 1, 'inside the backoff window the request fails fast');
  h.clock.t += 250; // first delay: 500 ms ceiling, equal jitter with random 0 -> 250 ms
  await assert.rejects(h.cache.obtain('k', REQ));
  assert.equal(h.calls.length, 2);
  h.clock.t += 250;
  await assert.rejects(h.cache.obtain('k', REQ));
  assert.equal(h.calls.length, 2, 'the second delay is longer (500 ms)');
  h.clock.t += 250;
  h.mode.auto = { accessToken: 'back', lifetimeMs: 60_000 };
  assert.equal((await h.cache.obtain('k', REQ)).token, 'back');
  assert.equal(h.calls.length, 3);
});

test('a JIT token is cached only under its approval and is never refreshed ahead', async () => {
  const h = harness({ refreshFraction: 0.5, clockSkewMs: 1_000 });
  const jitA = { ...REQ, approval: 'apv_A' };
  const jitB = { ...REQ, approval: 'apv_B' };
  h.mode.auto = { accessToken: 'jit-a', lifetimeMs: 60_000 };
  assert.equal((await h.cache.obtain('k|A', jitA)).token, 'jit-a');
  h.mode.auto = { accessToken: 'plain', lifetimeMs: 60_000 };
  assert.equal((await h.cache.obtain('k', REQ)).token, 'plain', 'the plain key never sees the JIT token');
  h.mode.auto = { accessToken: 'jit-b', lifetimeMs: 60_000 };
  assert.equal((await h.cache.obtain('k|B', jitB)).token, 'jit-b', 'another approval gets its own token');
  assert.deepEqual(h.calls.map((c) => c.approval), ['apv_A', null, 'apv_B']);

  h.clock.t += 50_000; // far past half the lifetime
  assert.equal(h.cache.peek('k|A')?.token, 'jit-a', 'no refresh ahead: still a plain hit');
  assert.equal(h.calls.length, 3);
  h.clock.t += 9_500; // past expiry minus skew
  assert.equal(h.cache.peek('k|A'), undefined);
  h.mode.auto = new TokenUnavailable('issuer refused the token request: invalid_grant (approval expired)');
  await assert.rejects(h.cache.obtain('k|A', jitA), /invalid_grant/, 'an expired JIT token is never served stale');
});

test('the cache holds at most max tokens, evicting the least recently used', async () => {
  const h = harness({ max: 3 });
  h.mode.auto = { accessToken: 't', lifetimeMs: 60_000 };
  for (const k of ['a', 'b', 'c']) await h.cache.obtain(k, REQ);
  h.cache.peek('a');
  await h.cache.obtain('d', REQ);
  assert.equal(h.cache.size, 3);
  assert.equal(h.cache.peek('b'), undefined, 'b was least recently used');
  assert.ok(h.cache.peek('a') && h.cache.peek('c') && h.cache.peek('d'));
});

test('a short-lived token stays usable for at least half its life even with a larger clock skew', async () => {
  const h = harness({ clockSkewMs: 30_000 });
  h.mode.auto = { accessToken: 'short', lifetimeMs: 10_000 };
  const t = await h.cache.obtain('k', REQ);
  assert.equal(t.usableUntil - t.obtainedAt, 5_000);
  h.clock.t += 4_000;
  assert.ok(t.usableUntil > h.clock.t);
});

test('with the default skew and fraction a 60 s token is refreshed ahead, before its usable end, while it is still served', async () => {
  const h = harness({ clockSkewMs: 30_000, refreshFraction: 0.8, random: () => 0 });
  h.mode.auto = { accessToken: 'first', lifetimeMs: 60_000 };
  const t = await h.cache.obtain('k', REQ);
  assert.equal(t.usableUntil - t.obtainedAt, 30_000);
  assert.equal(t.refreshAt - t.obtainedAt, 24_000, '0.8 of the 30 s usable life');
  h.clock.t += 25_000;
  h.mode.auto = null;
  assert.equal((await h.cache.obtain('k', REQ)).token, 'first', 'served at once while the refresh runs');
  assert.equal(h.calls.length, 2);
  h.pending[0]!.resolve({ accessToken: 'second', lifetimeMs: 60_000 });
  await tick();
  assert.equal(h.cache.peek('k')?.token, 'second');
  assert.deepEqual(h.events.filter((e) => e === 'miss' || e === 'stale'), ['miss', 'stale'], 'only the very first request waited');
});

test('a token that arrives already past its usable end is a failed fetch with the reason, and is never served', async () => {
  const h = harness({ clockSkewMs: 30_000 });
  const got = h.cache.obtain('k', REQ);
  await tick();
  h.clock.t += 6_000; // the issuer took 6 s for a 10 s token, usable for 5 s
  h.pending[0]!.resolve({ accessToken: 'late', lifetimeMs: 10_000 });
  await assert.rejects(got, (e: Error) => e instanceof TokenUnavailable
    && /^the issuer answered after 6000 ms with a token usable for 5000 ms/.test(e.message));
  assert.equal(h.cache.peek('k'), undefined);
  assert.ok(h.events.includes('fetch_failed'));
  await assert.rejects(h.cache.obtain('k', REQ), /next attempt in/, 'and backs off like any failure');
});

test('the header value is the scheme and the token, or the bare token for an empty scheme', async () => {
  const h = harness();
  h.mode.auto = { accessToken: 'abc', lifetimeMs: 60_000 };
  const t = await h.cache.obtain('k', REQ);
  assert.equal(t.header('Bearer'), 'Bearer abc');
  assert.equal(t.header('Bearer'), t.header('Bearer'));
  assert.equal(t.header(''), 'abc');
});

test('cached-token lookups spread over time arm at most one clock timer per 100 ms, not one per lookup', async () => {
  // The production clock settings (no ttlResolutionMs override): each fresh clock reading inside
  // lru-cache arms a timer that expires it, and a timer that fires is one more event-loop wake-up.
  const clock = { t: 1_000_000 };
  const cache = new TokenCache(() => Promise.resolve({ accessToken: 'tok', lifetimeMs: 300_000 }), {
    max: 10, refreshFraction: 0.8, clockSkewMs: 30_000, now: () => clock.t,
  });
  await cache.obtain('k', REQ);
  const real = globalThis.setTimeout;
  let armed = 0;
  globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => { armed++; return real(...args); }) as typeof setTimeout;
  try {
    // 50 lookups 2 ms apart (500 a second): 100 ms of traffic.
    for (let i = 0; i < 50; i++) {
      clock.t += 2;
      assert.equal(cache.peek('k')?.token, 'tok');
      await new Promise((r) => real(r, 2));
    }
  } finally { globalThis.setTimeout = real; }
  assert.ok(armed <= 2, `${armed} timers armed for 50 lookups`);
});
