import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RetryBudget, isRetryable, backoffMs } from '../../src/forward/retry.ts';
import { H2_NO_SETTINGS, H2_REFUSED_STREAM } from '../../src/forward/errors.ts';
import { grpcDeadlineAt, incomingBudgetMs, parseGrpcTimeout, formatGrpcTimeout } from '../../src/forward/deadline.ts';

const err = (code: string, cause?: string): Error => Object.assign(new Error(code), { code, ...(cause ? { cause: Object.assign(new Error(cause), { code: cause }) } : {}) });

describe('retry eligibility', () => {
  it('retries any method when the connection was refused (the request never left)', () => {
    assert.ok(isRetryable(err('ECONNREFUSED'), 'POST', true));
    assert.ok(isRetryable(err('UND_ERR_CONNECT_TIMEOUT'), 'PATCH', true));
  });
  it('retries any method whose HTTP/2 stream the app refused unprocessed (REFUSED_STREAM), unless its body was consumed', () => {
    assert.ok(isRetryable(err(H2_REFUSED_STREAM), 'POST', true));
    assert.equal(isRetryable(err(H2_REFUSED_STREAM), 'POST', false), false);
  });
  it('retries any method whose h2c connection closed before the peer\'s SETTINGS (nothing was sent on it)', () => {
    assert.ok(isRetryable(err(H2_NO_SETTINGS), 'POST', true));
  });
  it('retries a reset before the response only for idempotent methods', () => {
    assert.ok(isRetryable(err('UND_ERR_SOCKET', 'ECONNRESET'), 'GET', true));
    assert.ok(isRetryable(err('ECONNRESET'), 'PUT', true));
    assert.equal(isRetryable(err('ECONNRESET'), 'POST', true), false);
    assert.equal(isRetryable(err('UND_ERR_SOCKET'), 'PATCH', true), false);
  });
  it('never retries a timeout, or a request whose body was already consumed', () => {
    assert.equal(isRetryable(err('UND_ERR_HEADERS_TIMEOUT'), 'GET', true), false);
    assert.equal(isRetryable(err('ECONNREFUSED'), 'GET', false), false);
  });
  it('backs off with full jitter under an exponential cap', () => {
    for (let attempt = 0; attempt < 6; attempt++) {
      for (let i = 0; i < 50; i++) {
        const b = backoffMs(attempt, 25, 250);
        assert.ok(b >= 0 && b < Math.min(250, 25 * 2 ** attempt));
      }
    }
  });
});

describe('retry budget', () => {
  it('allows retries up to the ratio of requests plus the floor, then refuses', () => {
    const b = new RetryBudget(0.2, 2);
    const t = 1_000_000;
    for (let i = 0; i < 50; i++) b.recordRequest(t);
    let granted = 0;
    for (let i = 0; i < 100; i++) if (b.tryAcquire(t)) granted++;
    assert.equal(granted, 0.2 * 50 + 2);
  });
  it('forgets requests and retries once they leave the window', () => {
    const b = new RetryBudget(0, 1, 10);
    assert.ok(b.tryAcquire(0));
    assert.equal(b.tryAcquire(5_000), false);
    assert.ok(b.tryAcquire(10_500), 'the retry at t=0 has left the 10 s window');
  });
});

describe('deadlines', () => {
  it('reads x-authproxy-deadline in ms and grpc-timeout in any unit, taking the smaller', () => {
    assert.equal(incomingBudgetMs('1500', parseGrpcTimeout(undefined)), 1500);
    assert.equal(incomingBudgetMs(undefined, parseGrpcTimeout('2S')), 2000);
    assert.equal(incomingBudgetMs('5000', parseGrpcTimeout('300m')), 300);
    assert.equal(incomingBudgetMs(undefined, parseGrpcTimeout(undefined)), null);
    assert.equal(incomingBudgetMs('soon', parseGrpcTimeout('10x')), null);
    assert.equal(parseGrpcTimeout('1H'), 3_600_000);
    assert.equal(parseGrpcTimeout('123456789S'), null, 'grpc-timeout has at most 8 digits');
    assert.equal(parseGrpcTimeout(['1S', '2S']), null, 'a repeated grpc-timeout is no deadline');
  });
  it('makes the caller\'s gRPC deadline of its own grpc-timeout, and none without one', () => {
    assert.equal(grpcDeadlineAt(parseGrpcTimeout('2S'), 1_000), 3_000);
    assert.equal(grpcDeadlineAt(parseGrpcTimeout('10x'), 1_000), 0);
  });
  it('writes grpc-timeout in milliseconds, never negative', () => {
    assert.equal(formatGrpcTimeout(1234.9), '1234m');
    assert.equal(formatGrpcTimeout(-5), '0m');
  });
});
