// Who asked for injection. Labels (which webhook selectors can see) and annotations (which they
// cannot) count the same, on the pod (template) and on its namespace. An explicit "false" anywhere
// wins, so an opted-out namespace stays out whatever a pod says, and a pod can always opt out.
import { AnnotationError, INJECT, parseSwitch } from './annotations.ts';
import type { NamespaceMeta, PodTemplate } from './k8s.ts';

export type OptIn = { inject: true; by: string } | { inject: false; reason: string };

export function optIn(template: PodTemplate, namespace: NamespaceMeta): OptIn {
  const sources: Array<[string, string | undefined]> = [
    ['pod annotation', template.metadata?.annotations?.[INJECT]],
    ['pod label', template.metadata?.labels?.[INJECT]],
    [`namespace ${namespace.name} annotation`, namespace.annotations[INJECT]],
    [`namespace ${namespace.name} label`, namespace.labels[INJECT]],
  ];
  let by: string | undefined;
  for (const [where, value] of sources) {
    let on: boolean | undefined;
    try { on = parseSwitch(value?.trim(), INJECT); } catch {
      throw new AnnotationError(INJECT, `${where} '${value ?? ''}' must be "true" or "false"`);
    }
    if (on === false) return { inject: false, reason: `opted out by ${where} ${INJECT}=false` };
    if (on === true) by ??= where;
  }
  return by ? { inject: true, by } : { inject: false, reason: `not opted in (no ${INJECT}=true on the pod or its namespace)` };
}
