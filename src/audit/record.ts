// The one shape of an audit record: enough for a security reviewer to see which rule of which
// policy set decided each request, and nothing secret (no headers, no tokens, no bodies).
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
