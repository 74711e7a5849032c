// Mapping transport failures to the contract's refusals: the app could not be reached (502) or
// did not answer in time (504). Callers branch on undici's stable error codes, never messages.
import type { ErrorCode } from '../errors.ts';

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT']);

/** The request's deadline passed while waiting for the app (our timer, not undici's). */
export class DeadlineExceeded extends Error {
  constructor() { super('deadline exceeded'); this.name = 'DeadlineExceeded'; }
}

export const BODY_NOT_RECEIVED = 'request body not received before the request deadline';

/** The client had not sent its whole (declared) body by the request deadline. */
export class BodyNotReceived extends Error {
  constructor() { super(BODY_NOT_RECEIVED); this.name = 'BodyNotReceived'; }
}

export function classifyUpstreamError(err: Error): { code: ErrorCode; message: string } {
  const cause = (err as { cause?: unknown }).cause;
  if (err instanceof BodyNotReceived) return { code: 'request_timeout', message: err.message };
  if (err instanceof DeadlineExceeded || cause instanceof DeadlineExceeded) return { code: 'upstream_timeout', message: 'the app did not answer before the request deadline' };
  const code = (err as NodeJS.ErrnoException).code ?? '';
  // A plaintext connection refused at connect time because its address is outside every boundary.
  const outside = code === 'EAUTHPROXY_OUTSIDE_BOUNDARY' ? err
    : (cause as NodeJS.ErrnoException | undefined)?.code === 'EAUTHPROXY_OUTSIDE_BOUNDARY' ? cause as Error : null;
  if (outside) return { code: 'boundary_violation', message: outside.message };
  if (TIMEOUT_CODES.has(code)) return { code: 'upstream_timeout', message: 'the app did not answer in time' };
  // Same status either way; the message tells an operator whether to look at the app's socket or at its answers.
  if (UNREACHABLE_CODES.has(code)) return { code: 'upstream_unavailable', message: `the app is unreachable (${code})` };
  return { code: 'upstream_unavailable', message: `the app's connection failed or its answer was malformed (${code || err.name})` };
}

// Connecting failed: nothing was sent to the app.
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOENT', 'EACCES', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN']);
