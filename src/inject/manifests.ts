// `authproxy inject` on a YAML stream: the webhook's mutation and JSON Patch, replayed on the
// YAML documents themselves so comments, key order and untouched documents survive.
import { parseAllDocuments, isMap, isSeq, type Document } from 'yaml';
import { INJECT } from './annotations.ts';
import { isObject, stringMap, type NamespaceMeta } from './k8s.ts';
import { mutatePodTemplate } from './mutate.ts';
import { createPatch, parsePointer, type PatchOp } from './patch.ts';
import { locateWorkload, withTemplate } from './workloads.ts';
import type { InjectSettings } from './settings.ts';

export interface ObjectReport {
  /** 1-based position of the YAML document in the stream. */
  document: number;
  kind: string;
  name: string;
  decision: 'injected' | 'skipped' | 'refused';
  reason: string;
}

export interface InjectResult {
  /** The rewritten stream; empty when anything was refused (all or nothing). */
  output: string;
  reports: ObjectReport[];
  refused: boolean;
}

export class ManifestError extends Error {}

/** Rewrite every workload in a multi-document YAML stream. Throws ManifestError for unparsable YAML. */
export function injectManifests(text: string, settings: InjectSettings, source = 'input'): InjectResult {
  const docs = parseAllDocuments(text);
  if (!Array.isArray(docs)) return { output: text, reports: [], refused: false };
  for (const [i, d] of docs.entries()) {
    const err = d.errors[0];
    if (err) throw new ManifestError(`${source}: document ${i + 1}: not valid YAML: ${err.message.split('\n')[0] ?? ''}`);
  }
  const namespaces = namespacesIn(docs);
  const reports: ObjectReport[] = [];

  for (const [i, doc] of docs.entries()) {
    const js: unknown = doc.toJS();
    const targets: Array<{ obj: unknown; at: (string | number)[] }> =
      isObject(js) && js.kind === 'List' && Array.isArray(js.items) ? js.items.map((obj, j) => ({ obj, at: ['items', j] })) : [{ obj: js, at: [] }];
    for (const { obj, at } of targets) {
      const located = locateWorkload(obj);
      if (!located.ok) continue;
      const { workload } = located;
      const report = (decision: ObjectReport['decision'], reason: string): void => {
        reports.push({ document: i + 1, kind: workload.kind, name: workload.name, decision, reason });
      };
      const result = mutatePodTemplate(workload.template, namespaceFor(workload.namespace ?? 'default', namespaces), settings);
      if (result.action === 'skip') { report('skipped', result.reason); continue; }
      if (result.action === 'refuse') { report('refused', result.message); continue; }
      const patch = createPatch(obj, withTemplate(obj as Record<string, unknown>, workload.path, result.template));
      applyToDocument(doc, patch, at);
      report('injected', result.mode);
    }
  }

  if (reports.some((r) => r.decision === 'refused')) return { output: '', reports, refused: true };
  // Keep the stream's own style where the YAML library lets us choose.
  const indentSeq = !/^( *)[^\s#-][^\n]*:[ \t]*\n\1- /m.test(text);
  const flowCollectionPadding = !/:[ \t]*[{[][^ \n\]}]/.test(text);
  const output = docs.map((d, i) => {
    if (i > 0) d.directives.docStart = true;
    return d.toString({ indentSeq, flowCollectionPadding, lineWidth: 0 });
  }).join('');
  return { output, reports, refused: false };
}

/**
 * Running `authproxy inject` is itself the opt-in (as with `linkerd inject` and
 * `istioctl kube-inject`); a Namespace document in the same stream can still opt its objects out.
 */
function namespaceFor(name: string, inStream: Map<string, NamespaceMeta>): NamespaceMeta {
  const ns = inStream.get(name) ?? { name, labels: {}, annotations: {} };
  return { ...ns, annotations: { [INJECT]: 'true', ...ns.annotations } };
}

function namespacesIn(docs: Document.Parsed[]): Map<string, NamespaceMeta> {
  const out = new Map<string, NamespaceMeta>();
  for (const d of docs) {
    const js: unknown = d.toJS();
    const items = isObject(js) && js.kind === 'List' && Array.isArray(js.items) ? js.items : [js];
    for (const o of items) {
      if (!isObject(o) || o.kind !== 'Namespace' || !isObject(o.metadata) || typeof o.metadata.name !== 'string') continue;
      out.set(o.metadata.name, { name: o.metadata.name, labels: stringMap(o.metadata.labels), annotations: stringMap(o.metadata.annotations) });
    }
  }
  return out;
}

/** Replay JSON Patch operations on the YAML AST (so only the patched nodes are new). */
export function applyToDocument(doc: Document, ops: PatchOp[], prefix: (string | number)[] = []): void {
  for (const op of ops) {
    const path = [...prefix, ...parsePointer(op.path)];
    const parentPath = path.slice(0, -1);
    const last = path.at(-1);
    if (last === undefined) throw new Error('cannot patch the document root');
    const parent = parentPath.length ? doc.getIn(parentPath, true) : doc.contents;
    if (op.op === 'remove') { doc.deleteIn(path); continue; }
    if (op.op === 'add' && isSeq(parent)) {
      const index = last === '-' ? parent.items.length : Number(last);
      parent.items.splice(index, 0, doc.createNode(op.value));
      continue;
    }
    if (!isMap(parent) && !isSeq(parent)) throw new Error(`patch path ${op.path} has no parent collection`);
    doc.setIn(path, doc.createNode(op.value));
  }
}
