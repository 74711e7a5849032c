import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mutatePodTemplate, SIDECAR_NAME, type Mutation } from '../../src/inject/mutate.ts';
import { buildSettings } from '../../src/inject/settings.ts';
import { buildConfig } from '../../src/config/config.ts';
import { parseRunFlags } from '../../src/config/flags.ts';
import type { Container, NamespaceMeta, PodTemplate } from '../../src/inject/k8s.ts';
import { samplePod, sampleDeployment, TEST_SETTINGS, validateK8s } from './support/k8s.ts';

const NS: NamespaceMeta = { name: 'shop', labels: {}, annotations: {} };
const nsLabelled = (value: string): NamespaceMeta => ({ ...NS, labels: { 'authproxy.dev/inject': value } });

function podTemplate(labels: Record<string, string> = {}, annotations: Record<string, string> = {}): PodTemplate {
  return samplePod({ labels, annotations }) as unknown as PodTemplate;
}

function injected(m: Mutation): PodTemplate {
  if (m.action !== 'inject') assert.fail(`expected injection, got ${JSON.stringify(m)}`);
  return m.template;
}

function sidecarOf(t: PodTemplate): Container {
  const c = [...(t.spec.initContainers ?? []), ...t.spec.containers].find((x) => x.name === SIDECAR_NAME);
  assert.ok(c, 'sidecar container present');
  return c;
}

const envOf = (c: Container): Record<string, string | undefined> => Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));

test('a pod labelled authproxy.dev/inject=true gets a native sidecar as its first init container', () => {
  const t = injected(mutatePodTemplate(podTemplate({ 'authproxy.dev/inject': 'true' }), NS, TEST_SETTINGS));
  const first = t.spec.initContainers?.[0];
  assert.equal(first?.name, 'authproxy');
  assert.equal(first?.restartPolicy, 'Always');
  assert.equal(t.spec.containers.length, 1, 'no extra regular container');
  assert.equal(t.metadata?.annotations?.['authproxy.dev/injected'], 'native-sidecar');
  validateK8s(t);
});

test('labels and annotations opt in on the pod or on its namespace, and any "false" opts out', () => {
  const cases: Array<[string, PodTemplate, NamespaceMeta, boolean]> = [
    ['nothing set', podTemplate(), NS, false],
    ['pod label', podTemplate({ 'authproxy.dev/inject': 'true' }), NS, true],
    ['pod annotation', podTemplate({}, { 'authproxy.dev/inject': 'true' }), NS, true],
    ['namespace label', podTemplate(), nsLabelled('true'), true],
    ['namespace annotation', podTemplate(), { ...NS, annotations: { 'authproxy.dev/inject': 'true' } }, true],
    ['pod opts out of an opted-in namespace', podTemplate({}, { 'authproxy.dev/inject': 'false' }), nsLabelled('true'), false],
    ['opted-out namespace wins over the pod', podTemplate({ 'authproxy.dev/inject': 'true' }), nsLabelled('false'), false],
    ['label true, annotation false on the pod', podTemplate({ 'authproxy.dev/inject': 'true' }, { 'authproxy.dev/inject': 'false' }), NS, false],
  ];
  for (const [name, t, ns, want] of cases) {
    const m = mutatePodTemplate(t, ns, TEST_SETTINGS);
    assert.equal(m.action, want ? 'inject' : 'skip', name);
  }
});

test('the skip reason says who opted out', () => {
  const m = mutatePodTemplate(podTemplate({ 'authproxy.dev/inject': 'true' }), nsLabelled('false'), TEST_SETTINGS);
  assert.equal(m.action, 'skip');
  assert.match(m.action === 'skip' ? m.reason : '', /namespace shop label authproxy\.dev\/inject=false/);
});

test('injecting an injected pod changes nothing', () => {
  const once = injected(mutatePodTemplate(podTemplate({ 'authproxy.dev/inject': 'true' }), NS, TEST_SETTINGS));
  const twice = mutatePodTemplate(once, NS, TEST_SETTINGS);
  assert.deepEqual(twice, { action: 'skip', reason: 'already injected' });
});

test('the input template is not modified', () => {
  const t = podTemplate({ 'authproxy.dev/inject': 'true' });
  const copy = structuredClone(t);
  injected(mutatePodTemplate(t, NS, TEST_SETTINGS));
  assert.deepEqual(t, copy);
});

test('the sidecar forwards to the first container port and listens as the design says, admin on the pod IP for probes', () => {
  const c = sidecarOf(injected(mutatePodTemplate(podTemplate({ 'authproxy.dev/inject': 'true' }), NS, TEST_SETTINGS)));
  const args = c.args as string[];
  for (const a of ['--upstream=http://127.0.0.1:8080', '--listen=0.0.0.0:15443', '--outbound-listen=127.0.0.1:15001',
    '--admin-listen=0.0.0.0:15000', '--cert=/var/run/authproxy/certs/tls.crt', '--key=/var/run/authproxy/certs/tls.key',
    '--ca=/var/run/authproxy/certs/ca.crt', '--trust-domain=example.org', '--policies=/etc/authproxy/policies',
    '--issuer=https://login.example.org/']) {
    assert.ok(args.includes(a), `args include ${a}: ${args.join(' ')}`);
  }
  assert.deepEqual((c.readinessProbe as { httpGet: unknown }).httpGet, { path: '/readyz', port: 15000 });
  assert.deepEqual((c.livenessProbe as { httpGet: unknown }).httpGet, { path: '/healthz', port: 15000 });
  assert.deepEqual((c.startupProbe as { httpGet: unknown }).httpGet, { path: '/readyz', port: 15000 });
});

test('the sidecar runs as non-root with a read-only root filesystem, no capabilities and resource requests', () => {
  const c = sidecarOf(injected(mutatePodTemplate(podTemplate({ 'authproxy.dev/inject': 'true' }), NS, TEST_SETTINGS)));
  assert.deepEqual(c.securityContext, {
    runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
  });
  assert.deepEqual(c.resources, { requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '256Mi' } });
});

test('certificates come from the service account\'s Secret and policies from the ConfigMap, mounted read-only', () => {
  const t = injected(mutatePodTemplate(podTemplate({ 'authproxy.dev/inject': 'true' }), NS, TEST_SETTINGS));
  assert.deepEqual(t.spec.volumes, [
    { name: 'authproxy-certs', secret: { secretName: 'web-authproxy-tls' } },
    { name: 'authproxy-policies', configMap: { name: 'authproxy-policies' } },
  ]);
  assert.ok(sidecarOf(t).volumeMounts?.every((m) => m.readOnly));
});

test('a CSI driver named by annotation replaces the Secret and gets the pod\'s SPIFFE ID', () => {
  const t = injected(mutatePodTemplate(podTemplate({ 'authproxy.dev/inject': 'true' }, {
    'authproxy.dev/cert-csi-driver': 'csi.cert-manager.io', 'authproxy.dev/cert-csi-issuer': 'Issuer/team-ca',
  }), NS, TEST_SETTINGS));
  const certs = t.spec.volumes?.find((v) => v.name === 'authproxy-certs') as unknown as { csi: { driver: string; readOnly: boolean; volumeAttributes: Record<string, string> } };
  assert.equal(certs.csi.driver, 'csi.cert-manager.io');
  assert.equal(certs.csi.readOnly, true);
  assert.equal(certs.csi.volumeAttributes['csi.cert-manager.io/uri-sans'], 'spiffe://example.org/ns/${POD_NAMESPACE}/sa/${SERVICE_ACCOUNT_NAME}');
  assert.equal(certs.csi.volumeAttributes['csi.cert-manager.io/issuer-name'], 'team-ca');
  assert.equal(certs.csi.volumeAttributes['csi.cert-manager.io/issuer-kind'], 'Issuer');
  validateK8s(t);
});

test('per-pod annotations override upstream port, policies ConfigMap, issuer, client id, Secret and resources', () => {
  const t = injected(mutatePodTemplate(podTemplate({ 'authproxy.dev/inject': 'true' }, {
    'authproxy.dev/upstream-port': '9090',
    'authproxy.dev/policies-configmap': 'shop-policies',
    'authproxy.dev/issuer': 'https://idp.example.net/realms/shop',
    'authproxy.dev/client-id': 'web-client',
    'authproxy.dev/cert-secret': 'web-identity',
    'authproxy.dev/proxy-cpu': '200m',
    'authproxy.dev/proxy-memory': '192Mi',
    'authproxy.dev/proxy-memory-limit': '512Mi',
    'authproxy.dev/no-proxy': '.internal.example, 10.0.0.0/8',
  }), NS, TEST_SETTINGS));
  const c = sidecarOf(t);
  const args = c.args as string[];
  assert.ok(args.includes('--upstream=http://127.0.0.1:9090'));
  assert.ok(args.includes('--issuer=https://idp.example.net/realms/shop'));
  assert.ok(args.includes('--client-id=web-client'));
  assert.deepEqual(c.resources, { requests: { cpu: '200m', memory: '192Mi' }, limits: { memory: '512Mi' } });
  assert.deepEqual(t.spec.volumes, [
    { name: 'authproxy-certs', secret: { secretName: 'web-identity' } },
    { name: 'authproxy-policies', configMap: { name: 'shop-policies' } },
  ]);
  assert.equal(envOf(t.spec.containers[0]!).NO_PROXY, 'localhost,127.0.0.1,::1,.internal.example,10.0.0.0/8');
});

test('the upstream port may name a container port', () => {
  const t = injected(mutatePodTemplate(podTemplate({ 'authproxy.dev/inject': 'true' }, { 'authproxy.dev/upstream-port': 'http' }), NS, TEST_SETTINGS));
  assert.ok((sidecarOf(t).args as string[]).includes('--upstream=http://127.0.0.1:8080'));
});

test('every app container gets HTTP_PROXY and NO_PROXY, and a value the app already sets is kept', () => {
  const dep = sampleDeployment({ labels: { 'authproxy.dev/inject': 'true' } }) as { spec: { template: PodTemplate } };
  const t = injected(mutatePodTemplate(dep.spec.template, NS, TEST_SETTINGS));
  const [web, worker] = t.spec.containers;
  assert.deepEqual(envOf(web!), {
    LOG_LEVEL: 'info', HTTP_PROXY: 'http://127.0.0.1:15001', http_proxy: 'http://127.0.0.1:15001',
    NO_PROXY: 'localhost,127.0.0.1,::1', no_proxy: 'localhost,127.0.0.1,::1',
  });
  assert.equal(envOf(worker!).HTTP_PROXY, 'http://corp-proxy:3128');
  assert.equal(envOf(worker!).http_proxy, 'http://127.0.0.1:15001');
  assert.deepEqual(t.spec.initContainers?.map((c) => c.name), ['authproxy', 'migrate'], 'sidecar starts before the other init containers');
  assert.equal(t.spec.initContainers?.[1]?.env, undefined, 'init containers are not given the proxy');
});

test('invalid annotations are refused with a message naming the annotation', () => {
  const cases: Array<[Record<string, string>, string]> = [
    [{ 'authproxy.dev/upstream-port': '70000' }, 'authproxy.dev/upstream-port'],
    [{ 'authproxy.dev/upstream-port': 'grpc' }, 'authproxy.dev/upstream-port'],
    [{ 'authproxy.dev/upstream-port': '15443' }, 'authproxy.dev/upstream-port'],
    [{ 'authproxy.dev/policies-configmap': 'Not_A_Name' }, 'authproxy.dev/policies-configmap'],
    [{ 'authproxy.dev/issuer': 'ftp://idp' }, 'authproxy.dev/issuer'],
    [{ 'authproxy.dev/proxy-memory': 'lots' }, 'authproxy.dev/proxy-memory'],
    [{ 'authproxy.dev/native-sidecar': 'yes' }, 'authproxy.dev/native-sidecar'],
    [{ 'authproxy.dev/cert-secret': 's', 'authproxy.dev/cert-csi-driver': 'csi.cert-manager.io' }, 'authproxy.dev/cert-csi-driver'],
    [{ 'authproxy.dev/inject': 'enabled' }, 'authproxy.dev/inject'],
    [{ 'authproxy.dev/federate': 'partner.example' }, 'authproxy.dev/federate'],
    [{ 'authproxy.dev/federate': 'Partner.Example=partner-bundle' }, 'authproxy.dev/federate'],
    [{ 'authproxy.dev/federate': '..=partner-bundle' }, 'authproxy.dev/federate'],
    [{ 'authproxy.dev/federate': 'example.org=partner-bundle' }, 'authproxy.dev/federate'],
    [{ 'authproxy.dev/federate': 'partner.example=a, partner.example=b' }, 'authproxy.dev/federate'],
    [{ 'authproxy.dev/federate': 'partner.example=Not_A_Name' }, 'authproxy.dev/federate'],
    [{ 'authproxy.dev/federate': 'partner.example=bundle/bad key' }, 'authproxy.dev/federate'],
  ];
  for (const [annotations, name] of cases) {
    const m = mutatePodTemplate(podTemplate({ 'authproxy.dev/inject': 'true' }, annotations), NS, TEST_SETTINGS);
    assert.equal(m.action, 'refuse', JSON.stringify(annotations));
    if (m.action === 'refuse') {
      assert.equal(m.field, name);
      assert.ok(m.message.startsWith(`${name}: `), m.message);
    }
  }
});

test('a pod with no container port and no upstream-port annotation is refused, naming the annotation', () => {
  const t = podTemplate({ 'authproxy.dev/inject': 'true' });
  delete t.spec.containers[0]!.ports;
  const m = mutatePodTemplate(t, NS, TEST_SETTINGS);
  assert.equal(m.action, 'refuse');
  assert.match(m.action === 'refuse' ? m.message : '', /^authproxy\.dev\/upstream-port: no TCP containerPort/);
});

test('annotations of a pod that did not opt in are not checked', () => {
  const m = mutatePodTemplate(podTemplate({}, { 'authproxy.dev/upstream-port': 'nonsense' }), NS, TEST_SETTINGS);
  assert.equal(m.action, 'skip');
});

test('without native sidecars the sidecar is the first container and holds the app until ready', () => {
  const legacy = buildSettings({ ...structuredClone(TEST_SETTINGS), nativeSidecar: false });
  const t = injected(mutatePodTemplate(podTemplate({ 'authproxy.dev/inject': 'true' }), NS, legacy));
  assert.deepEqual(t.spec.containers.map((c) => c.name), ['authproxy', 'web']);
  assert.equal(t.spec.initContainers, undefined);
  const c = t.spec.containers[0]!;
  assert.equal(c.restartPolicy, undefined);
  assert.deepEqual((c.lifecycle as { postStart: { exec: { command: string[] } } }).postStart.exec.command.slice(0, 2), ['node', '-e']);
  assert.equal(t.metadata?.annotations?.['kubectl.kubernetes.io/default-container'], 'web');
  assert.equal(t.metadata?.annotations?.['authproxy.dev/injected'], 'sidecar');
  validateK8s(t);
});

test('the per-pod native-sidecar annotation overrides the cluster setting', () => {
  const legacy = buildSettings({ ...structuredClone(TEST_SETTINGS), nativeSidecar: false });
  const t = injected(mutatePodTemplate(podTemplate({ 'authproxy.dev/inject': 'true' }, { 'authproxy.dev/native-sidecar': 'true' }), NS, legacy));
  assert.equal(t.spec.initContainers?.[0]?.name, 'authproxy');
});

test('a Job pod without native sidecars is refused: a regular sidecar would keep it running forever', () => {
  const t = podTemplate({ 'authproxy.dev/inject': 'true' }, { 'authproxy.dev/native-sidecar': 'false' });
  t.spec.restartPolicy = 'Never';
  const m = mutatePodTemplate(t, NS, TEST_SETTINGS);
  assert.equal(m.action, 'refuse');
  assert.equal(m.action === 'refuse' ? m.field : '', 'authproxy.dev/native-sidecar');
});

test('a pod that already has a volume with a reserved name is refused', () => {
  for (const name of ['authproxy-certs', 'authproxy-federation-0']) {
    const t = podTemplate({ 'authproxy.dev/inject': 'true' });
    t.spec.volumes = [{ name, emptyDir: {} }];
    const m = mutatePodTemplate(t, NS, TEST_SETTINGS);
    assert.equal(m.action, 'refuse');
    assert.match(m.action === 'refuse' ? m.message : '', new RegExp(`spec\\.volumes: a volume named '${name}'`));
  }
});

test('partner trust domains named in authproxy.dev/federate get their ConfigMap bundles mounted and passed to the sidecar as --federate', () => {
  const t = injected(mutatePodTemplate(podTemplate({ 'authproxy.dev/inject': 'true' }, {
    'authproxy.dev/federate': 'partner.example=partner-bundle, spire.other=spire-bundle/bundle.crt',
  }), NS, TEST_SETTINGS));
  assert.deepEqual(t.spec.volumes?.filter((v) => v.name.startsWith('authproxy-federation-')), [
    { name: 'authproxy-federation-0', configMap: { name: 'partner-bundle', items: [{ key: 'ca.crt', path: 'bundle.pem' }] } },
    { name: 'authproxy-federation-1', configMap: { name: 'spire-bundle', items: [{ key: 'bundle.crt', path: 'bundle.pem' }] } },
  ]);
  const sidecar = sidecarOf(t);
  assert.deepEqual(sidecar.volumeMounts?.filter((m) => m.name.startsWith('authproxy-federation-')), [
    { name: 'authproxy-federation-0', mountPath: '/var/run/authproxy/federation/partner.example', readOnly: true },
    { name: 'authproxy-federation-1', mountPath: '/var/run/authproxy/federation/spire.other', readOnly: true },
  ]);
  // What the sidecar makes of its arguments: each domain with the file its volume puts in place.
  assert.deepEqual(buildConfig([parseRunFlags(sidecar.args as string[]).raw], '/').federations, [
    { trustDomain: 'partner.example', bundle: '/var/run/authproxy/federation/partner.example/bundle.pem' },
    { trustDomain: 'spire.other', bundle: '/var/run/authproxy/federation/spire.other/bundle.pem' },
  ]);
  validateK8s(t);
  const plain = injected(mutatePodTemplate(podTemplate({ 'authproxy.dev/inject': 'true' }), NS, TEST_SETTINGS));
  assert.ok(!(sidecarOf(plain).args as string[]).some((a) => a.startsWith('--federate')), 'no federation unless asked for');
});

test('the legacy postStart hook returns only once the sidecar answers /readyz', async () => {
  const { createServer } = await import('node:http');
  const { execFile } = await import('node:child_process');
  const legacy = buildSettings({ ...structuredClone(TEST_SETTINGS), nativeSidecar: false });
  const t = injected(mutatePodTemplate(podTemplate({ 'authproxy.dev/inject': 'true' }), NS, legacy));
  const [, flag, script] = (t.spec.containers[0]!.lifecycle as { postStart: { exec: { command: string[] } } }).postStart.exec.command;
  let ready = false;
  let polls = 0;
  const server = createServer((req, res) => {
    if (req.url === '/readyz') polls++;
    res.writeHead(ready && req.url === '/readyz' ? 200 : 503).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  try {
    const started = Date.now();
    const exited = new Promise<number | null>((resolve) => {
      // Same script, pointed at this test's port instead of the sidecar's 15000.
      const child = execFile(process.execPath, [flag!, script!.replace(':15000/', `:${port}/`)]);
      child.on('exit', (code) => resolve(code));
    });
    setTimeout(() => { ready = true; }, 700);
    assert.equal(await exited, 0);
    assert.ok(polls >= 2, `polled until ready (${polls} polls)`);
    assert.ok(Date.now() - started >= 600, 'did not return before the sidecar was ready');
  } finally {
    server.close();
  }
});

test('an issuer URL the injector accepts is one the sidecar accepts, and one it refuses the sidecar refuses too', () => {
  // The sidecar is started with exactly the args the injector writes; a URL only the injector
  // accepted made every injected pod exit 2 at start (crash loop).
  const urls = [
    'https://idp.example.net/realms/shop', 'https://idp.example.net:8443/', 'https://[2001:db8::1]/',
    'http://issuer.auth.svc.cluster.local:8080', 'http://127.0.0.1:8080/', 'https://user:s3cret@issuer.example.com/',
    'https://:s3cret@issuer.example.com/', 'https://idp.example.net/#frag', 'ftp://idp', 'not a url',
  ];
  for (const url of urls) {
    const m = mutatePodTemplate(podTemplate({ 'authproxy.dev/inject': 'true' }, { 'authproxy.dev/issuer': url }), NS, TEST_SETTINGS);
    const sidecarArgs = m.action === 'inject'
      ? sidecarOf(m.template).args as string[]
      : ['--upstream=http://127.0.0.1:8080', '--cert=a', '--key=b', '--ca=c', `--issuer=${url}`];
    let sidecarError: string | null = null;
    try { buildConfig([parseRunFlags(sidecarArgs).raw], '/'); } catch (e) { sidecarError = (e as Error).message; }
    assert.equal(m.action === 'inject', sidecarError === null, `${url}: injector ${m.action}, sidecar ${sidecarError ?? 'accepts'}`);
    if (m.action === 'refuse') {
      assert.equal(m.field, 'authproxy.dev/issuer');
      assert.doesNotMatch(m.message, /s3cret/, m.message);
      assert.doesNotMatch(sidecarError!, /s3cret/, sidecarError!);
    }
  }
});

test('a hostNetwork pod is skipped even when opted in, with the reason, and its annotations are not checked', () => {
  const t = podTemplate({ 'authproxy.dev/inject': 'true' }, { 'authproxy.dev/upstream-port': 'ninety' });
  t.spec.hostNetwork = true;
  const m = mutatePodTemplate(t, NS, TEST_SETTINGS);
  assert.equal(m.action, 'skip');
  if (m.action === 'skip') assert.match(m.reason, /hostNetwork/);
  t.spec.hostNetwork = false;
  assert.equal(mutatePodTemplate(t, NS, TEST_SETTINGS).action, 'refuse', 'hostNetwork: false is an ordinary pod');
});
