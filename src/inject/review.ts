// AdmissionReview (admission.k8s.io/v1) in, AdmissionReview out. The decision is mutate.ts's; this
// module only unwraps the request, finds the pod template and wraps the patch.
import { isObject, type NamespaceMeta } from './k8s.ts';
import { mutatePodTemplate } from './mutate.ts';
import { createPatch, type PatchOp } from './patch.ts';
import { locateWorkload, withTemplate } from './workloads.ts';
import type { InjectSettings } from './settings.ts';

export const REVIEW_API_VERSION = 'admission.k8s.io/v1';

export interface AdmissionRequest {
  uid: string;
  kind: { group?: string; version?: string; kind: string };
  namespace?: string;
  name?: string;
  operation?: string;
  subResource?: string;
  object: unknown;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: 'JSONPatch';
  patch?: string;
  status?: { status: 'Failure'; code: number; reason: string; message: string };
  warnings?: string[];
}

export interface AdmissionReview { apiVersion: string; kind: 'AdmissionReview'; response: AdmissionResponse }

/** Why the review itself is unusable: answered with HTTP 400, so the API server's failurePolicy decides. */
export class BadReview extends Error {}

export function parseReview(body: unknown): AdmissionRequest {
  if (!isObject(body)) throw new BadReview('body is not a JSON object');
  if (body.kind !== 'AdmissionReview') throw new BadReview(`kind is ${JSON.stringify(body.kind)}, expected AdmissionReview`);
  if (body.apiVersion !== REVIEW_API_VERSION) throw new BadReview(`apiVersion ${JSON.stringify(body.apiVersion)} is not supported; register the webhook with admissionReviewVersions: [v1]`);
  const req = body.request;
  if (!isObject(req)) throw new BadReview('request is missing');
  if (typeof req.uid !== 'string' || !req.uid) throw new BadReview('request.uid is missing');
  if (!isObject(req.kind) || typeof req.kind.kind !== 'string') throw new BadReview('request.kind is missing');
  return req as unknown as AdmissionRequest;
}

export interface ReviewOutcome {
  response: AdmissionResponse;
  /** What was decided, for the log line: injected, skipped (with why) or refused. */
  decision: 'injected' | 'skipped' | 'refused';
  reason: string;
  kind: string;
  name: string;
  patch: PatchOp[];
}

/** Decide on one request. Never throws for anything found in `request.object`. */
export function review(request: AdmissionRequest, namespace: NamespaceMeta, settings: InjectSettings): ReviewOutcome {
  const kind = request.kind.kind;
  const base = { kind, name: request.name ?? '' };
  const allow = (reason: string): ReviewOutcome => ({ ...base, decision: 'skipped', reason, patch: [], response: { uid: request.uid, allowed: true } });

  if (request.subResource) return allow(`subresource ${request.subResource}`);
  if (request.operation && request.operation !== 'CREATE' && request.operation !== 'UPDATE') return allow(`operation ${request.operation}`);
  // The API server sends the object with its kind; a missing one is taken from the request.
  const obj = isObject(request.object) ? { kind, ...request.object } : request.object;
  const located = locateWorkload(obj);
  if (!located.ok) return allow(located.reason);
  const { workload } = located;
  base.name = request.name || workload.name;

  const result = mutatePodTemplate(workload.template, namespace, settings);
  if (result.action === 'skip') return allow(result.reason);
  if (result.action === 'refuse') {
    return {
      ...base, decision: 'refused', reason: result.message, patch: [],
      response: {
        uid: request.uid, allowed: false,
        status: { status: 'Failure', code: 400, reason: 'BadRequest', message: `authproxy injection refused: ${result.message}` },
      },
    };
  }
  const after = withTemplate(obj as Record<string, unknown>, workload.path, result.template);
  const patch = createPatch(obj, after);
  return {
    ...base, decision: 'injected', reason: `${result.mode}, requested by ${result.by}`, patch,
    response: { uid: request.uid, allowed: true, patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') },
  };
}

export function reviewResponse(response: AdmissionResponse): AdmissionReview {
  return { apiVersion: REVIEW_API_VERSION, kind: 'AdmissionReview', response };
}
