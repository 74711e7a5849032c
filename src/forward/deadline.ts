// Deadlines that travel: a caller may say how long it will wait, in `x-authproxy-deadline`
// (milliseconds remaining) or gRPC's `grpc-timeout` (digits and a unit). The sidecar honours the
// smaller of that and its own request timeout, and passes on what is left when it forwards, so
// the hop after it does not keep working for a caller that has given up.
const GRPC_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

export function parseGrpcTimeout(v: string): number | null {
  const m = /^(\d{1,8})([HMSmun])$/.exec(v);
  return m ? Number(m[1]) * GRPC_UNIT_MS[m[2]!]! : null;
}

/** Milliseconds the caller is willing to wait, or null when it did not say (or said nonsense). */
export function incomingBudgetMs(deadlineHeader: string | string[] | undefined, grpcTimeout: string | string[] | undefined): number | null {
  let ms: number | null = null;
  if (typeof deadlineHeader === 'string' && /^\d{1,10}$/.test(deadlineHeader)) ms = Number(deadlineHeader);
  if (typeof grpcTimeout === 'string') {
    const g = parseGrpcTimeout(grpcTimeout);
    if (g !== null) ms = ms === null ? g : Math.min(ms, g);
  }
  return ms;
}

/** grpc-timeout allows at most 8 digits; milliseconds cover ~27 hours, plenty for a request. */
export function formatGrpcTimeout(ms: number): string {
  return `${Math.max(0, Math.min(99_999_999, Math.floor(ms)))}m`;
}
