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

/**
 * The caller's own gRPC deadline (epoch ms, from its `grpc-timeout`; 0 when it set none), which
 * the app is told as it stands. The sidecar's --request-timeout is not part of it: that bounds
 * only the wait for the answer to begin, and the sidecar enforces it itself by cancelling the
 * app's stream. Passed on as the app's deadline, it would end a streaming call (a watch, a
 * long upload) that has long been answering, at --request-timeout after it began.
 */
export function grpcDeadlineAt(grpcTimeout: string | string[] | undefined, now: number): number {
  const ms = typeof grpcTimeout === 'string' ? parseGrpcTimeout(grpcTimeout) : null;
  return ms === null ? 0 : now + ms;
}

/** grpc-timeout allows at most 8 digits; milliseconds cover ~27 hours, plenty for a request. */
export function formatGrpcTimeout(ms: number): string {
  return `${Math.max(0, Math.min(99_999_999, Math.floor(ms)))}m`;
}
