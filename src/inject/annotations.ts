// Per-pod settings, read from pod (template) annotations. The table below is the documentation:
// docs/kubernetes.md lists the same names and defaults, and a test keeps the two in step.
import { issuerProblem, isQuantity, isResourceName, type InjectSettings } from './settings.ts';
import { isTrustDomainName, TRUST_DOMAIN_RULE } from '../identity/spiffe.ts';
import type { Container, PodTemplate } from './k8s.ts';

export const PREFIX = 'authproxy.dev/';
export const INJECT = `${PREFIX}inject`;
/** Written on injection so operators (and a second pass) can see what was done. */
export const STATUS = `${PREFIX}injected`;

export const ANNOTATIONS = {
  inject: INJECT,
  upstreamPort: `${PREFIX}upstream-port`,
  policiesConfigMap: `${PREFIX}policies-configmap`,
  issuer: `${PREFIX}issuer`,
  clientId: `${PREFIX}client-id`,
  certSecret: `${PREFIX}cert-secret`,
  certCsiDriver: `${PREFIX}cert-csi-driver`,
  certCsiIssuer: `${PREFIX}cert-csi-issuer`,
  proxyCpu: `${PREFIX}proxy-cpu`,
  proxyMemory: `${PREFIX}proxy-memory`,
  proxyMemoryLimit: `${PREFIX}proxy-memory-limit`,
  nativeSidecar: `${PREFIX}native-sidecar`,
  noProxy: `${PREFIX}no-proxy`,
  federate: `${PREFIX}federate`,
} as const;

/** Ports the sidecar itself listens on; the app must use another. */
export const SIDECAR_PORTS = { inbound: 15443, outbound: 15001, admin: 15000 } as const;

/** A refusal that names what to fix. */
export class AnnotationError extends Error {
  readonly annotation: string;
  constructor(annotation: string, message: string) {
    super(`${annotation}: ${message}`);
    this.name = 'AnnotationError';
    this.annotation = annotation;
  }
}

export type CertVolume =
  | { kind: 'secret'; secretName: string }
  | { kind: 'csi'; driver: string; issuerName: string; issuerKind: string; issuerGroup: string };

/** A partner trust domain and where its CA bundle is: a ConfigMap in the pod's namespace, and its key. */
export interface FederatedBundle { trustDomain: string; configMap: string; key: string }

export interface PodSettings {
  upstreamPort: number;
  policiesConfigMap: string;
  issuer: string;
  clientId: string;
  cert: CertVolume;
  resources: { requests: { cpu: string; memory: string }; limits: { cpu?: string; memory: string } };
  nativeSidecar: boolean;
  noProxy: string[];
  federate: FederatedBundle[];
}

/** `"true"` / `"false"` / absent; anything else is refused so a typo never silently disables injection. */
export function parseSwitch(value: string | undefined, name: string): boolean | undefined {
  if (value === undefined) return undefined;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new AnnotationError(name, `'${value}' must be "true" or "false"`);
}

/** Read and validate every per-pod annotation over the cluster settings. Throws AnnotationError. */
export function podSettings(template: PodTemplate, settings: InjectSettings): PodSettings {
  const a = template.metadata?.annotations ?? {};
  const get = (name: string): string | undefined => {
    const v = a[name];
    return v === undefined ? undefined : v.trim();
  };

  const policiesConfigMap = get(ANNOTATIONS.policiesConfigMap) ?? settings.policiesConfigMap;
  if (!isResourceName(policiesConfigMap)) throw new AnnotationError(ANNOTATIONS.policiesConfigMap, `'${policiesConfigMap}' is not a ConfigMap name`);

  const issuer = get(ANNOTATIONS.issuer) ?? settings.issuer;
  const issuerBad = issuer ? issuerProblem(issuer) : null;
  if (issuerBad) throw new AnnotationError(ANNOTATIONS.issuer, issuerBad);

  const clientId = get(ANNOTATIONS.clientId) ?? '';
  if (clientId && !issuer) throw new AnnotationError(ANNOTATIONS.clientId, `a client id needs a token issuer: set ${ANNOTATIONS.issuer} too`);
  if (/[\s"'\\]/.test(clientId)) throw new AnnotationError(ANNOTATIONS.clientId, 'must not contain spaces, quotes or backslashes');

  const serviceAccount = template.spec.serviceAccountName || 'default';
  const secretName = get(ANNOTATIONS.certSecret);
  const csiDriver = get(ANNOTATIONS.certCsiDriver);
  const csiIssuer = get(ANNOTATIONS.certCsiIssuer);
  if (secretName !== undefined && csiDriver !== undefined) {
    throw new AnnotationError(ANNOTATIONS.certCsiDriver, `choose one certificate source: ${ANNOTATIONS.certSecret} or ${ANNOTATIONS.certCsiDriver}`);
  }
  let cert: CertVolume;
  const useCsi = csiDriver !== undefined || (secretName === undefined && settings.certificates.source === 'csi');
  if (useCsi) {
    const driver = csiDriver ?? settings.certificates.csi.driver;
    if (!isResourceName(driver)) throw new AnnotationError(ANNOTATIONS.certCsiDriver, `'${driver}' is not a CSI driver name`);
    const issuerRef = parseIssuerRef(csiIssuer, settings);
    cert = { kind: 'csi', driver, ...issuerRef, issuerGroup: settings.certificates.csi.issuerGroup };
  } else {
    if (csiIssuer !== undefined) throw new AnnotationError(ANNOTATIONS.certCsiIssuer, `only applies with ${ANNOTATIONS.certCsiDriver} (or certificates.source: csi)`);
    const name = secretName ?? settings.certificates.secretName.replaceAll('{serviceAccount}', serviceAccount);
    if (!isResourceName(name)) throw new AnnotationError(ANNOTATIONS.certSecret, `'${name}' is not a Secret name`);
    cert = { kind: 'secret', secretName: name };
  }

  const quantity = (name: string, fallback: string): string => {
    const v = get(name) ?? fallback;
    if (!isQuantity(v)) throw new AnnotationError(name, `'${v}' is not a Kubernetes quantity (e.g. 100m, 64Mi)`);
    return v;
  };
  const cpu = quantity(ANNOTATIONS.proxyCpu, settings.resources.requests.cpu);
  const memory = quantity(ANNOTATIONS.proxyMemory, settings.resources.requests.memory);
  const memoryLimit = quantity(ANNOTATIONS.proxyMemoryLimit, settings.resources.limits.memory);
  const resources = {
    requests: { cpu, memory },
    limits: { memory: memoryLimit, ...(settings.resources.limits.cpu ? { cpu: settings.resources.limits.cpu } : {}) },
  };

  const nativeSidecar = parseSwitch(get(ANNOTATIONS.nativeSidecar), ANNOTATIONS.nativeSidecar) ?? settings.nativeSidecar;

  const noProxyRaw = get(ANNOTATIONS.noProxy);
  const noProxy = noProxyRaw ? noProxyRaw.split(',').map((s) => s.trim()).filter(Boolean) : [];
  for (const h of noProxy) {
    if (!/^[A-Za-z0-9.*:[\]/_-]+$/.test(h)) throw new AnnotationError(ANNOTATIONS.noProxy, `'${h}' is not a host, domain suffix or CIDR`);
  }

  return {
    upstreamPort: upstreamPort(template, get(ANNOTATIONS.upstreamPort)),
    policiesConfigMap, issuer, clientId, cert, resources, nativeSidecar, noProxy,
    federate: parseFederate(get(ANNOTATIONS.federate), settings.trustDomain),
  };
}

// A ConfigMap key (Kubernetes: alphanumerics, '-', '_', '.').
const CONFIGMAP_KEY = /^[-._a-zA-Z0-9]{1,253}$/;

/**
 * `TRUST_DOMAIN=CONFIGMAP[/KEY]`, comma-separated (key `ca.crt` unless named, as cert-manager's
 * trust-manager and the certificate Secret spell it). Refused here what the sidecar would refuse
 * at start, so the pod is rejected with a message instead of crash-looping: our own trust domain
 * (its CA comes with the certificate) and a domain named twice.
 */
function parseFederate(value: string | undefined, ownTrustDomain: string): FederatedBundle[] {
  const name = ANNOTATIONS.federate;
  const out: FederatedBundle[] = [];
  for (const item of (value ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^([^=]+)=([^/]+)(?:\/(.+))?$/.exec(item);
    if (!m) throw new AnnotationError(name, `'${item}' must be TRUST_DOMAIN=CONFIGMAP or TRUST_DOMAIN=CONFIGMAP/KEY`);
    const [trustDomain, configMap, key = 'ca.crt'] = [m[1]!.trim(), m[2]!.trim(), m[3]?.trim()];
    if (!isTrustDomainName(trustDomain)) throw new AnnotationError(name, `'${trustDomain}' is not a SPIFFE trust domain name (${TRUST_DOMAIN_RULE})`);
    if (trustDomain === ownTrustDomain) throw new AnnotationError(name, `'${trustDomain}' is the mesh's own trust domain (trustDomain); its CA comes with the sidecar's certificate`);
    if (out.some((f) => f.trustDomain === trustDomain)) throw new AnnotationError(name, `'${trustDomain}' is named twice`);
    if (!isResourceName(configMap)) throw new AnnotationError(name, `'${configMap}' is not a ConfigMap name`);
    if (!CONFIGMAP_KEY.test(key)) throw new AnnotationError(name, `'${key}' is not a ConfigMap key`);
    out.push({ trustDomain, configMap, key });
  }
  return out;
}

function parseIssuerRef(value: string | undefined, settings: InjectSettings): { issuerName: string; issuerKind: string } {
  if (value === undefined) return { issuerName: settings.certificates.csi.issuerName, issuerKind: settings.certificates.csi.issuerKind };
  // `Kind/name` like kubectl's resource/name; a bare name keeps the configured kind.
  const m = /^(?:(Issuer|ClusterIssuer)\/)?([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/.exec(value);
  if (!m) throw new AnnotationError(ANNOTATIONS.certCsiIssuer, `'${value}' must be NAME, Issuer/NAME or ClusterIssuer/NAME`);
  return { issuerName: m[2]!, issuerKind: m[1] ?? settings.certificates.csi.issuerKind };
}

/** The app's port: the annotation (a number or a container port name), else the first app container's first TCP port. */
function upstreamPort(template: PodTemplate, value: string | undefined): number {
  const name = ANNOTATIONS.upstreamPort;
  const ports = template.spec.containers.flatMap((c: Container) => (Array.isArray(c.ports) ? c.ports : []))
    .filter((p) => (p.protocol ?? 'TCP') === 'TCP');
  let port: number;
  if (value === undefined) {
    const first = ports[0]?.containerPort;
    if (typeof first !== 'number') throw new AnnotationError(name, 'no TCP containerPort to forward to: set this annotation to the port the app listens on');
    port = first;
  } else if (/^[0-9]+$/.test(value)) {
    port = Number(value);
  } else {
    const byName = ports.find((p) => p.name === value);
    if (!byName) throw new AnnotationError(name, `'${value}' is neither a port number nor the name of a container port`);
    port = byName.containerPort;
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new AnnotationError(name, `'${value ?? port}' is not a port (1-65535)`);
  if ((Object.values(SIDECAR_PORTS) as number[]).includes(port)) {
    throw new AnnotationError(name, `${port} is one of the sidecar's own ports (${Object.values(SIDECAR_PORTS).join(', ')}); the app must listen on another`);
  }
  return port;
}
