// The one mutation both front ends share: pod template + namespace + cluster settings in, a new
// pod template (or a reason not to, or a refusal naming what to fix) out. Pure: no I/O, no clock,
// and the input is never modified, so the webhook can diff before against after.
import { AnnotationError, ANNOTATIONS, SIDECAR_PORTS, STATUS, podSettings, type PodSettings } from './annotations.ts';
import { optIn } from './optin.ts';
import type { Container, EnvVar, NamespaceMeta, PodTemplate, Volume } from './k8s.ts';
import type { InjectSettings } from './settings.ts';

export const SIDECAR_NAME = 'authproxy';
export const CERT_DIR = '/var/run/authproxy/certs';
export const POLICY_DIR = '/etc/authproxy/policies';
export const VOLUME_NAMES = { certs: 'authproxy-certs', policies: 'authproxy-policies' } as const;
/** Partner trust domains' bundles (authproxy.dev/federate): volume `authproxy-federation-N`, mounted at FEDERATION_DIR/<domain>. */
export const FEDERATION_VOLUME_PREFIX = 'authproxy-federation-';
export const FEDERATION_DIR = '/var/run/authproxy/federation';
const federationVolume = (i: number): string => `${FEDERATION_VOLUME_PREFIX}${i}`;
export const OUTBOUND_PROXY = `http://127.0.0.1:${SIDECAR_PORTS.outbound}`;
const NO_PROXY_BASE = ['localhost', '127.0.0.1', '::1'];
const DEFAULT_CONTAINER = 'kubectl.kubernetes.io/default-container';
export const HOST_NETWORK_SKIP = "hostNetwork pod: the sidecar would listen on the node's addresses and serve its outbound proxy to the whole node";

export type SidecarMode = 'native-sidecar' | 'sidecar';

export type Mutation =
  | { action: 'inject'; template: PodTemplate; mode: SidecarMode; by: string }
  | { action: 'skip'; reason: string }
  /** `field` is the annotation (or spec field) to fix; `message` starts with it. */
  | { action: 'refuse'; field: string; message: string };

export function isInjected(template: PodTemplate): boolean {
  const named = (list: unknown): boolean => Array.isArray(list) && list.some((c) => (c as Container | null)?.name === SIDECAR_NAME);
  return named(template.spec.containers) || named(template.spec.initContainers);
}

export function mutatePodTemplate(template: PodTemplate, namespace: NamespaceMeta, settings: InjectSettings): Mutation {
  if (isInjected(template)) return { action: 'skip', reason: 'already injected' };
  let wanted;
  let pod: PodSettings;
  try {
    wanted = optIn(template, namespace);
    if (!wanted.inject) return { action: 'skip', reason: wanted.reason };
    // A host-network pod shares the node's network namespace: the sidecar's 0.0.0.0:15443 and
    // :15000 (/config, /metrics) would listen on the node's addresses, its token-adding proxy on
    // 127.0.0.1:15001 would serve every host-network process on the node, and a second such pod
    // on the node could not bind at all. Skipped (not refused), as Linkerd and Istio do, so a
    // DaemonSet in an opted-in namespace still runs; checked before the annotations, which would
    // not be used.
    if (template.spec.hostNetwork === true) return { action: 'skip', reason: HOST_NETWORK_SKIP };
    pod = podSettings(template, settings);
  } catch (e) {
    if (e instanceof AnnotationError) return { action: 'refuse', field: e.annotation, message: e.message };
    throw e;
  }

  const spec = template.spec;
  for (const v of spec.volumes ?? []) {
    if ((Object.values(VOLUME_NAMES) as string[]).includes(v.name) || v.name.startsWith(FEDERATION_VOLUME_PREFIX)) {
      return { action: 'refuse', field: 'spec.volumes', message: `spec.volumes: a volume named '${v.name}' already exists; that name is reserved for the sidecar` };
    }
  }
  const restartPolicy = spec.restartPolicy ?? 'Always';
  if (!pod.nativeSidecar && restartPolicy !== 'Always') {
    return {
      action: 'refuse', field: ANNOTATIONS.nativeSidecar,
      message: `${ANNOTATIONS.nativeSidecar}: a pod with restartPolicy ${restartPolicy} (a Job) never completes with a regular sidecar container; it needs the native sidecar (Kubernetes >= 1.29)`,
    };
  }

  const next = structuredClone(template);
  const mode: SidecarMode = pod.nativeSidecar ? 'native-sidecar' : 'sidecar';
  const meta = next.metadata ??= {};
  const annotations = meta.annotations ??= {};
  annotations[STATUS] = mode;

  const appNames = next.spec.containers.map((c) => c.name);
  next.spec.containers = next.spec.containers.map((c) => withProxyEnv(c, pod.noProxy));
  const sidecar = sidecarContainer(settings, pod);
  if (pod.nativeSidecar) {
    // First init container: it is started (and, through its startup probe, ready) before any other
    // init container and before the app, and the kubelet stops it after the app has exited.
    next.spec.initContainers = [sidecar, ...(next.spec.initContainers ?? [])];
  } else {
    // Pre-1.29 clusters: the kubelet starts regular containers in order and waits for a postStart
    // hook to finish before the next one, so a hook that waits for readiness holds the app back.
    next.spec.containers = [{ ...sidecar, lifecycle: { postStart: { exec: { command: waitUntilReady() } } } }, ...next.spec.containers];
    if (appNames[0] && !annotations[DEFAULT_CONTAINER]) annotations[DEFAULT_CONTAINER] = appNames[0];
  }
  next.spec.volumes = [...(next.spec.volumes ?? []), ...sidecarVolumes(pod, settings.trustDomain)];
  return { action: 'inject', template: next, mode, by: wanted.by };
}

function sidecarContainer(settings: InjectSettings, pod: PodSettings): Container {
  const args = [
    `--upstream=http://127.0.0.1:${pod.upstreamPort}`,
    `--listen=0.0.0.0:${SIDECAR_PORTS.inbound}`,
    `--outbound-listen=127.0.0.1:${SIDECAR_PORTS.outbound}`,
    // The kubelet probes from the node, to the pod IP: the admin listener cannot stay on loopback.
    `--admin-listen=0.0.0.0:${SIDECAR_PORTS.admin}`,
    `--cert=${CERT_DIR}/tls.crt`,
    `--key=${CERT_DIR}/tls.key`,
    `--ca=${CERT_DIR}/ca.crt`,
    `--trust-domain=${settings.trustDomain}`,
    `--policies=${POLICY_DIR}`,
  ];
  if (pod.issuer) args.push(`--issuer=${pod.issuer}`);
  if (pod.clientId) args.push(`--client-id=${pod.clientId}`);
  for (const f of pod.federate) args.push(`--federate=${f.trustDomain}=${FEDERATION_DIR}/${f.trustDomain}/bundle.pem`);
  const probe = (path: string, periodSeconds: number, failureThreshold: number): Record<string, unknown> => ({
    httpGet: { path, port: SIDECAR_PORTS.admin }, periodSeconds, timeoutSeconds: 1, failureThreshold,
  });
  return {
    name: SIDECAR_NAME,
    image: settings.image,
    imagePullPolicy: settings.imagePullPolicy,
    ...(pod.nativeSidecar ? { restartPolicy: 'Always' } : {}),
    args,
    ports: [
      { name: 'authproxy-mtls', containerPort: SIDECAR_PORTS.inbound, protocol: 'TCP' },
      { name: 'authproxy-admin', containerPort: SIDECAR_PORTS.admin, protocol: 'TCP' },
    ],
    startupProbe: probe('/readyz', 1, 120),
    readinessProbe: probe('/readyz', 5, 3),
    livenessProbe: probe('/healthz', 10, 3),
    resources: structuredClone(pod.resources),
    securityContext: {
      runAsNonRoot: true,
      runAsUser: settings.runAsUser,
      runAsGroup: settings.runAsUser,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    volumeMounts: [
      { name: VOLUME_NAMES.certs, mountPath: CERT_DIR, readOnly: true },
      { name: VOLUME_NAMES.policies, mountPath: POLICY_DIR, readOnly: true },
      ...pod.federate.map((f, i) => ({ name: federationVolume(i), mountPath: `${FEDERATION_DIR}/${f.trustDomain}`, readOnly: true })),
    ],
  };
}

function sidecarVolumes(pod: PodSettings, trustDomain: string): Volume[] {
  const certs: Volume = pod.cert.kind === 'secret'
    ? { name: VOLUME_NAMES.certs, secret: { secretName: pod.cert.secretName } }
    : {
      name: VOLUME_NAMES.certs,
      csi: {
        driver: pod.cert.driver,
        readOnly: true,
        volumeAttributes: pod.cert.driver === 'csi.cert-manager.io' ? {
          'csi.cert-manager.io/issuer-name': pod.cert.issuerName,
          'csi.cert-manager.io/issuer-kind': pod.cert.issuerKind,
          'csi.cert-manager.io/issuer-group': pod.cert.issuerGroup,
          // The driver expands ${POD_NAMESPACE} and ${SERVICE_ACCOUNT_NAME} per pod: one SPIFFE ID per service account.
          'csi.cert-manager.io/uri-sans': `spiffe://${trustDomain}/ns/\${POD_NAMESPACE}/sa/\${SERVICE_ACCOUNT_NAME}`,
          'csi.cert-manager.io/common-name': '${SERVICE_ACCOUNT_NAME}.${POD_NAMESPACE}',
          'csi.cert-manager.io/certificate-file': 'tls.crt',
          'csi.cert-manager.io/privatekey-file': 'tls.key',
          'csi.cert-manager.io/ca-file': 'ca.crt',
        } : {},
      },
    };
  return [certs, { name: VOLUME_NAMES.policies, configMap: { name: pod.policiesConfigMap } },
    // The key is mounted under one file name, so the sidecar's flag does not depend on how the ConfigMap spells it.
    ...pod.federate.map((f, i) => ({ name: federationVolume(i), configMap: { name: f.configMap, items: [{ key: f.key, path: 'bundle.pem' }] } }))];
}

/** HTTP_PROXY for the app; a variable the app already sets is left alone (its owner knows best). */
function withProxyEnv(c: Container, extraNoProxy: string[]): Container {
  const env: EnvVar[] = Array.isArray(c.env) ? [...c.env] : [];
  const noProxy = [...NO_PROXY_BASE, ...extraNoProxy].join(',');
  // Both spellings: curl and Go read only the lowercase http_proxy, most others the uppercase.
  const wanted: EnvVar[] = [
    { name: 'HTTP_PROXY', value: OUTBOUND_PROXY },
    { name: 'http_proxy', value: OUTBOUND_PROXY },
    { name: 'NO_PROXY', value: noProxy },
    { name: 'no_proxy', value: noProxy },
  ];
  for (const w of wanted) if (!env.some((e) => e.name === w.name)) env.push(w);
  return { ...c, env };
}

function waitUntilReady(): string[] {
  const script = `const end=Date.now()+120e3;const poll=()=>fetch('http://127.0.0.1:${SIDECAR_PORTS.admin}/readyz')`
    + `.then((r)=>{if(!r.ok)throw new Error(String(r.status));}).catch(()=>{if(Date.now()>end)process.exit(1);return new Promise((ok)=>setTimeout(ok,250)).then(poll);});poll();`;
  return ['node', '-e', script];
}
