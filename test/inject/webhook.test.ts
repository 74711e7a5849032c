import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import { writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { issueCertificate } from '../../src/certs/pki.ts';
import { applyPatch, type Op } from './support/json-patch.ts';
import { admissionReview, get, post, startInjector, webhookPki, type Injector, type WebhookPki } from './support/injector.ts';
import { samplePod, sampleDeployment, TEST_SETTINGS, validateK8s } from './support/k8s.ts';

interface Review { apiVersion: string; kind: string; response: { uid: string; allowed: boolean; patchType?: string; patch?: string; status?: { code: number; message: string } } }

let pki: WebhookPki;
let injector: Injector;
let ca: string;
let api: Server;
const TOKEN = 'test-service-account-token';
const NAMESPACES: Record<string, Record<string, string>> = {
  shop: {},
  meshed: { 'authproxy.dev/inject': 'true' },
  excluded: { 'authproxy.dev/inject': 'false' },
};

before(async () => {
  pki = await webhookPki();
  ca = await readFile(pki.caFile, 'utf8');
  // A stand-in for the Kubernetes API server: real TLS, real bearer-token check, the one GET the injector makes.
  const apiPair = await issueCertificate(pki.ca, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  api = createServer({ cert: apiPair.certPem, key: apiPair.keyPem }, (req, res) => {
    if (req.headers.authorization !== `Bearer ${TOKEN}`) { res.writeHead(401).end(); return; }
    const m = /^\/api\/v1\/namespaces\/([^/]+)$/.exec(req.url ?? '');
    const name = m?.[1] ?? '';
    if (name === 'broken') { res.writeHead(500).end('{}'); return; }
    if (name === 'slow') { setTimeout(() => res.writeHead(200).end('{}'), 3000); return; }
    const labels = NAMESPACES[name];
    if (!labels) { res.writeHead(404).end('{}'); return; }
    res.writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { 'kubernetes.io/metadata.name': name, ...labels } } }));
  });
  await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
  const apiPort = (api.address() as { port: number }).port;
  const tokenFile = join(pki.dir, 'token');
  await writeFile(tokenFile, TOKEN + '\n', { mode: 0o600 });
  const settingsFile = join(pki.dir, 'settings.yaml');
  await writeFile(settingsFile, stringify(structuredClone(TEST_SETTINGS)));
  injector = await startInjector([
    '--cert', pki.certFile, '--key', pki.keyFile, '--config', settingsFile,
    '--timeout', '1s', '--reload-interval', '200ms',
    '--kube-api', `https://127.0.0.1:${apiPort}`, '--kube-token-file', tokenFile, '--kube-ca-file', pki.caFile,
  ]);
});

after(async () => {
  await injector?.stop();
  api?.closeAllConnections();
  await new Promise<void>((r) => (api ? api.close(() => r()) : r()));
  await pki?.cleanup();
});

async function send(review: unknown): Promise<Review> {
  const reply = await post(injector.port, ca, '/inject', JSON.stringify(review));
  assert.equal(reply.status, 200, reply.body);
  const parsed = JSON.parse(reply.body) as Review;
  assert.equal(parsed.apiVersion, 'admission.k8s.io/v1');
  assert.equal(parsed.kind, 'AdmissionReview');
  return parsed;
}

function patchOf(r: Review): Op[] {
  assert.equal(r.response.patchType, 'JSONPatch');
  return JSON.parse(Buffer.from(r.response.patch!, 'base64').toString('utf8')) as Op[];
}

function replicaSetPod(labels: Record<string, string> = {}, annotations?: Record<string, string>): Record<string, unknown> {
  // As the API server sees a ReplicaSet's pod: generateName, no name yet.
  const pod = samplePod({ labels, ...(annotations ? { annotations } : {}) }) as { metadata: Record<string, unknown> };
  delete pod.metadata.name;
  delete pod.metadata.namespace;
  pod.metadata.generateName = 'web-7d4b9c-';
  return pod;
}

test('a labelled Pod gets a JSONPatch that applies and yields a valid pod with the native sidecar', async () => {
  const pod = replicaSetPod({ 'authproxy.dev/inject': 'true' });
  const review = admissionReview(pod);
  const r = await send(review);
  assert.equal(r.response.uid, (review.request as { uid: string }).uid, 'response carries the request uid');
  assert.equal(r.response.allowed, true);
  const patched = applyPatch(pod, patchOf(r)) as { spec: { initContainers: Array<{ name: string; restartPolicy?: string }> } };
  validateK8s(patched);
  assert.equal(patched.spec.initContainers[0]?.name, 'authproxy');
  assert.equal(patched.spec.initContainers[0]?.restartPolicy, 'Always');
});

test('an unlabelled Pod in an unlabelled namespace is admitted without a patch', async () => {
  const r = await send(admissionReview(replicaSetPod()));
  assert.equal(r.response.allowed, true);
  assert.equal(r.response.patch, undefined);
});

test('a Pod that already carries the sidecar is admitted unchanged', async () => {
  const pod = replicaSetPod({ 'authproxy.dev/inject': 'true' });
  const once = applyPatch(pod, patchOf(await send(admissionReview(pod))));
  const again = await send(admissionReview(once));
  assert.equal(again.response.allowed, true);
  assert.equal(again.response.patch, undefined);
});

test('a labelled Deployment gets a patch that applies and yields a valid Deployment', async () => {
  const dep = sampleDeployment({ labels: { 'authproxy.dev/inject': 'true' } });
  const r = await send(admissionReview(dep));
  const patched = applyPatch(dep, patchOf(r)) as { spec: { template: { spec: { initContainers: Array<{ name: string }>; containers: Array<{ name: string }> } } } };
  validateK8s(patched);
  assert.deepEqual(patched.spec.template.spec.initContainers.map((c) => c.name), ['authproxy', 'migrate']);
  assert.deepEqual(patched.spec.template.spec.containers.map((c) => c.name), ['web', 'worker']);
});

test('an unlabelled Deployment is admitted without a patch', async () => {
  const r = await send(admissionReview(sampleDeployment()));
  assert.equal(r.response.allowed, true);
  assert.equal(r.response.patch, undefined);
});

test('the namespace label, read from the API server, opts every pod in it in, and its opt-out wins', async () => {
  const inMeshed = await send(admissionReview(replicaSetPod(), { namespace: 'meshed' }));
  validateK8s(applyPatch(replicaSetPod(), patchOf(inMeshed)));
  const inExcluded = await send(admissionReview(replicaSetPod({ 'authproxy.dev/inject': 'true' }), { namespace: 'excluded' }));
  assert.equal(inExcluded.response.allowed, true);
  assert.equal(inExcluded.response.patch, undefined);
});

test('a pod with an invalid annotation is rejected with a message naming the annotation', async () => {
  const r = await send(admissionReview(replicaSetPod({ 'authproxy.dev/inject': 'true' }, { 'authproxy.dev/upstream-port': 'ninety' })));
  assert.equal(r.response.allowed, false);
  assert.equal(r.response.status?.code, 400);
  assert.match(r.response.status?.message ?? '', /authproxy\.dev\/upstream-port/);
  assert.equal(r.response.patch, undefined);
});

test('objects the webhook does not know are admitted unchanged and it keeps serving', async () => {
  const objects: Array<Record<string, unknown>> = [
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' }, data: { a: 'b' } },
    { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'odd', labels: { 'authproxy.dev/inject': 'true' } }, spec: 'not a spec' },
    { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'odd', labels: { 'authproxy.dev/inject': 'true' } }, spec: { containers: [{ name: 'a', ports: 'x' }], volumes: 7 } },
    { apiVersion: 'v1', kind: 'Pod', metadata: 'nonsense', spec: { containers: [{ name: 'a', env: 'x', ports: [{ containerPort: 80 }] }] } },
    { apiVersion: 'example.com/v1', kind: 'Widget', spec: { template: { spec: { containers: [] } } } },
  ];
  for (const obj of objects) {
    const r = await send(admissionReview(obj));
    assert.equal(r.response.allowed, true, JSON.stringify(obj));
    assert.equal(r.response.patch, undefined, JSON.stringify(obj));
  }
  const review = admissionReview(replicaSetPod()) as { request: Record<string, unknown> };
  review.request.object = 'a string';
  assert.equal((await send(review)).response.allowed, true);
  assert.equal((await get(injector.port, ca, '/healthz')).status, 200);
});

test('a malformed AdmissionReview is answered 400 with the reason, not a crash', async () => {
  const bad: Array<[string | Buffer, RegExp]> = [
    ['{not json', /not valid JSON/],
    [JSON.stringify({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: { uid: 'u', kind: { kind: 'Pod' } } }), /apiVersion/],
    [JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }), /request is missing/],
    [JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { kind: { kind: 'Pod' } } }), /uid/],
    [JSON.stringify([1, 2, 3]), /not a JSON object/],
  ];
  for (const [body, why] of bad) {
    const reply = await post(injector.port, ca, '/inject', body);
    assert.equal(reply.status, 400, String(body));
    assert.match(reply.body, why);
  }
  assert.equal((await post(injector.port, ca, '/inject', '{}', { 'content-type': 'text/plain' })).status, 415);
  assert.equal((await post(injector.port, ca, '/nowhere', '{}')).status, 404);
  assert.equal((await get(injector.port, ca, '/readyz')).status, 200);
});

test('a body over the size limit is refused with 413', async () => {
  const big = Buffer.alloc(7 * 1024 * 1024, 0x20);
  const reply = await post(injector.port, ca, '/inject', big);
  assert.equal(reply.status, 413);
  assert.equal((await get(injector.port, ca, '/healthz')).status, 200);
});

test('when the namespace cannot be read the webhook answers 500 so the failurePolicy decides', async () => {
  const reply = await post(injector.port, ca, '/inject', JSON.stringify(admissionReview(replicaSetPod({ 'authproxy.dev/inject': 'true' }), { namespace: 'broken' })));
  assert.equal(reply.status, 500);
  assert.match(reply.body, /namespace broken: API server answered 500/);
});

test('a namespace lookup slower than --timeout is answered with 500 at the deadline, not left hanging', async () => {
  const reply = await post(injector.port, ca, '/inject', JSON.stringify(admissionReview(replicaSetPod({ 'authproxy.dev/inject': 'true' }), { namespace: 'slow' })));
  assert.equal(reply.status, 500);
  assert.match(reply.body, /not read within 1000 ms/);
});

test('every decision is logged with the request uid and the reason, and no patch content', async () => {
  await send(admissionReview(replicaSetPod({ 'authproxy.dev/inject': 'true' }), { uid: 'log-check-uid' }));
  // The log line may reach the pipe just after the response.
  for (let i = 0; i < 50 && !injector.logs().some((l) => l.uid === 'log-check-uid'); i++) await sleep(50);
  const line = injector.logs().find((l) => l.uid === 'log-check-uid');
  assert.ok(line, injector.stderr());
  assert.equal(line.msg, 'webhook: injected');
  assert.match(String(line.reason), /native-sidecar, requested by pod label/);
  assert.equal(line.kind, 'Pod');
});

test('a rotated serving certificate is picked up without a restart, and a broken one is refused', async () => {
  const before = (await get(injector.port, ca, '/healthz')).peerFingerprint;
  await pki.rotate();
  let after = before;
  for (let i = 0; i < 50 && after === before; i++) {
    await sleep(100);
    after = (await get(injector.port, ca, '/healthz')).peerFingerprint;
  }
  assert.notEqual(after, before, 'new certificate served');

  // A key that does not match the certificate: the previous pair stays in use.
  const other = await issueCertificate(pki.ca, { dnsNames: ['localhost'] });
  await writeFile(pki.keyFile, other.keyPem);
  for (let i = 0; i < 50 && !injector.logs().some((l) => l.msg === 'webhook: new serving certificate refused, keeping the previous one'); i++) await sleep(100);
  assert.ok(injector.logs().some((l) => l.msg === 'webhook: new serving certificate refused, keeping the previous one'), injector.stderr());
  assert.equal((await get(injector.port, ca, '/healthz')).peerFingerprint, after);
  assert.doesNotMatch(injector.stderr(), /PRIVATE KEY/);
});

test('an authproxy.dev/issuer the sidecar would refuse is denied, and the denial and the log do not quote credentials', async () => {
  // Injected, these made every pod exit 2 at start (crash loop), and the sidecar's message quoted the password.
  const cases: Array<[string, RegExp]> = [
    ['http://issuer.auth.svc.cluster.local:8080', /plain http:\/\/ is only allowed on a loopback host/],
    ['https://user:s3cret@issuer.example.com/', /credentials in the URL are not allowed/],
  ];
  for (const [url, why] of cases) {
    const uid = `issuer-${cases.findIndex(([u]) => u === url)}`;
    const r = await send(admissionReview(replicaSetPod({ 'authproxy.dev/inject': 'true' }, { 'authproxy.dev/issuer': url }), { uid }));
    assert.equal(r.response.allowed, false, url);
    assert.equal(r.response.patch, undefined);
    assert.match(r.response.status?.message ?? '', /authproxy\.dev\/issuer: /);
    assert.match(r.response.status?.message ?? '', why);
    assert.doesNotMatch(JSON.stringify(r), /s3cret/);
    for (let i = 0; i < 50 && !injector.logs().some((l) => l.uid === uid); i++) await sleep(50);
    assert.equal(injector.logs().find((l) => l.uid === uid)?.msg, 'webhook: refused', injector.stderr());
  }
  assert.doesNotMatch(injector.stderr(), /s3cret/);
});

test('the injector does not start with an --issuer the sidecar would refuse, and does not quote its credentials', async () => {
  for (const [url, why] of [
    ['http://issuer.auth.svc.cluster.local:8080', /field issuer: .*plain http:\/\/ is only allowed on a loopback host/],
    ['https://user:s3cret@issuer.example.com/', /field issuer: 'https:\/\/issuer\.example\.com\/': credentials in the URL are not allowed/],
  ] as const) {
    await assert.rejects(startInjector(['--cert', pki.certFile, '--key', pki.keyFile, '--issuer', url]), (e: Error) => {
      assert.match(e.message, /injector exited 2/);
      assert.match(e.message, why);
      assert.doesNotMatch(e.message, /s3cret/);
      return true;
    });
  }
});

test('a hostNetwork pod is admitted without a patch, and the skip is logged with the reason', async () => {
  const pod = replicaSetPod({ 'authproxy.dev/inject': 'true' }) as { spec: Record<string, unknown> };
  pod.spec.hostNetwork = true;
  const r = await send(admissionReview(pod, { uid: 'hostnet-uid' }));
  assert.equal(r.response.allowed, true);
  assert.equal(r.response.patch, undefined);
  for (let i = 0; i < 50 && !injector.logs().some((l) => l.uid === 'hostnet-uid'); i++) await sleep(50);
  const line = injector.logs().find((l) => l.uid === 'hostnet-uid');
  assert.ok(line, injector.stderr());
  assert.equal(line.msg, 'webhook: skipped');
  assert.match(String(line.reason), /^hostNetwork pod: /);
  // In a namespace opted in as a whole (a DaemonSet's usual case) too.
  const inMeshed = await send(admissionReview(pod, { namespace: 'meshed' }));
  assert.equal(inMeshed.response.patch, undefined);
});
