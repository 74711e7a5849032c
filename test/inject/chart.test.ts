import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { parseAllDocuments } from 'yaml';
import { helm } from '../support/k8s-tools.ts';
import { buildSettings } from '../../src/inject/settings.ts';
import { policySetFromSources } from '../../src/policy/load.ts';
import { validateK8s, hasSchema } from './support/k8s.ts';

const CHART = 'charts/authproxy';
type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; annotations?: Record<string, string> }; [k: string]: unknown };

async function render(args: string[] = []): Promise<Obj[]> {
  const { stdout } = await helm(['template', 'ap', CHART, '--namespace', 'authproxy-system', ...args]);
  return parseAllDocuments(stdout).map((d) => (d as { toJS(): Obj | null }).toJS()).filter((o): o is Obj => o !== null);
}

function one(objs: Obj[], kind: string, name?: string): Obj {
  const found = objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  assert.equal(found.length, 1, `exactly one ${kind}${name ? ` ${name}` : ''} (got ${found.length})`);
  return found[0]!;
}

/** Every object with a Kubernetes schema must validate; anything else must be a known CRD kind. */
function validateAll(objs: Obj[]): void {
  for (const o of objs) {
    if (hasSchema(o)) { validateK8s(o); continue; }
    assert.equal(o.apiVersion, 'cert-manager.io/v1', `unexpected ${o.apiVersion}/${o.kind}`);
    assert.ok(['Issuer', 'Certificate'].includes(o.kind), `unexpected cert-manager kind ${o.kind}`);
    assert.equal(typeof (o as { spec?: unknown }).spec, 'object');
  }
}

interface Webhook {
  name: string; failurePolicy: string; sideEffects: string; admissionReviewVersions: string[];
  clientConfig: { caBundle?: string; service: { name: string; namespace: string; path: string; port: number } };
  namespaceSelector: { matchLabels?: Record<string, string>; matchExpressions: Array<{ key: string; operator: string; values: string[] }> };
  objectSelector: { matchExpressions: Array<{ key: string; operator: string; values: string[] }> };
  rules: Array<{ resources: string[]; operations: string[] }>;
}

test('the chart passes helm lint --strict with default and non-default values', async () => {
  await helm(['lint', '--strict', CHART]);
  await helm(['lint', '--strict', CHART, '--set', 'certManager.enabled=true', '--set', 'webhook.matchAllPods=true', '--set', 'sidecar.certificates.source=csi']);
});

test('the default render validates against the Kubernetes schemas and holds every piece the injector needs', async () => {
  const objs = await render();
  validateAll(objs);
  const kinds = objs.map((o) => o.kind).sort();
  assert.deepEqual(kinds, ['ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'ConfigMap', 'Deployment', 'MutatingWebhookConfiguration',
    'PodDisruptionBudget', 'Secret', 'Service', 'ServiceAccount']);

  const dep = one(objs, 'Deployment') as Obj & { spec: { replicas: number; template: { metadata: { labels: Record<string, string> }; spec: {
    serviceAccountName: string; containers: Array<{ args: string[]; image: string; securityContext: Record<string, unknown> }>;
    volumes: Array<{ name: string; secret?: { secretName: string }; configMap?: { name: string } }> } } } };
  const c = dep.spec.template.spec.containers[0]!;
  assert.equal(c.image, 'ghcr.io/authproxy/authproxy:0.1.0');
  assert.deepEqual(c.args.slice(0, 2), ['injector', '--listen=0.0.0.0:8443']);
  assert.equal(c.securityContext.readOnlyRootFilesystem, true);
  assert.equal(dep.spec.template.metadata.labels['authproxy.dev/inject'], 'false', 'the injector is never injected');
  assert.equal(dep.spec.template.spec.serviceAccountName, one(objs, 'ServiceAccount').metadata.name);

  const rbac = one(objs, 'ClusterRole') as Obj & { rules: unknown };
  assert.deepEqual(rbac.rules, [{ apiGroups: [''], resources: ['namespaces'], verbs: ['get'] }]);
  assert.equal((one(objs, 'PodDisruptionBudget') as Obj & { spec: { minAvailable: number } }).spec.minAvailable, 1);
});

test('the generated CA bundle signs the serving certificate, which names the webhook Service', async () => {
  const objs = await render();
  const secret = one(objs, 'Secret') as Obj & { data: Record<string, string> };
  const mwc = one(objs, 'MutatingWebhookConfiguration') as Obj & { webhooks: Webhook[] };
  const svc = one(objs, 'Service');
  const dep = one(objs, 'Deployment') as Obj & { spec: { template: { spec: { volumes: Array<{ secret?: { secretName: string } }> } } } };
  assert.ok(dep.spec.template.spec.volumes.some((v) => v.secret?.secretName === secret.metadata.name), 'injector mounts the serving Secret');
  const ca = new X509Certificate(Buffer.from(secret.data['ca.crt']!, 'base64'));
  const leaf = new X509Certificate(Buffer.from(secret.data['tls.crt']!, 'base64'));
  assert.ok(ca.ca);
  assert.ok(leaf.verify(ca.publicKey), 'leaf signed by the CA');
  assert.ok(leaf.checkIssued(ca));
  assert.ok(leaf.checkHost(`${svc.metadata.name}.authproxy-system.svc`), leaf.subjectAltName);
  for (const w of mwc.webhooks) {
    assert.equal(w.clientConfig.caBundle, secret.data['ca.crt']);
    assert.deepEqual(w.clientConfig.service, { name: svc.metadata.name, namespace: 'authproxy-system', path: '/inject', port: 443 });
  }
});

test('by default the API server calls the injector only for pods opted in by label, never in system namespaces', async () => {
  const mwc = one(await render(), 'MutatingWebhookConfiguration') as Obj & { webhooks: Webhook[] };
  assert.deepEqual(mwc.webhooks.map((w) => w.name), ['namespace.inject.authproxy.dev', 'object.inject.authproxy.dev']);
  const [byNs, byObj] = mwc.webhooks as [Webhook, Webhook];
  assert.deepEqual(byNs.namespaceSelector.matchExpressions[0], { key: 'authproxy.dev/inject', operator: 'In', values: ['true'] });
  assert.deepEqual(byNs.objectSelector.matchExpressions, [{ key: 'authproxy.dev/inject', operator: 'NotIn', values: ['false'] }]);
  assert.deepEqual(byObj.namespaceSelector.matchExpressions[0], { key: 'authproxy.dev/inject', operator: 'NotIn', values: ['true', 'false'] });
  assert.deepEqual(byObj.objectSelector.matchExpressions, [{ key: 'authproxy.dev/inject', operator: 'In', values: ['true'] }]);
  for (const w of mwc.webhooks) {
    assert.deepEqual(w.namespaceSelector.matchExpressions[1], {
      key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'kube-public', 'kube-node-lease', 'authproxy-system'],
    });
    assert.equal(w.failurePolicy, 'Fail');
    assert.equal(w.sideEffects, 'None');
    assert.deepEqual(w.admissionReviewVersions, ['v1']);
    assert.deepEqual(w.rules.map((r) => [r.resources, r.operations]), [[['pods'], ['CREATE']]]);
  }
});

test('the rendered injection settings are accepted by the injector and follow the values', async () => {
  const settingsOf = async (args: string[]): Promise<ReturnType<typeof buildSettings>> => {
    const cm = one(await render(args), 'ConfigMap', 'ap-authproxy-injector-settings') as Obj & { data: Record<string, string> };
    const { parse } = await import('yaml');
    return buildSettings(parse(cm.data['settings.yaml']!));
  };
  const defaults = await settingsOf([]);
  assert.equal(defaults.nativeSidecar, true);
  assert.equal(defaults.image, 'ghcr.io/authproxy/authproxy:0.1.0');
  const custom = await settingsOf(['--kube-version', '1.28.3', '--set', 'trustDomain=prod.example', '--set', 'issuer=https://login.example/',
    '--set', 'image.tag=1.2.3', '--set', 'sidecar.certificates.source=csi', '--set', 'sidecar.resources.requests.cpu=100m']);
  assert.equal(custom.nativeSidecar, false, 'Kubernetes 1.28 has no native sidecars');
  assert.equal(custom.trustDomain, 'prod.example');
  assert.equal(custom.issuer, 'https://login.example/');
  assert.equal(custom.image, 'ghcr.io/authproxy/authproxy:1.2.3');
  assert.equal(custom.certificates.source, 'csi');
  assert.equal(custom.resources.requests.cpu, '100m');
  assert.equal((await settingsOf(['--kube-version', '1.28.3', '--set', 'sidecar.nativeSidecar=true'])).nativeSidecar, true);
});

test('the default policies ConfigMap holds a policy set the sidecar accepts, in every listed namespace', async () => {
  const objs = await render(['--set', 'trustDomain=prod.example', '--set', 'defaultPolicies.namespaces={shop,billing}']);
  const cms = objs.filter((o) => o.kind === 'ConfigMap' && o.metadata.name === 'authproxy-policies') as Array<Obj & { data: Record<string, string> }>;
  assert.deepEqual(cms.map((c) => c.metadata.namespace).sort(), ['authproxy-system', 'billing', 'shop']);
  for (const cm of cms) {
    const set = policySetFromSources([{ name: 'policies.yaml', bytes: Buffer.from(cm.data['policies.yaml']!) }]);
    assert.equal(set.authorizationPolicies, 1);
    assert.match(cm.data['policies.yaml']!, /spiffe:\/\/prod\.example\/\*\*/);
  }
});

test('with cert-manager the webhook CA comes from a Certificate, and the chart stops generating one', async () => {
  const objs = await render(['--set', 'certManager.enabled=true', '--set', 'webhook.matchAllPods=true', '--set', 'injector.replicas=1',
    '--set', 'webhook.failurePolicy=Ignore', '--set-json', 'webhook.namespaceSelector={"matchLabels":{"team":"payments"}}']);
  validateAll(objs);
  assert.equal(objs.filter((o) => o.kind === 'Secret').length, 0);
  assert.equal(objs.filter((o) => o.kind === 'PodDisruptionBudget').length, 0, 'no PDB for a single replica (it would block drains)');
  const mwc = one(objs, 'MutatingWebhookConfiguration') as Obj & { webhooks: Webhook[] };
  const cert = one(objs, 'Certificate', 'ap-authproxy-injector') as Obj & { spec: { secretName: string; dnsNames: string[]; issuerRef: { name: string } } };
  assert.equal(mwc.metadata.annotations?.['cert-manager.io/inject-ca-from'], `authproxy-system/${cert.metadata.name}`);
  assert.ok(cert.spec.dnsNames.includes('ap-authproxy-injector.authproxy-system.svc'));
  const dep = one(objs, 'Deployment') as Obj & { spec: { template: { spec: { volumes: Array<{ secret?: { secretName: string } }> } } } };
  assert.ok(dep.spec.template.spec.volumes.some((v) => v.secret?.secretName === cert.spec.secretName));
  one(objs, 'Issuer', cert.spec.issuerRef.name);
  assert.equal(mwc.webhooks.length, 1);
  const [w] = mwc.webhooks as [Webhook];
  assert.equal(w.clientConfig.caBundle, undefined);
  assert.equal(w.failurePolicy, 'Ignore');
  assert.deepEqual(w.namespaceSelector.matchLabels, { team: 'payments' });
  assert.deepEqual(w.objectSelector.matchExpressions, [{ key: 'authproxy.dev/inject', operator: 'NotIn', values: ['false'] }]);
});

test('an existing cert-manager issuer is used as given', async () => {
  const objs = await render(['--set', 'certManager.enabled=true', '--set', 'certManager.issuerRef.name=corp-ca', '--set', 'certManager.issuerRef.kind=ClusterIssuer']);
  assert.equal(objs.filter((o) => o.kind === 'Issuer').length, 0);
  const cert = one(objs, 'Certificate') as Obj & { spec: { issuerRef: unknown } };
  assert.deepEqual(cert.spec.issuerRef, { name: 'corp-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' });
});

test('invalid values are refused by the chart with the value named', async () => {
  await assert.rejects(helm(['template', 'ap', CHART, '--set', 'webhook.failurePolicy=Sometimes']), /failurePolicy/);
  await assert.rejects(helm(['template', 'ap', CHART, '--set', 'sidecar.nativeSidecar=maybe']), /nativeSidecar/);
  await assert.rejects(helm(['template', 'ap', CHART, '--set', 'trustDomain=Not A Domain']), /trustDomain/);
});
