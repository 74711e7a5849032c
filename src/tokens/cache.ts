// The outbound token cache (lru-cache 11, bounded). One entry per issuer + audience + sorted
// scopes + JIT approval; the caller builds that key once per route at policy load.
//
//   single flight   lru-cache's fetch() shares one in-flight issuer request among all concurrent
//                   misses for a key.
//   refresh ahead   an entry's lru ttl ends at `refreshFraction` of the token's usable life (its
//                   lifetime minus the clock skew), minus up to 10% of that life at random (so
//                   many sidecars do not refresh in step). After that, requests are still served
//                   the cached token while one background fetch replaces it.
//   outage          a failed refresh keeps the old token (allowStaleOnFetchRejection); it is
//                   served until its expiry minus the clock skew, never after.
//   backoff         after a failure the key's next issuer request waits 0.5 s, 1 s, 2 s… up to
//                   30 s, with jitter; requests inside that window fail fast without calling
//                   the issuer.
//   JIT             entries for an approval are never refreshed ahead (their ttl is their usable
//                   life) and are only ever found under that approval's key.
//
// Times are in milliseconds on the cache's clock (performance.now() unless a test injects one).
import { LRUCache } from 'lru-cache';
import { TokenUnavailable, type IssuedToken, type TokenRequest } from './client.ts';

export type TokenFetcher = (req: TokenRequest, signal: AbortSignal) => Promise<IssuedToken>;

/**
 * hit: served from cache with no issuer work; stale: served from cache past its refresh point
 * while a refresh runs; miss: the caller waited for the issuer; fetch / fetch_failed: issuer requests.
 */
export type TokenCacheEvent = 'hit' | 'stale' | 'miss' | 'fetch' | 'fetch_failed';

export class CachedToken {
  readonly token: string;
  readonly obtainedAt: number;
  readonly refreshAt: number;
  /** Not sent after this (expiry minus clock skew). */
  readonly usableUntil: number;
  readonly jit: boolean;
  #scheme: string | null = null;
  #header = '';

  constructor(token: string, obtainedAt: number, refreshAt: number, usableUntil: number, jit: boolean) {
    this.token = token; this.obtainedAt = obtainedAt; this.refreshAt = refreshAt; this.usableUntil = usableUntil; this.jit = jit;
  }

  /** The header value for a route's scheme (`Bearer <token>`, or the bare token for ''); built once per scheme. */
  header(scheme: string): string {
    if (scheme !== this.#scheme) { this.#header = scheme === '' ? this.token : `${scheme} ${this.token}`; this.#scheme = scheme; }
    return this.#header;
  }
}

interface Failure { attempts: number; retryAt: number; reason: string }

export interface TokenCacheOptions {
  max: number;
  /** 0.1–0.95 */
  refreshFraction: number;
  clockSkewMs: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  now?: () => number;
  /**
   * lru-cache reuses a clock reading for this long (default 100 ms); tests with a fake clock use 0.
   * Each fresh reading also arms a timer that expires it: at 1 ms (lru-cache's default) a request
   * arriving more than 1 ms after the last one (any moderate rate) armed one, and the event loop
   * woke once more per request to fire it. That was most of what a cached token cost at 500 req/s
   * (bench/FINDINGS.md, "Outbound with a cached token"). 100 ms is far inside every margin the
   * cache keeps: a token is served at most that long past its refresh point, never past its expiry
   * (the usable end is at least half the token's life, and up to --clock-skew, before it).
   */
  ttlResolutionMs?: number;
  random?: () => number;
  onEvent?: (e: TokenCacheEvent) => void;
  /** Called once per failed issuer request with a reason that is safe to log. */
  onFailure?: (req: TokenRequest, reason: string) => void;
  onFetched?: (req: TokenRequest, t: CachedToken) => void;
}

/** Refresh ahead starts up to this fraction of the usable life earlier than refreshFraction. */
const REFRESH_JITTER = 0.1;

export class TokenCache {
  readonly #lru: LRUCache<string, CachedToken, TokenRequest>;
  readonly #failures: LRUCache<string, Failure>;
  readonly #fetch: TokenFetcher;
  /** Reused on every lookup: lru-cache's get() would otherwise allocate a default options object per call. */
  readonly #getOptions: LRUCache.GetOptions<string, CachedToken, TokenRequest> = {};
  readonly #o: Required<Omit<TokenCacheOptions, 'onFailure' | 'onFetched'>> & Pick<TokenCacheOptions, 'onFailure' | 'onFetched'>;

  constructor(fetcher: TokenFetcher, opts: TokenCacheOptions) {
    this.#fetch = fetcher;
    this.#o = {
      backoffBaseMs: 500, backoffMaxMs: 30_000, now: () => performance.now(), ttlResolutionMs: 100, random: Math.random, onEvent: () => {},
      ...opts,
    };
    const now = this.#o.now;
    this.#lru = new LRUCache<string, CachedToken, TokenRequest>({
      max: opts.max,
      perf: { now },
      ttlResolution: this.#o.ttlResolutionMs,
      // A stale entry (past its refresh point) is kept: it is still the token to serve while the
      // refresh runs or while the issuer is down.
      noDeleteOnStaleGet: true,
      allowStaleOnFetchRejection: true,
      fetchMethod: (key, _stale, { signal, options, context }) => this.#fetchToken(key, context, signal, options),
    });
    this.#failures = new LRUCache<string, Failure>({ max: opts.max });
  }

  /**
   * The cached token for `key` when it needs no issuer work (not due for refresh, usable now);
   * the request hot path: no promise, no allocation.
   */
  peek(key: string): CachedToken | undefined {
    // Not stale means usable: an entry's lru ttl ends at its refresh point, which is never after
    // its usable end (and for JIT entries is that end). No clock read of our own: performance.now()
    // allocates, and lru-cache already read one (at most ttlResolution old).
    const t = this.#lru.get(key, this.#getOptions);
    if (t !== undefined) this.#o.onEvent('hit');
    return t;
  }

  /** A usable token for `key`, fetching (once, for all concurrent callers) when needed. Throws TokenUnavailable. */
  async obtain(key: string, req: TokenRequest): Promise<CachedToken> {
    const jit = req.approval !== null;
    // Non-JIT: a token past its refresh point but still usable is served at once, and the refresh
    // runs in the background. JIT: waits for the fetch (never refreshed ahead).
    let t = await this.#lru.fetch(key, { context: req, allowStale: !jit });
    if (t !== undefined && this.#o.now() < t.usableUntil) {
      // Past its refresh point: served from cache while the refresh runs. Otherwise it was just fetched.
      this.#o.onEvent(this.#o.now() >= t.refreshAt && !jit ? 'stale' : 'miss');
      return t;
    }
    if (t !== undefined) {
      // The stale token has expired: wait for the refresh that fetch() just started (or joined).
      t = await this.#lru.fetch(key, { context: req, allowStale: false });
      if (t !== undefined && this.#o.now() < t.usableUntil) { this.#o.onEvent('miss'); return t; }
    }
    this.#o.onEvent('miss');
    throw new TokenUnavailable(this.#failureReason(key));
  }

  #failureReason(key: string): string {
    const f = this.#failures.get(key);
    if (!f) return 'no token could be obtained';
    const wait = f.retryAt - this.#o.now();
    return wait > 0 ? `${f.reason}; next attempt in ${Math.ceil(wait / 1000)}s` : f.reason;
  }

  /** Tokens currently held (for tests and /metrics). */
  get size(): number { return this.#lru.size; }

  clear(): void { this.#lru.clear(); this.#failures.clear(); }

  async #fetchToken(key: string, req: TokenRequest | undefined, signal: AbortSignal,
    options: LRUCache.FetcherFetchOptions<string, CachedToken, TokenRequest>): Promise<CachedToken> {
    if (req === undefined) throw new TokenUnavailable('internal: token request without context');
    const o = this.#o;
    const start = o.now();
    const failure = this.#failures.get(key);
    if (failure && start < failure.retryAt) throw new TokenUnavailable(this.#failureReason(key));
    o.onEvent('fetch');
    let issued: IssuedToken;
    try {
      issued = await this.#fetch(req, signal);
    } catch (e) {
      return this.#failed(key, req, failure, e);
    }
    const lifetime = issued.lifetimeMs;
    // The lifetime counts from before the request was sent: never later than the issuer's clock.
    const expiresAt = start + lifetime;
    // Short-lived tokens keep at least half their life usable even with a large configured skew.
    const usableUntil = expiresAt - Math.min(o.clockSkewMs, lifetime / 2);
    if (usableUntil <= o.now()) {
      // The issuer took longer to answer than the token is usable for: nothing can be sent with
      // it. A failure like any other (backoff, the old token kept), with the reason why.
      return this.#failed(key, req, failure, new TokenUnavailable(
        `the issuer answered after ${Math.round(o.now() - start)} ms with a token usable for ${Math.round(usableUntil - start)} ms`));
    }
    this.#failures.delete(key);
    const jit = req.approval !== null;
    // A fraction of the usable life, not of the lifetime: with a skew that is large next to the
    // lifetime (the default 30 s against a 60 s token) a fraction of the lifetime falls at or
    // after the usable end, and the token would never be refreshed ahead.
    const refreshAt = jit ? usableUntil
      : start + (usableUntil - start) * (o.refreshFraction - REFRESH_JITTER * o.random());
    const t = new CachedToken(issued.accessToken, start, refreshAt, usableUntil, jit);
    options.ttl = Math.max(1, Math.floor(refreshAt - o.now()));
    o.onFetched?.(req, t);
    return t;
  }

  /** Records a failed issuer request (backoff, event, log) and throws TokenUnavailable. */
  #failed(key: string, req: TokenRequest, failure: Failure | undefined, e: unknown): never {
    const o = this.#o;
    const reason = e instanceof TokenUnavailable ? e.message : `token request failed (${(e as Error).name})`;
    const attempts = (failure?.attempts ?? 0) + 1;
    const ceiling = Math.min(o.backoffMaxMs, o.backoffBaseMs * 2 ** (attempts - 1));
    // "Equal jitter": at least half the ceiling, so retries neither stampede nor starve.
    const delay = ceiling / 2 + o.random() * (ceiling / 2);
    this.#failures.set(key, { attempts, retryAt: o.now() + delay, reason });
    o.onEvent('fetch_failed');
    o.onFailure?.(req, reason);
    throw new TokenUnavailable(reason, { cause: e });
  }
}
