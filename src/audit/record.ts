// The one shape of an audit record: enough for a security reviewer to see which rule of which
// policy set decided each request, and nothing secret (no headers, no tokens, no bodies).
import { ERROR_STATUS, type ErrorCode } from '../errors.ts';

export interface AuditRecord {
  time: string;
  requestId: string | null;
  direction: 'inbound' | 'outbound';
  /** `request` for HTTP decisions, `handshake` for a peer refused at the TLS layer. */
  event: 'request' | 'handshake';
  peer: { principal: string | null; address: string | null };
  method: string | null;
  path: string | null;
  decision: 'allow' | 'deny';
  status: number | null;
  code: string | null;
  policy: string | null;
  rule: string | null;
  reason: string;
  policyDigest: string;
  /** How the traffic was carried on the hop this record is about: mtls, tls or plaintext. */
  tls: 'mtls' | 'tls' | 'plaintext' | null;
  /** Trust boundary the peer was judged to be in (`outside` when none); null where none applies. */
  boundary: string | null;
}

/**
 * The record of a request the policy allowed and the sidecar then refused itself (a body over
 * --max-body-bytes, or not received by the deadline): the line says what the caller got. `policy`
 * and `rule` still name the rule that allowed it; `reason` says why it was refused after all.
 */
export function refusedAfterAllow(record: AuditRecord, code: ErrorCode, message: string): AuditRecord {
  record.decision = 'deny';
  record.status = ERROR_STATUS[code];
  record.code = code;
  record.reason = message;
  return record;
}
