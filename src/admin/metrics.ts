// Prometheus metrics without a client library: a handful of counters and one histogram, kept in
// plain nested objects so the request path increments numbers and allocates nothing.
const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

class Histogram {
  readonly counts = new Float64Array(BUCKETS.length + 1);
  sum = 0;
  observe(seconds: number): void {
    let i = 0;
    while (i < BUCKETS.length && seconds > BUCKETS[i]!) i++;
    this.counts[i]!++;
    this.sum += seconds;
  }
}

type Direction = 'inbound' | 'outbound';

export class Metrics {
  /** requests[direction][decision][status] */
  private readonly requests: Record<Direction, Record<string, Record<number, number>>> = { inbound: {}, outbound: {} };
  private readonly latency: Record<Direction, Histogram> = { inbound: new Histogram(), outbound: new Histogram() };
  private readonly handshakeRefusals: Record<string, number> = {};
  private readonly reloads: Record<string, Record<string, number>> = {};
  private readonly retries: Record<Direction, { attempted: number; budget_exhausted: number }> = {
    inbound: { attempted: 0, budget_exhausted: 0 }, outbound: { attempted: 0, budget_exhausted: 0 },
  };
  /** Outbound token cache lookups and issuer requests, by event (see TokenCacheEvent). */
  private readonly tokenEvents: Record<string, number> = {};
  /** Inbound bearer-token verifications, by result. */
  private readonly tokenVerifications: Record<string, number> = {};
  /** Audit records accepted but never written, by reason (see src/audit/writer.ts). */
  private readonly auditDrops: Record<'backlog' | 'write_error', number> = { backlog: 0, write_error: 0 };
  /** HTTP/2 connections closed for resetting most of their streams at once (http/premature-reset.ts). */
  private readonly prematureResetCloses: Record<Direction, number> = { inbound: 0, outbound: 0 };
  /** Gauges computed at scrape time (certificate expiry, policy digest info). */
  private readonly gauges: Array<() => string> = [];

  request(direction: Direction, decision: 'allow' | 'deny', status: number, seconds: number): void {
    const byDecision = this.requests[direction][decision] ??= {};
    byDecision[status] = (byDecision[status] ?? 0) + 1;
    this.latency[direction].observe(seconds);
  }

  handshakeRefused(reason: string): void {
    this.handshakeRefusals[reason] = (this.handshakeRefusals[reason] ?? 0) + 1;
  }

  reload(kind: 'certificate' | 'policy', result: 'ok' | 'refused'): void {
    const k = this.reloads[kind] ??= {};
    k[result] = (k[result] ?? 0) + 1;
  }

  retry(direction: Direction, result: 'attempted' | 'budget_exhausted'): void { this.retries[direction][result]++; }

  tokenCache(event: 'hit' | 'stale' | 'miss' | 'fetch' | 'fetch_failed'): void {
    this.tokenEvents[event] = (this.tokenEvents[event] ?? 0) + 1;
  }

  tokenVerified(result: 'valid' | 'invalid'): void {
    this.tokenVerifications[result] = (this.tokenVerifications[result] ?? 0) + 1;
  }

  prematureResetClose(direction: Direction): void { this.prematureResetCloses[direction]++; }

  auditDropped(reason: 'backlog' | 'write_error', records: number): void { this.auditDrops[reason] += records; }

  addGauge(render: () => string): void { this.gauges.push(render); }

  render(): string {
    const lines: string[] = [];
    lines.push('# HELP authproxy_requests_total Requests decided, by direction, decision and HTTP status.');
    lines.push('# TYPE authproxy_requests_total counter');
    for (const [dir, byDecision] of Object.entries(this.requests)) {
      for (const [decision, byStatus] of Object.entries(byDecision)) {
        for (const [status, n] of Object.entries(byStatus)) {
          lines.push(`authproxy_requests_total{direction="${dir}",decision="${decision}",status="${status}"} ${n}`);
        }
      }
    }
    lines.push('# HELP authproxy_request_duration_seconds Time from request headers to the end of the response.');
    lines.push('# TYPE authproxy_request_duration_seconds histogram');
    for (const [dir, h] of Object.entries(this.latency)) {
      let cum = 0;
      for (let i = 0; i < BUCKETS.length; i++) {
        cum += h.counts[i]!;
        lines.push(`authproxy_request_duration_seconds_bucket{direction="${dir}",le="${BUCKETS[i]}"} ${cum}`);
      }
      cum += h.counts[BUCKETS.length]!;
      lines.push(`authproxy_request_duration_seconds_bucket{direction="${dir}",le="+Inf"} ${cum}`);
      lines.push(`authproxy_request_duration_seconds_sum{direction="${dir}"} ${h.sum}`);
      lines.push(`authproxy_request_duration_seconds_count{direction="${dir}"} ${cum}`);
    }
    lines.push('# HELP authproxy_tls_handshake_refusals_total Peers refused after chain validation by the X.509-SVID rules.');
    lines.push('# TYPE authproxy_tls_handshake_refusals_total counter');
    for (const [reason, n] of Object.entries(this.handshakeRefusals)) {
      lines.push(`authproxy_tls_handshake_refusals_total{reason=${JSON.stringify(reason)}} ${n}`);
    }
    lines.push('# HELP authproxy_reloads_total Certificate and policy reloads, by result.');
    lines.push('# TYPE authproxy_reloads_total counter');
    for (const [kind, byResult] of Object.entries(this.reloads)) {
      for (const [result, n] of Object.entries(byResult)) lines.push(`authproxy_reloads_total{kind="${kind}",result="${result}"} ${n}`);
    }
    lines.push('# HELP authproxy_retries_total Retries of failed tries: attempted, or refused because the retry budget was spent.');
    lines.push('# TYPE authproxy_retries_total counter');
    for (const [dir, r] of Object.entries(this.retries)) {
      for (const [result, n] of Object.entries(r)) lines.push(`authproxy_retries_total{direction="${dir}",result="${result}"} ${n}`);
    }
    lines.push('# HELP authproxy_token_cache_total Outbound token lookups (hit, stale: served while refreshing, miss: waited for the issuer) and issuer requests (fetch, fetch_failed).');
    lines.push('# TYPE authproxy_token_cache_total counter');
    for (const [event, n] of Object.entries(this.tokenEvents)) lines.push(`authproxy_token_cache_total{event="${event}"} ${n}`);
    lines.push('# HELP authproxy_token_verifications_total Inbound bearer tokens verified, by result.');
    lines.push('# TYPE authproxy_token_verifications_total counter');
    for (const [result, n] of Object.entries(this.tokenVerifications)) lines.push(`authproxy_token_verifications_total{result="${result}"} ${n}`);
    // Both reasons from the start, so rate() and alerts see a 0 before the first drop.
    lines.push('# HELP authproxy_audit_records_dropped_total Audit records never written: backlog (the sink stopped taking them and the backlog bound was reached) or write_error (a write failed, e.g. ENOSPC).');
    lines.push('# TYPE authproxy_audit_records_dropped_total counter');
    for (const [reason, n] of Object.entries(this.auditDrops)) lines.push(`authproxy_audit_records_dropped_total{reason="${reason}"} ${n}`);
    lines.push('# HELP authproxy_h2_rapid_reset_closes_total HTTP/2 connections closed (GOAWAY ENHANCE_YOUR_CALM) because the client reset most of its streams before any answer: inbound (a peer, on the TLS or plaintext listener) or outbound (the app).');
    lines.push('# TYPE authproxy_h2_rapid_reset_closes_total counter');
    for (const [dir, n] of Object.entries(this.prematureResetCloses)) lines.push(`authproxy_h2_rapid_reset_closes_total{direction="${dir}"} ${n}`);
    for (const g of this.gauges) lines.push(g());
    return lines.join('\n') + '\n';
  }
}
