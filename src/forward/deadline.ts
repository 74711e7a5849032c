// Deadlines that travel: a caller may say how long it will wait, in `x-authproxy-deadline`
// (milliseconds remaining) or gRPC's `grpc-timeout` (digits and a unit). The sidecar honours the
// smaller of that and its own request timeout, and passes on what is left when it forwards, so
// the hop after it does not keep working for a caller that has given up.
const GRPC_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/** A `grpc-timeout` value in milliseconds, or null when there is none or it is not one. */
export function parseGrpcTimeout(v: string | string[] | undefined): number | null {
  if (typeof v !== 'string') return null;
  const m = /^(\d{1,8})([HMSmun])$/.exec(v);
  return m ? Number(m[1]) * GRPC_UNIT_MS[m[2]!]! : null;
}

/**
 * Milliseconds the caller is willing to wait, or null when it did not say (or said nonsense).
 * `grpcMs` is its `grpc-timeout`, parsed once by the caller (parseGrpcTimeout), which also makes
 * the gRPC deadline of it (grpcDeadlineAt).
 */
export function incomingBudgetMs(deadlineHeader: string | string[] | undefined, grpcMs: number | null): number | null {
  let ms: number | null = null;
  if (typeof deadlineHeader === 'string' && /^\d{1,10}$/.test(deadlineHeader)) ms = Number(deadlineHeader);
  if (grpcMs !== null) ms = ms === null ? grpcMs : Math.min(ms, grpcMs);
  return ms;
}

/**
 * The caller's own gRPC deadline (epoch ms, from its `grpc-timeout` in ms; 0 when it set none), which
 * the app is told as it stands. The sidecar's --request-timeout is not part of it: that bounds
 * only the wait for the answer to begin, and the sidecar enforces it itself by cancelling the
 * app's stream. Passed on as the app's deadline, it would end a streaming call (a watch, a
 * long upload) that has long been answering, at --request-timeout after it began.
 */
export function grpcDeadlineAt(grpcMs: number | null, now: number): number {
  return grpcMs === null ? 0 : now + grpcMs;
}

/** grpc-timeout allows at most 8 digits; milliseconds cover ~27 hours, plenty for a request. */
export function formatGrpcTimeout(ms: number): string {
  return `${Math.max(0, Math.min(99_999_999, Math.floor(ms)))}m`;
}
