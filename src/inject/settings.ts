// Cluster-wide injection settings: what every injected sidecar gets unless a pod annotation says
// otherwise. One file (rendered by the Helm chart into a ConfigMap) feeds both the webhook and
// `authproxy inject`, so the two front ends cannot drift apart.
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../errors.ts';
import { isTrustDomainName, TRUST_DOMAIN_RULE } from '../identity/spiffe.ts';
import { isObject } from './k8s.ts';
import { DEFAULTS } from '../config/config.ts';
import { issuerUrlProblem } from '../tokens/issuer-url.ts';

export type CertSource = 'secret' | 'csi';

export interface ResourceSettings {
  requests: { cpu: string; memory: string };
  limits: { cpu?: string; memory: string };
}

export interface InjectSettings {
  readonly image: string;
  readonly imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  /** SPIFFE trust domain accepted by the sidecar and written into CSI-issued certificates. */
  readonly trustDomain: string;
  /** Default token issuer URL (`--issuer`); empty = the sidecar gets no outbound tokens unless a pod asks. */
  readonly issuer: string;
  /** ConfigMap in the pod's namespace whose keys are policy files. */
  readonly policiesConfigMap: string;
  /** Native sidecar (init container with restartPolicy Always, Kubernetes >= 1.29) or a regular first container. */
  readonly nativeSidecar: boolean;
  readonly certificates: {
    readonly source: CertSource;
    /** Secret name; `{serviceAccount}` is replaced by the pod's service account. */
    readonly secretName: string;
    readonly csi: { readonly driver: string; readonly issuerName: string; readonly issuerKind: string; readonly issuerGroup: string };
  };
  readonly resources: ResourceSettings;
  /** Numeric user the sidecar runs as (the image's `USER`). */
  readonly runAsUser: number;
}

export const DEFAULT_SETTINGS: InjectSettings = Object.freeze<InjectSettings>({
  image: 'ghcr.io/authproxy/authproxy:0.1.0',
  imagePullPolicy: 'IfNotPresent',
  trustDomain: 'cluster.local',
  issuer: '',
  policiesConfigMap: 'authproxy-policies',
  nativeSidecar: true,
  certificates: {
    source: 'secret',
    secretName: '{serviceAccount}-authproxy-tls',
    csi: { driver: 'csi.cert-manager.io', issuerName: 'authproxy-ca', issuerKind: 'ClusterIssuer', issuerGroup: 'cert-manager.io' },
  },
  // Memory request: the compiled sidecar idles at ~85 MB RSS and peaked at 107–116 MB saturating
  // one core in the benchmark (bench/results/latest.md); a request below its idle size misleads
  // the scheduler.
  resources: { requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '256Mi' } },
  runAsUser: 1000,
});

const QUANTITY = /^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;
export function isQuantity(v: string): boolean { return QUANTITY.test(v); }

/** DNS-1123 subdomain: what Kubernetes accepts as a ConfigMap or Secret name. */
export function isResourceName(v: string): boolean {
  return v.length <= 253 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(v);
}

/**
 * Why the sidecar would refuse `v` as its --issuer, or null: the sidecar's own check, with the
 * client authentication injected sidecars run with (the injector never sets --client-auth, so it is
 * the sidecar's default, tls_client_auth, which needs https://). A looser check here let every
 * injected pod crash-loop on a URL the sidecar refuses at start.
 */
export function issuerProblem(v: string): string | null {
  return issuerUrlProblem(v, DEFAULTS.clientAuth);
}

type Where = { file?: string; field: string };

/** Validate a settings object (from YAML or flags) over the defaults; unknown keys are errors. */
export function buildSettings(raw: unknown, file?: string): InjectSettings {
  const at = (field: string): Where => (file ? { file, field } : { field });
  if (raw === null || raw === undefined) return DEFAULT_SETTINGS;
  if (!isObject(raw)) throw new ConfigError('must be a mapping of settings', file ? { file } : {});
  const d = DEFAULT_SETTINGS;
  known(raw, ['image', 'imagePullPolicy', 'trustDomain', 'issuer', 'policiesConfigMap', 'nativeSidecar', 'certificates', 'resources', 'runAsUser'], '', file);

  const str = (obj: Record<string, unknown>, key: string, field: string, fallback: string): string => {
    const v = obj[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'string') throw new ConfigError('must be a string', at(field));
    return v;
  };

  const image = str(raw, 'image', 'image', d.image);
  if (!image) throw new ConfigError('must name the authproxy image', at('image'));
  const imagePullPolicy = str(raw, 'imagePullPolicy', 'imagePullPolicy', d.imagePullPolicy);
  if (!['Always', 'IfNotPresent', 'Never'].includes(imagePullPolicy)) throw new ConfigError(`'${imagePullPolicy}' is not Always, IfNotPresent or Never`, at('imagePullPolicy'));
  const trustDomain = str(raw, 'trustDomain', 'trustDomain', d.trustDomain);
  if (!isTrustDomainName(trustDomain)) throw new ConfigError(`'${trustDomain}' is not a SPIFFE trust domain name (${TRUST_DOMAIN_RULE})`, at('trustDomain'));
  const issuer = str(raw, 'issuer', 'issuer', d.issuer);
  const issuerBad = issuer ? issuerProblem(issuer) : null;
  if (issuerBad) throw new ConfigError(issuerBad, at('issuer'));
  const policiesConfigMap = str(raw, 'policiesConfigMap', 'policiesConfigMap', d.policiesConfigMap);
  if (!isResourceName(policiesConfigMap)) throw new ConfigError(`'${policiesConfigMap}' is not a ConfigMap name`, at('policiesConfigMap'));
  const nativeRaw = raw.nativeSidecar ?? d.nativeSidecar;
  if (typeof nativeRaw !== 'boolean') throw new ConfigError('must be true or false', at('nativeSidecar'));
  const runAsUser = raw.runAsUser ?? d.runAsUser;
  if (typeof runAsUser !== 'number' || !Number.isInteger(runAsUser) || runAsUser < 1) throw new ConfigError('must be a non-zero numeric user id (the sidecar never runs as root)', at('runAsUser'));

  const certsRaw = raw.certificates ?? {};
  if (!isObject(certsRaw)) throw new ConfigError('must be a mapping', at('certificates'));
  known(certsRaw, ['source', 'secretName', 'csi'], 'certificates.', file);
  const source = str(certsRaw, 'source', 'certificates.source', d.certificates.source);
  if (source !== 'secret' && source !== 'csi') throw new ConfigError(`'${source}' is not secret or csi`, at('certificates.source'));
  const secretName = str(certsRaw, 'secretName', 'certificates.secretName', d.certificates.secretName);
  if (!isResourceName(secretName.replaceAll('{serviceAccount}', 'sa'))) throw new ConfigError(`'${secretName}' is not a Secret name`, at('certificates.secretName'));
  const csiRaw = certsRaw.csi ?? {};
  if (!isObject(csiRaw)) throw new ConfigError('must be a mapping', at('certificates.csi'));
  known(csiRaw, ['driver', 'issuerName', 'issuerKind', 'issuerGroup'], 'certificates.csi.', file);
  const csi = {
    driver: str(csiRaw, 'driver', 'certificates.csi.driver', d.certificates.csi.driver),
    issuerName: str(csiRaw, 'issuerName', 'certificates.csi.issuerName', d.certificates.csi.issuerName),
    issuerKind: str(csiRaw, 'issuerKind', 'certificates.csi.issuerKind', d.certificates.csi.issuerKind),
    issuerGroup: str(csiRaw, 'issuerGroup', 'certificates.csi.issuerGroup', d.certificates.csi.issuerGroup),
  };

  const resRaw = raw.resources ?? {};
  if (!isObject(resRaw)) throw new ConfigError('must be a mapping', at('resources'));
  known(resRaw, ['requests', 'limits'], 'resources.', file);
  const reqRaw = resRaw.requests ?? {};
  const limRaw = resRaw.limits ?? {};
  if (!isObject(reqRaw)) throw new ConfigError('must be a mapping', at('resources.requests'));
  if (!isObject(limRaw)) throw new ConfigError('must be a mapping', at('resources.limits'));
  known(reqRaw, ['cpu', 'memory'], 'resources.requests.', file);
  known(limRaw, ['cpu', 'memory'], 'resources.limits.', file);
  const quantity = (obj: Record<string, unknown>, key: string, field: string, fallback: string | undefined): string | undefined => {
    const v = obj[key] === undefined ? fallback : str(obj, key, field, '');
    if (v !== undefined && !isQuantity(v)) throw new ConfigError(`'${v}' is not a Kubernetes quantity (e.g. 100m, 64Mi)`, at(field));
    return v;
  };
  const limitCpu = quantity(limRaw, 'cpu', 'resources.limits.cpu', undefined);
  const resources: ResourceSettings = {
    requests: {
      cpu: quantity(reqRaw, 'cpu', 'resources.requests.cpu', d.resources.requests.cpu)!,
      memory: quantity(reqRaw, 'memory', 'resources.requests.memory', d.resources.requests.memory)!,
    },
    limits: { memory: quantity(limRaw, 'memory', 'resources.limits.memory', d.resources.limits.memory)!, ...(limitCpu ? { cpu: limitCpu } : {}) },
  };

  return Object.freeze<InjectSettings>({
    image, imagePullPolicy: imagePullPolicy as InjectSettings['imagePullPolicy'], trustDomain, issuer, policiesConfigMap,
    nativeSidecar: nativeRaw, runAsUser,
    certificates: { source: source as CertSource, secretName, csi }, resources,
  });
}

function known(obj: Record<string, unknown>, keys: string[], prefix: string, file: string | undefined): void {
  for (const k of Object.keys(obj)) {
    if (!keys.includes(k)) throw new ConfigError(`unknown setting (known: ${keys.join(', ')})`, file ? { file, field: prefix + k } : { field: prefix + k });
  }
}

export async function readSettingsFile(file: string): Promise<InjectSettings> {
  let text: string;
  try { text = await readFile(file, 'utf8'); } catch (e) {
    throw new ConfigError(`cannot read settings file: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { file });
  }
  let doc: unknown;
  try { doc = parseYaml(text); } catch (e) { throw new ConfigError(`not valid YAML: ${(e as Error).message}`, { file }); }
  return buildSettings(doc, file);
}

/** Flags shared by `inject` and `injector`, layered over the settings file. */
export interface SettingsFlags { image?: string | undefined; trustDomain?: string | undefined; issuer?: string | undefined; policiesConfigMap?: string | undefined; legacySidecar?: boolean | undefined }

export async function loadSettings(file: string | undefined, flags: SettingsFlags): Promise<InjectSettings> {
  let raw: Record<string, unknown> = {};
  if (file) {
    const base = await readSettingsFile(file);
    raw = structuredClone(base) as unknown as Record<string, unknown>;
  }
  if (flags.image !== undefined) raw.image = flags.image;
  if (flags.trustDomain !== undefined) raw.trustDomain = flags.trustDomain;
  if (flags.issuer !== undefined) raw.issuer = flags.issuer;
  if (flags.policiesConfigMap !== undefined) raw.policiesConfigMap = flags.policiesConfigMap;
  if (flags.legacySidecar) raw.nativeSidecar = false;
  return buildSettings(raw);
}
