// The few Kubernetes shapes injection reads and writes. Index signatures keep every field we do not
// know about: a mutation must hand back the user's object with nothing dropped.

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [key: string]: unknown;
}

export interface EnvVar { name: string; value?: string; [key: string]: unknown }
export interface ContainerPort { containerPort: number; name?: string; protocol?: string; [key: string]: unknown }
export interface VolumeMount { name: string; mountPath: string; readOnly?: boolean; [key: string]: unknown }

export interface Container {
  name: string;
  image?: string;
  ports?: ContainerPort[];
  env?: EnvVar[];
  volumeMounts?: VolumeMount[];
  restartPolicy?: string;
  [key: string]: unknown;
}

export interface Volume { name: string; [key: string]: unknown }

export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  serviceAccountName?: string;
  restartPolicy?: string;
  [key: string]: unknown;
}

/** A pod, or the `template` of a workload: the unit injection works on. */
export interface PodTemplate { metadata?: ObjectMeta; spec: PodSpec; [key: string]: unknown }

/** What injection needs to know about the namespace: only its labels and annotations. */
export interface NamespaceMeta {
  name: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** String maps as Kubernetes allows them (labels, annotations); anything else is treated as absent. */
export function stringMap(v: unknown): Record<string, string> {
  if (!isObject(v)) return {};
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  return out;
}
