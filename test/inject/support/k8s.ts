// Shared fixtures for the injection tests: schema validation with kubernetes-models, sample
// workloads, and settings.
import { Pod, ConfigMap, Secret, Service, ServiceAccount, Namespace } from 'kubernetes-models/v1';
import { Deployment, StatefulSet, DaemonSet, ReplicaSet } from 'kubernetes-models/apps/v1';
import { Job, CronJob } from 'kubernetes-models/batch/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ClusterRole, ClusterRoleBinding, Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { MutatingWebhookConfiguration } from 'kubernetes-models/admissionregistration.k8s.io/v1';
import { buildSettings, type InjectSettings } from '../../../src/inject/settings.ts';

type Model = new (data: never) => { validate(): void };
const MODELS: Record<string, Model> = {
  'v1/Pod': Pod, 'v1/ConfigMap': ConfigMap, 'v1/Secret': Secret, 'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount, 'v1/Namespace': Namespace,
  'apps/v1/Deployment': Deployment, 'apps/v1/StatefulSet': StatefulSet, 'apps/v1/DaemonSet': DaemonSet, 'apps/v1/ReplicaSet': ReplicaSet,
  'batch/v1/Job': Job, 'batch/v1/CronJob': CronJob,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole, 'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
  'rbac.authorization.k8s.io/v1/Role': Role, 'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding,
  'admissionregistration.k8s.io/v1/MutatingWebhookConfiguration': MutatingWebhookConfiguration,
};

/** Validate against the Kubernetes OpenAPI schema of its kind; throws with the schema's message. */
export function validateK8s(obj: unknown): void {
  const o = obj as { apiVersion?: string; kind?: string };
  const model = MODELS[`${o.apiVersion}/${o.kind}`];
  if (!model) throw new Error(`no schema known for ${o.apiVersion}/${o.kind}`);
  new model(obj as never).validate();
}

export function hasSchema(obj: unknown): boolean {
  const o = obj as { apiVersion?: string; kind?: string };
  return Boolean(MODELS[`${o.apiVersion}/${o.kind}`]);
}

export const TEST_SETTINGS: InjectSettings = buildSettings({
  image: 'registry.example/authproxy:test',
  trustDomain: 'example.org',
  issuer: 'https://login.example.org/',
});

export function samplePod(opts: { labels?: Record<string, string>; annotations?: Record<string, string> } = {}): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web-1', namespace: 'shop', labels: { app: 'web', ...opts.labels }, ...(opts.annotations ? { annotations: opts.annotations } : {}) },
    spec: {
      serviceAccountName: 'web',
      containers: [{ name: 'web', image: 'example/web:1', ports: [{ name: 'http', containerPort: 8080 }] }],
    },
  };
}

export function sampleDeployment(opts: { labels?: Record<string, string>; annotations?: Record<string, string> } = {}): Record<string, unknown> {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace: 'shop' },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web', ...opts.labels }, ...(opts.annotations ? { annotations: opts.annotations } : {}) },
        spec: {
          serviceAccountName: 'web',
          initContainers: [{ name: 'migrate', image: 'example/migrate:1' }],
          containers: [
            { name: 'web', image: 'example/web:1', ports: [{ name: 'http', containerPort: 8080 }], env: [{ name: 'LOG_LEVEL', value: 'info' }] },
            { name: 'worker', image: 'example/worker:1', env: [{ name: 'HTTP_PROXY', value: 'http://corp-proxy:3128' }] },
          ],
          volumes: [{ name: 'cache', emptyDir: {} }],
        },
      },
    },
  };
}
