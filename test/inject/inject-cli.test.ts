import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { applyPatch, type Op } from './support/json-patch.ts';
import { admissionReview, BIN, post, REPO, startInjector, webhookPki, type Injector, type WebhookPki } from './support/injector.ts';
import { sampleDeployment, TEST_SETTINGS, validateK8s } from './support/k8s.ts';

interface Run { code: number | null; stdout: string; stderr: string }

function inject(args: string[], stdin?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'inject', ...args], { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = ''; let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin ?? '');
  });
}

let dir: string;
let settingsFile: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'authproxy-inject-'));
  settingsFile = join(dir, 'settings.yaml');
  await writeFile(settingsFile, stringify(structuredClone(TEST_SETTINGS)));
});
after(async () => { await rm(dir, { recursive: true, force: true }); });

const podSpec = (port = 8080): string => `
    spec:
      containers:
        - name: app # the application
          image: example/app:1
          ports:
            - containerPort: ${port}`;

const STREAM = `# Everything the shop namespace runs.
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
    - port: 443
      targetPort: authproxy-mtls
---
apiVersion: v1
kind: Pod
metadata:
  name: debug
spec:
  containers:
    - name: app
      image: example/app:1
      ports:
        - containerPort: 8080
---
# The web tier
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}${podSpec()}
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  serviceName: db
  selector:
    matchLabels: {app: db}
  template:
    metadata:
      labels: {app: db}${podSpec(5432)}
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}${podSpec(9100)}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: rs
spec:
  selector:
    matchLabels: {app: rs}
  template:
    metadata:
      labels: {app: rs}${podSpec()}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: migrate
          image: example/migrate:1
          ports:
            - containerPort: 8080
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: report
spec:
  schedule: "0 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
            - name: report
              image: example/report:1
              ports:
                - containerPort: 8080
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  key: value # kept as is
`;

function docs(text: string): Array<Record<string, unknown>> {
  return parseAllDocuments(text).map((d) => (d as { toJS(): Record<string, unknown> }).toJS());
}

function podSpecOf(obj: Record<string, unknown>): { initContainers?: Array<{ name: string }>; containers: Array<{ name: string }> } {
  const kind = obj.kind as string;
  const o = obj as { spec: { template?: { spec: never }; jobTemplate?: { spec: { template: { spec: never } } } } };
  if (kind === 'Pod') return obj.spec as never;
  if (kind === 'CronJob') return o.spec.jobTemplate!.spec.template.spec;
  return o.spec.template!.spec;
}

test('every workload kind in a multi-document stream is injected and validates; other documents pass through', async () => {
  const file = join(dir, 'stream.yaml');
  await writeFile(file, STREAM);
  const run = await inject(['-f', file, '--config', settingsFile]);
  assert.equal(run.code, 0, run.stderr);
  const before = docs(STREAM);
  const out = docs(run.stdout);
  assert.equal(out.length, before.length);
  for (const [i, obj] of out.entries()) {
    validateK8s(obj);
    if (obj.kind === 'Service' || obj.kind === 'ConfigMap') { assert.deepEqual(obj, before[i]); continue; }
    const spec = podSpecOf(obj);
    assert.equal(spec.initContainers?.[0]?.name, 'authproxy', `${String(obj.kind)} injected`);
  }
  for (const kind of ['pod/debug', 'deployment/web', 'statefulset/db', 'daemonset/agent', 'replicaset/rs', 'job/migrate', 'cronjob/report']) {
    assert.match(run.stderr, new RegExp(`${kind} injected`));
  }
});

test('comments, key order and the stream\'s style survive injection', async () => {
  const run = await inject(['-f', '-', '--config', settingsFile], STREAM);
  assert.equal(run.code, 0, run.stderr);
  for (const kept of ['# Everything the shop namespace runs.', '# The web tier', '- name: app # the application', 'key: value # kept as is', 'selector: {app: web}']) {
    assert.ok(run.stdout.includes(kept), `kept: ${kept}`);
  }
  const first = run.stdout.split('\n').slice(0, 4).join('\n');
  assert.equal(first, '# Everything the shop namespace runs.\napiVersion: v1\nkind: Service\nmetadata:');
});

test('injecting the output again changes nothing, byte for byte', async () => {
  const once = await inject(['-f', '-', '--config', settingsFile], STREAM);
  const twice = await inject(['-f', '-', '--config', settingsFile], once.stdout);
  assert.equal(twice.code, 0, twice.stderr);
  assert.equal(twice.stdout, once.stdout);
  assert.match(twice.stderr, /deployment\/web skipped \(already injected\)/);
});

test('a pod template or a Namespace in the stream with inject "false" is left alone', async () => {
  const text = `apiVersion: v1
kind: Namespace
metadata:
  name: legacy
  labels:
    authproxy.dev/inject: "false"
---
apiVersion: v1
kind: Pod
metadata:
  name: old
  namespace: legacy
spec:
  containers:
    - name: app
      image: example/app:1
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: opted-out
spec:
  selector:
    matchLabels: {app: x}
  template:
    metadata:
      labels: {app: x}
      annotations:
        authproxy.dev/inject: "false"
    spec:
      containers:
        - name: app
          image: example/app:1
`;
  const run = await inject(['-f', '-', '--config', settingsFile], text);
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(docs(run.stdout), docs(text));
  assert.match(run.stderr, /pod\/old skipped \(opted out by namespace legacy label/);
  assert.match(run.stderr, /deployment\/opted-out skipped \(opted out by pod annotation/);
});

test('an invalid annotation fails the whole run, naming the document and the annotation, and writes nothing', async () => {
  const text = STREAM.replace('      labels: {app: web}', '      labels: {app: web}\n      annotations:\n        authproxy.dev/proxy-memory: "a lot"');
  const run = await inject(['-f', '-', '--config', settingsFile], text);
  assert.equal(run.code, 1);
  assert.equal(run.stdout, '');
  assert.match(run.stderr, /stdin: document 3: deployment\/web refused \(authproxy\.dev\/proxy-memory: 'a lot' is not a Kubernetes quantity/);
});

test('invalid YAML is reported with its document number', async () => {
  const run = await inject(['-f', '-'], 'apiVersion: v1\nkind: Pod\n---\nkey: [unclosed\n');
  assert.equal(run.code, 1);
  assert.match(run.stderr, /stdin: document 2: not valid YAML/);
});

test('--legacy-sidecar adds a regular first container and refuses Jobs, which would never complete', async () => {
  const run = await inject(['-f', '-', '--config', settingsFile, '--legacy-sidecar'], STREAM);
  assert.equal(run.code, 1);
  assert.match(run.stderr, /job\/migrate refused \(authproxy\.dev\/native-sidecar:/);
  const noJobs = STREAM.split('\n---\n').filter((d) => !/kind: (Cron)?Job/.test(d)).join('\n---\n');
  const ok = await inject(['-f', '-', '--config', settingsFile, '--legacy-sidecar'], noJobs);
  assert.equal(ok.code, 0, ok.stderr);
  for (const obj of docs(ok.stdout)) {
    validateK8s(obj);
    if (obj.kind === 'Service' || obj.kind === 'ConfigMap') continue;
    assert.equal(podSpecOf(obj).containers[0]?.name, 'authproxy');
  }
});

test('a kubectl List is injected item by item', async () => {
  const list = { apiVersion: 'v1', kind: 'List', items: [sampleDeployment({}), { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } }] };
  const run = await inject(['-f', '-', '--config', settingsFile], stringify(list));
  assert.equal(run.code, 0, run.stderr);
  const [out] = docs(run.stdout) as Array<{ items: Array<Record<string, unknown>> }>;
  validateK8s(out!.items[0]);
  assert.equal(podSpecOf(out!.items[0]!).initContainers?.[0]?.name, 'authproxy');
  assert.deepEqual(out!.items[1], list.items[1]);
});

test('flags override the settings file', async () => {
  const run = await inject(['-f', '-', '--config', settingsFile, '--image', 'mirror.example/authproxy:9', '--trust-domain', 'prod.example',
    '--policies-configmap', 'prod-policies'], stringify(sampleDeployment({})));
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /image: mirror\.example\/authproxy:9/);
  assert.match(run.stdout, /--trust-domain=prod\.example/);
  assert.match(run.stdout, /name: prod-policies/);
});

test('usage errors exit 2 with the usage', async () => {
  const none = await inject([]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /-f FILE/);
  const badSetting = await inject(['-f', '-', '--trust-domain', 'Not A Domain'], '');
  assert.equal(badSetting.code, 2);
  assert.match(badSetting.stderr, /field trustDomain/);
});

test('authproxy inject and the webhook produce the same Deployment', async () => {
  let pki: WebhookPki | undefined;
  let injector: Injector | undefined;
  try {
    pki = await webhookPki();
    injector = await startInjector(['--cert', pki.certFile, '--key', pki.keyFile, '--config', settingsFile]);
    const dep = sampleDeployment({ labels: { 'authproxy.dev/inject': 'true' }, annotations: { 'authproxy.dev/upstream-port': 'http' } });
    const reply = await post(injector.port, await readFile(pki.caFile, 'utf8'), '/inject', JSON.stringify(admissionReview(dep)));
    const review = JSON.parse(reply.body) as { response: { patch: string } };
    const viaWebhook = applyPatch(dep, JSON.parse(Buffer.from(review.response.patch, 'base64').toString('utf8')) as Op[]);

    const file = join(dir, 'dep.yaml');
    await writeFile(file, stringify(dep));
    const run = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, [BIN, 'inject', '-f', file, '--config', settingsFile], { cwd: REPO }, (e, stdout) => (e ? reject(e) : resolve(stdout)));
    });
    assert.deepEqual(docs(run)[0], viaWebhook);
    validateK8s(viaWebhook);
  } finally {
    await injector?.stop();
    await pki?.cleanup();
  }
});

test('the injector stopped the moment it says it is listening closes and exits 0', async () => {
  const pki = await webhookPki();
  try {
    // The stop listener is added before the webhook starts (src/cli/stop-signal.ts); added after the
    // `listening` line, a SIGTERM sent on seeing it could meet Node's default action instead.
    for (let i = 0; i < 3; i++) {
      const injector = await startInjector(['--cert', pki.certFile, '--key', pki.keyFile, '--config', settingsFile]);
      assert.equal(await injector.stop(), 0, `start ${i + 1}: ${injector.stderr()}`);
    }
  } finally { await pki.cleanup(); }
});

// The sidecar refuses plain http:// off loopback and URLs with credentials (src/tokens/issuer-url.ts);
// the injector accepted both, so every injected pod crash-looped, and the refusal quoted the secret.
const BAD_ISSUERS: Array<[string, RegExp]> = [
  ['http://issuer.auth.svc.cluster.local:8080', /plain http:\/\/ is only allowed on a loopback host/],
  ['https://user:s3cret@issuer.example.com/', /credentials in the URL are not allowed/],
];

test('--issuer and authproxy.dev/issuer are refused when the sidecar would refuse them, without quoting credentials', async () => {
  for (const [url, why] of BAD_ISSUERS) {
    const flag = await inject(['-f', '-', '--config', settingsFile, '--issuer', url], stringify(sampleDeployment({})));
    assert.equal(flag.code, 2, `${url}: ${flag.stderr}`);
    assert.equal(flag.stdout, '');
    assert.match(flag.stderr, /field issuer: /);
    assert.match(flag.stderr, why);
    assert.doesNotMatch(flag.stderr, /s3cret/);

    const annotated = await inject(['-f', '-', '--config', settingsFile], stringify(sampleDeployment({ annotations: { 'authproxy.dev/issuer': url } })));
    assert.equal(annotated.code, 1, `${url}: ${annotated.stderr}`);
    assert.equal(annotated.stdout, '');
    assert.match(annotated.stderr, /deployment\/web refused \(authproxy\.dev\/issuer: /);
    assert.match(annotated.stderr, why);
    assert.doesNotMatch(annotated.stderr, /s3cret/);
  }
});

test('the sidecar\'s own refusal of an issuer URL does not quote its credentials', async () => {
  const run = await new Promise<Run>((resolve, reject) => {
    execFile(process.execPath, [BIN, '--upstream', 'http://127.0.0.1:8080', '--issuer', 'https://user:s3cret@issuer.example.com/'],
      { cwd: dir }, (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') { reject(err); return; }
        resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
      });
  });
  assert.equal(run.code, 2, run.stderr);
  assert.match(run.stderr, /field issuer: 'https:\/\/issuer\.example\.com\/': credentials in the URL are not allowed/);
  assert.doesNotMatch(run.stderr + run.stdout, /s3cret/);
});

test('a hostNetwork DaemonSet is left as it is, with the reason on stderr', async () => {
  const text = `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: shop}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      hostNetwork: true
      containers:
        - name: agent
          image: example/agent
          ports: [{containerPort: 9100}]
`;
  const run = await inject(['-f', '-', '--config', settingsFile], text);
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(docs(run.stdout), docs(text));
  assert.match(run.stderr, /daemonset\/agent skipped \(hostNetwork pod: /);
});
