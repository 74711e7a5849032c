// Where each workload kind keeps its pod template. Everything else passes through untouched.
import { isObject, stringMap, type PodTemplate } from './k8s.ts';

const TEMPLATE_PATHS: Record<string, readonly string[]> = {
  Pod: [],
  Deployment: ['spec', 'template'],
  StatefulSet: ['spec', 'template'],
  DaemonSet: ['spec', 'template'],
  ReplicaSet: ['spec', 'template'],
  ReplicationController: ['spec', 'template'],
  Job: ['spec', 'template'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template'],
};

export const WORKLOAD_KINDS = Object.keys(TEMPLATE_PATHS);

export interface Workload {
  kind: string;
  name: string;
  namespace: string | undefined;
  /** Path from the object's root to the pod template (empty for a Pod). */
  path: readonly string[];
  template: PodTemplate;
}

export type Located = { ok: true; workload: Workload } | { ok: false; reason: string };

/** Find the pod template of a known workload kind, or say why the object is not one. */
export function locateWorkload(obj: unknown): Located {
  if (!isObject(obj)) return { ok: false, reason: 'not an object' };
  const kind = obj.kind;
  if (typeof kind !== 'string') return { ok: false, reason: 'no kind' };
  const path = TEMPLATE_PATHS[kind];
  if (!path) return { ok: false, reason: `kind ${kind} has no pod template` };
  let node: unknown = obj;
  for (const key of path) node = isObject(node) ? node[key] : undefined;
  if (!isObject(node) || !isObject(node.spec) || !Array.isArray(node.spec.containers)
    || !node.spec.containers.every((c) => isObject(c) && typeof c.name === 'string')) {
    return { ok: false, reason: `${kind} has no pod spec with containers at ${['', ...path, 'spec', 'containers'].join('/')}` };
  }
  for (const list of ['initContainers', 'volumes'] as const) {
    const v = node.spec[list];
    if (v !== undefined && (!Array.isArray(v) || !v.every((x) => isObject(x) && typeof x.name === 'string'))) {
      return { ok: false, reason: `${kind} has a malformed spec.${list}` };
    }
  }
  const meta = isObject(obj.metadata) ? obj.metadata : {};
  const template = node as unknown as PodTemplate;
  // Labels and annotations are read as string maps; a malformed one counts as absent.
  if (template.metadata !== undefined && !isObject(template.metadata)) return { ok: false, reason: `${kind} has a malformed pod template metadata` };
  if (template.metadata) {
    for (const key of ['labels', 'annotations'] as const) {
      const m = template.metadata[key];
      if (m !== undefined && (!isObject(m) || Object.keys(stringMap(m)).length !== Object.keys(m).length)) {
        return { ok: false, reason: `${kind} has malformed ${key} in its pod template` };
      }
    }
  }
  return {
    ok: true,
    workload: {
      kind, path, template,
      name: typeof meta.name === 'string' ? meta.name : typeof meta.generateName === 'string' ? `${meta.generateName}*` : '(unnamed)',
      namespace: typeof meta.namespace === 'string' && meta.namespace ? meta.namespace : undefined,
    },
  };
}

/** A copy of `obj` with the pod template at `path` replaced. */
export function withTemplate(obj: Record<string, unknown>, path: readonly string[], template: PodTemplate): Record<string, unknown> {
  if (path.length === 0) return template;
  const [head, ...rest] = path as [string, ...string[]];
  const child = obj[head] as Record<string, unknown>;
  return { ...obj, [head]: rest.length ? withTemplate(child, rest, template) : template };
}
