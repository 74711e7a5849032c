// The audit record of an outbound decision. The "peer" of an outbound hop is its destination
// (host:port as the app named it); `policy` names the OutboundRoute that decided, or null for an
// unrouted host. The path is recorded without its query (queries can carry credentials).
import type { IncomingMessage } from 'node:http';
import type { Runtime } from '../runtime/state.ts';
import type { RequestRefused } from '../errors.ts';
import type { AuditRecord } from '../audit/record.ts';
import type { OutboundTarget } from './target.ts';
import type { CompiledRoute } from './routes.ts';
import type { Transport } from './transport.ts';
import { isoTime } from '../audit/time.ts';

export function outboundAuditRecord(rt: Runtime, req: IncomingMessage, requestId: string, target: OutboundTarget | null,
  route: CompiledRoute | null, refusal: RequestRefused | null, reason: string, transport: Transport | null,
  boundary: string | null | undefined = undefined): AuditRecord {
  const q = target ? target.path.indexOf('?') : -1;
  return {
    time: isoTime(Date.now()),
    requestId,
    direction: 'outbound',
    event: 'request',
    peer: { principal: null, address: target ? target.authority : null },
    method: req.method ?? null,
    path: target ? (q === -1 ? target.path : target.path.slice(0, q)) : null,
    decision: refusal ? 'deny' : 'allow',
    status: refusal ? refusal.status : null,
    code: refusal ? refusal.code : null,
    policy: route?.name ?? null,
    rule: null,
    reason,
    policyDigest: rt.policy.digest,
    tls: transport,
    // The boundary decision behind the TLS mode: a boundary name, `outside`, or null when the
    // request was refused before the destination was classified.
    boundary: boundary === undefined ? null : boundary ?? 'outside',
  };
}
