// Stable error codes: callers (and operators grepping audit logs) branch on the code, never the message.
// One table maps each code to its HTTP status; DESIGN.md "Failures" is the contract.

export const ERROR_STATUS = {
  bad_path: 400,
  bad_request: 400,
  request_timeout: 408,
  invalid_token: 401,
  forbidden: 403,
  boundary_violation: 403,
  no_route: 403,
  body_too_large: 413,
  headers_too_large: 431,
  upstream_unavailable: 502,
  token_unavailable: 503,
  not_ready: 503,
  upstream_timeout: 504,
  // A fault in the sidecar's own code (src/http/fault.ts): a bug, never a verdict on the request.
  internal_error: 500,
} as const satisfies Record<string, number>;

export type ErrorCode = keyof typeof ERROR_STATUS;

/** A refusal the sidecar answers itself, with a status and a stable code. */
export class RequestRefused extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'RequestRefused';
    this.code = code;
    this.status = ERROR_STATUS[code];
  }
}

/** The JSON body every refusal carries: `{"error", "message", "requestId"}`. */
export function errorBody(code: ErrorCode, message: string, requestId: string): string {
  return JSON.stringify({ error: code, message, requestId });
}

/**
 * A configuration, policy or certificate problem. `where` names the file, document and field
 * so the operator can fix it without guessing; the message never carries secret material.
 */
export class ConfigError extends Error {
  readonly file: string | undefined;
  readonly document: string | undefined;
  readonly field: string | undefined;
  constructor(message: string, where: { file?: string; document?: string; field?: string } = {}) {
    const at = [where.file, where.document && `document ${where.document}`, where.field && `field ${where.field}`]
      .filter(Boolean).join(', ');
    super(at ? `${at}: ${message}` : message);
    this.name = 'ConfigError';
    this.file = where.file;
    this.document = where.document;
    this.field = where.field;
  }
}
