// The approvals channel: `POST /admin/approvals` on the issuer's own listener, answered only to
// loopback callers, so creating an elevation needs a shell on the issuer's host (that is the
// approval). A browser on the same host cannot be used to forge one either: requests carrying an
// Origin header are refused, and the JSON content type a browser cannot send cross-site
// without a CORS preflight (which is never answered) is required.
//
//   POST /admin/approvals  {"client":"billing","role":"Orders.Admin","forMs":900000,"audience":"api://orders"}
//     201 {"id":"apv_…","client":"billing","role":"Orders.Admin","audience":"api://orders",
//          "createdAt":"…","expiresAt":"…"}
//   GET  /admin/approvals  200 {"approvals":[…]} (those still in force)
//   errors: {"error": "forbidden"|"invalid_request"|"unsupported_media_type"|"method_not_allowed", "message": …}
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApprovalRequestInvalid, type Approval, type ApprovalStore } from './approvals.ts';

export const APPROVALS_PATH = '/admin/approvals';
const MAX_BODY = 4096;

export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return v4.startsWith('127.') || address === '::1';
}

export function approvalJson(a: Approval): Record<string, unknown> {
  return { id: a.id, client: a.client, role: a.role, audience: a.audience,
    createdAt: a.createdAt.toISOString(), expiresAt: a.expiresAt.toISOString() };
}

export async function handleApprovals(req: IncomingMessage, res: ServerResponse, store: ApprovalStore): Promise<void> {
  if (!isLoopback(req.socket.remoteAddress)) return send(res, 403, 'forbidden', 'approvals are accepted from loopback addresses only');
  if (req.headers.origin !== undefined) return send(res, 403, 'forbidden', 'approvals are not accepted from browsers');
  if (req.method === 'GET') {
    return reply(res, 200, { approvals: store.active().map(approvalJson) });
  }
  if (req.method !== 'POST') {
    res.setHeader('allow', 'GET, POST');
    return send(res, 405, 'method_not_allowed', 'use POST to create an approval, GET to list them');
  }
  if (!/^application\/json\s*(;|$)/i.test(req.headers['content-type'] ?? '')) {
    return send(res, 415, 'unsupported_media_type', 'the body must be application/json');
  }
  let body: unknown;
  try { body = JSON.parse(await readBody(req)); } catch (e) {
    return send(res, 400, 'invalid_request', e instanceof BodyTooLarge ? e.message : 'the body is not valid JSON');
  }
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  if (typeof b.client !== 'string' || typeof b.role !== 'string' || typeof b.forMs !== 'number'
    || (b.audience !== undefined && b.audience !== null && typeof b.audience !== 'string')) {
    return send(res, 400, 'invalid_request', 'expected {"client": string, "role": string, "forMs": number, "audience"?: string}');
  }
  try {
    const approval = store.grant({ client: b.client, role: b.role, forMs: b.forMs, audience: (b.audience as string | undefined) ?? null });
    return reply(res, 201, approvalJson(approval));
  } catch (e) {
    if (e instanceof ApprovalRequestInvalid) return send(res, 400, 'invalid_request', e.message);
    throw e;
  }
}

class BodyTooLarge extends Error {}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new BodyTooLarge(`the body is over ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function send(res: ServerResponse, status: number, error: string, message: string): void {
  reply(res, status, { error, message });
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
