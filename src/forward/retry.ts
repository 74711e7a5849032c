// When a failed try may be tried again, and how often. The rule every RPC outage taught: retry
// only what provably did no harm, back off with jitter, and cap retries as a share of traffic so
// an outage downstream cannot multiply the load on it (Finagle/Linkerd retry budgets).
import { H2_NO_SETTINGS, H2_REFUSED_STREAM } from './errors.ts';

/** Failures where the request provably never reached the app (or was not processed): safe to retry for any method. */
const NEVER_SENT = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOENT', H2_REFUSED_STREAM, H2_NO_SETTINGS]);
/** The connection died before any response byte: safe to retry only for idempotent methods. */
const RESET_BEFORE_RESPONSE = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export function errorCode(err: Error): string {
  const own = (err as NodeJS.ErrnoException).code;
  const cause = (err as { cause?: NodeJS.ErrnoException }).cause?.code;
  // undici wraps socket errors: prefer the system code that says what happened on the wire.
  return cause && (NEVER_SENT.has(cause) || RESET_BEFORE_RESPONSE.has(cause)) ? cause : own ?? cause ?? '';
}

/**
 * May this failure be retried? Never once response bytes arrived (the caller checks that), never
 * on a timeout (a slow app gets slower when asked twice), never when the request body was
 * already consumed (it cannot be replayed).
 */
export function isRetryable(err: Error, method: string, bodyIntact: boolean): boolean {
  if (!bodyIntact) return false;
  const code = errorCode(err);
  if (NEVER_SENT.has(code)) return true;
  return RESET_BEFORE_RESPONSE.has(code) && IDEMPOTENT.has(method);
}

/** Full-jitter exponential backoff: uniform in [0, min(cap, base·2^attempt)). */
export function backoffMs(attempt: number, baseMs = 25, capMs = 250): number {
  return Math.random() * Math.min(capMs, baseMs * 2 ** attempt);
}

/**
 * Retries allowed over a sliding window: `ratio` of the requests seen plus a small floor so a
 * quiet service can still retry. Counted in one-second slots; O(window) memory, no allocation.
 */
export class RetryBudget {
  private readonly requests: Uint32Array;
  private readonly retries: Uint32Array;
  private second = 0;
  private readonly ratio: number;
  private readonly floor: number;

  constructor(ratio: number, floor: number, windowSeconds = 10) {
    this.ratio = ratio; this.floor = floor;
    this.requests = new Uint32Array(windowSeconds);
    this.retries = new Uint32Array(windowSeconds);
  }

  private slot(now: number): number {
    const sec = Math.floor(now / 1000);
    const n = this.requests.length;
    if (sec !== this.second) {
      for (let s = Math.max(this.second + 1, sec - n + 1); s <= sec; s++) { this.requests[s % n] = 0; this.retries[s % n] = 0; }
      this.second = sec;
    }
    return sec % n;
  }

  /** Every original request (not retries) earns the budget its share. */
  recordRequest(now = Date.now()): void { this.requests[this.slot(now)]!++; }

  /** Takes one retry from the budget, or says no. */
  tryAcquire(now = Date.now()): boolean {
    const i = this.slot(now);
    let requests = 0; let retries = 0;
    for (let k = 0; k < this.requests.length; k++) { requests += this.requests[k]!; retries += this.retries[k]!; }
    if (retries >= Math.floor(this.ratio * requests) + this.floor) return false;
    this.retries[i]!++;
    return true;
  }
}
