// The one configuration object: defaults, then the config file, then flags; validated once,
// frozen, and only read afterwards. Every run flag is also a config-file key (camelCase).
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { resolve, dirname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../errors.ts';
import { parseListen, parseUpstream, type ListenAddress, type Upstream } from './address.ts';
import { parseBytes, parseDuration } from './duration.ts';
import { isTrustDomainName, TRUST_DOMAIN_RULE } from '../identity/spiffe.ts';
import { parseTokenSettings, TOKEN_KEYS, type TokenKey, type TokenSettings } from '../tokens/settings.ts';

/** Token and outbound settings (issuer endpoints, audience, cache, unrouted hosts): see src/tokens/settings.ts. */
export interface Config extends TokenSettings {
  readonly upstream: Upstream;
  readonly listen: ListenAddress;
  readonly plaintextListen: ListenAddress | null;
  readonly outboundListen: ListenAddress;
  readonly adminListen: ListenAddress;
  readonly cert: string | null;
  readonly key: string | null;
  readonly ca: readonly string[];
  /** SPIFFE trust domains whose IDs are accepted; empty means "the workload's own trust domain". */
  readonly trustDomains: readonly string[];
  /** Other trust domains accepted, each vouched for by its own bundle only (src/identity/federation.ts). */
  readonly federations: readonly Federation[];
  readonly policies: string | null;
  /** null = stdout */
  readonly auditLog: string | null;
  /** How often the audit log gets a signed seal line (audit/seal.ts); 0 = never. */
  readonly auditSealIntervalMs: number;
  /** Protocols an HTTP/1.1 Upgrade may ask for, lower-case names; null = any (`*`). Never h2c or HTTP. */
  readonly upgradeProtocols: ReadonlySet<string> | null;
  readonly issuer: string | null;
  readonly clientId: string | null;
  readonly clientAuth: 'tls_client_auth' | 'private_key_jwt' | 'client_secret_basic';
  readonly clientSecretFile: string | null;
  readonly maxHeaderBytes: number;
  /** 0 = no limit (bodies are streamed, so a limit is a policy choice, not a memory need). */
  readonly maxBodyBytes: number;
  readonly drainTimeoutMs: number;
  /** Per try: the app must answer with headers (and keep body chunks coming) within this. */
  readonly upstreamTimeoutMs: number;
  readonly connectTimeoutMs: number;
  /** Overall deadline for a request (all tries) unless the caller asks for less. */
  readonly requestTimeoutMs: number;
  readonly maxRetries: number;
  /** Retries may be at most this share of requests over 10 s, plus `retryBudgetFloor`. */
  readonly retryBudget: number;
  readonly retryBudgetFloor: number;
  /** Per inbound listener; connections beyond it are closed as they are accepted (counted by Node as drops). */
  readonly maxConnections: number;
  /** Request headers (and, on the mTLS listener, the TLS handshake) must complete within this. */
  readonly headerTimeoutMs: number;
  /** A client connection with no traffic either way for this long is closed. */
  readonly clientIdleTimeoutMs: number;
  /** How often watched certificate and policy files are re-checked (watch events are the fast path). */
  readonly reloadIntervalMs: number;
  /** Dev mode: certificates generated under certsDir, ./policies loaded when present. */
  readonly dev: boolean;
  readonly certsDir: string;
}

export interface Federation { readonly trustDomain: string; readonly bundle: string }

export const DEFAULTS = {
  listen: '0.0.0.0:15443',
  devListen: '127.0.0.1:15443',
  outboundListen: '127.0.0.1:15001',
  adminListen: '127.0.0.1:15000',
  clientAuth: 'tls_client_auth',
  maxHeaderBytes: 64 * 1024,
  maxBodyBytes: 0,
  drainTimeout: '15s',
  upstreamTimeout: '30s',
  connectTimeout: '2s',
  requestTimeout: '60s',
  maxRetries: 2,
  retryBudget: '20%',
  retryBudgetFloor: 10,
  maxConnections: 10_000,
  headerTimeout: '10s',
  clientIdleTimeout: '90s',
  reloadInterval: '2s',
  certsDir: 'certs',
  policiesDir: 'policies',
  auditSealInterval: '1s',
  upgradeProtocols: 'websocket',
} as const;

/** Raw, unvalidated settings as they come from a file or flags. */
export type RawConfig = Partial<Record<RawKey, unknown>>;
type RawKey = TokenKey | 'upstream' | 'listen' | 'plaintextListen' | 'outboundListen' | 'adminListen' | 'cert' | 'key' | 'ca'
  | 'trustDomain' | 'federate' | 'policies' | 'auditLog' | 'auditSealInterval' | 'upgradeProtocols' | 'issuer' | 'clientId' | 'clientAuth' | 'clientSecretFile'
  | 'maxHeaderBytes' | 'maxBodyBytes' | 'drainTimeout' | 'upstreamTimeout' | 'reloadInterval' | 'certsDir'
  | 'maxConnections' | 'headerTimeout' | 'clientIdleTimeout'
  | 'connectTimeout' | 'requestTimeout' | 'maxRetries' | 'retryBudget' | 'retryBudgetFloor';

export const RAW_KEYS: readonly RawKey[] = ['upstream', 'listen', 'plaintextListen', 'outboundListen', 'adminListen',
  'cert', 'key', 'ca', 'trustDomain', 'federate', 'policies', 'auditLog', 'auditSealInterval', 'upgradeProtocols', 'issuer', 'clientId', 'clientAuth', 'clientSecretFile',
  'maxHeaderBytes', 'maxBodyBytes', 'drainTimeout', 'upstreamTimeout', 'reloadInterval', 'certsDir',
  'maxConnections', 'headerTimeout', 'clientIdleTimeout',
  'connectTimeout', 'requestTimeout', 'maxRetries', 'retryBudget', 'retryBudgetFloor', ...TOKEN_KEYS];
const REPEATABLE = new Set<RawKey>(['ca', 'trustDomain', 'federate', 'tokenAlgorithm']);
const CLIENT_AUTH = ['tls_client_auth', 'private_key_jwt', 'client_secret_basic'] as const;

export async function readConfigFile(file: string): Promise<RawConfig> {
  let text: string;
  try { text = await readFile(file, 'utf8'); } catch (e) {
    throw new ConfigError(`cannot read config file: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { file });
  }
  let doc: unknown;
  try { doc = parseYaml(text); } catch (e) { throw new ConfigError(`not valid YAML: ${(e as Error).message}`, { file }); }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError('must be a mapping of settings', { file });
  const raw: RawConfig = {};
  const base = dirname(resolve(file));
  for (const [k, v] of Object.entries(doc)) {
    if (!(RAW_KEYS as readonly string[]).includes(k)) {
      throw new ConfigError(`unknown setting (known: ${RAW_KEYS.join(', ')})`, { file, field: k });
    }
    // Paths in a config file are relative to the file, as in kubeconfig and Envoy bootstrap files.
    raw[k as RawKey] = k === 'federate' ? federationEntries(base, v) : PATH_KEYS.has(k as RawKey) ? resolvePaths(base, v) : v;
  }
  return raw;
}

const PATH_KEYS = new Set<RawKey>(['cert', 'key', 'ca', 'policies', 'auditLog', 'clientSecretFile', 'certsDir']);
function resolvePaths(base: string, v: unknown): unknown {
  if (typeof v === 'string') return resolve(base, v);
  if (Array.isArray(v)) return v.map((x) => (typeof x === 'string' ? resolve(base, x) : x));
  return v;
}

/**
 * `federate` in a config file: a mapping `{partner.org: partner-bundle.pem}` (the natural YAML), or
 * the flag's `TD=FILE` strings; either way TD=FILE strings with the file resolved against `base`.
 */
function federationEntries(base: string, v: unknown): unknown {
  const entries = typeof v === 'object' && v !== null && !Array.isArray(v)
    ? Object.entries(v).map(([td, file]) => (typeof file === 'string' ? `${td}=${file}` : file))
    : Array.isArray(v) ? v : [v];
  return entries.map((e) => {
    if (typeof e !== 'string' || !e.includes('=')) return e;
    const at = e.indexOf('=');
    return `${e.slice(0, at)}=${resolve(base, e.slice(at + 1))}`;
  });
}

/** Merge layers (later wins) and validate into the frozen Config. */
export function buildConfig(layers: RawConfig[], cwd = process.cwd()): Config {
  const raw: RawConfig = {};
  for (const layer of layers) for (const k of RAW_KEYS) if (layer[k] !== undefined) raw[k] = layer[k];

  const str = (k: RawKey): string | null => {
    const v = raw[k];
    if (v === undefined || v === null || v === '') return null;
    if (typeof v !== 'string') throw new ConfigError(`must be a string`, { field: k });
    return v;
  };
  const list = (k: RawKey): string[] => {
    const v = raw[k];
    if (v === undefined || v === null) return [];
    const arr = Array.isArray(v) ? v : [v];
    if (!arr.every((x) => typeof x === 'string' && x !== '')) throw new ConfigError('must be a list of strings', { field: k });
    return arr as string[];
  };
  const path = (k: RawKey): string | null => { const v = str(k); return v === null ? null : resolve(cwd, v); };

  const upstreamRaw = str('upstream');
  if (!upstreamRaw) throw new ConfigError('is required: where the app listens, e.g. --upstream http://127.0.0.1:3000', { field: 'upstream' });

  let cert = path('cert'); let key = path('key'); let ca = list('ca').map((p) => resolve(cwd, p));
  const dev = cert === null && key === null && ca.length === 0;
  const certsDir = resolve(cwd, str('certsDir') ?? DEFAULTS.certsDir);
  if (dev) {
    cert = resolve(certsDir, 'workload.crt'); key = resolve(certsDir, 'workload.key'); ca = [resolve(certsDir, 'ca.crt')];
  } else if (cert === null || key === null || ca.length === 0) {
    const missing = [cert === null && 'cert', key === null && 'key', ca.length === 0 && 'ca'].filter(Boolean).join(', ');
    throw new ConfigError(`--cert, --key and --ca go together (missing: ${missing}); give none of them for dev mode`, { field: missing.split(', ')[0]! });
  }

  let policies = path('policies');
  if (policies === null && dev && existsSync(resolve(cwd, DEFAULTS.policiesDir))) policies = resolve(cwd, DEFAULTS.policiesDir);

  const clientAuth = str('clientAuth') ?? DEFAULTS.clientAuth;
  if (!(CLIENT_AUTH as readonly string[]).includes(clientAuth)) {
    throw new ConfigError(`'${clientAuth}' is not one of ${CLIENT_AUTH.join(', ')}`, { field: 'clientAuth' });
  }
  const clientSecretFile = path('clientSecretFile');
  if (clientAuth === 'client_secret_basic' && !clientSecretFile && str('issuer')) {
    throw new ConfigError('client_secret_basic needs --client-secret-file', { field: 'clientSecretFile' });
  }
  const trustDomains = list('trustDomain');
  for (const td of trustDomains) {
    if (!isTrustDomainName(td)) throw new ConfigError(`'${td}' is not a SPIFFE trust domain name (${TRUST_DOMAIN_RULE})`, { field: 'trustDomain' });
  }
  const federations = list('federate').map((entry) => parseFederation(entry, trustDomains, cwd));
  const federated = new Set<string>();
  for (const f of federations) {
    if (federated.has(f.trustDomain)) throw new ConfigError(`trust domain '${f.trustDomain}' is federated twice; one bundle file per trust domain (a file may hold several CAs)`, { field: 'federate' });
    federated.add(f.trustDomain);
  }

  const plaintext = str('plaintextListen');
  const config: Config = {
    upstream: parseUpstream(upstreamRaw),
    listen: parseListen(str('listen') ?? (dev ? DEFAULTS.devListen : DEFAULTS.listen), 'listen'),
    plaintextListen: plaintext ? parseListen(plaintext, 'plaintextListen') : null,
    outboundListen: parseListen(str('outboundListen') ?? DEFAULTS.outboundListen, 'outboundListen'),
    adminListen: parseListen(str('adminListen') ?? DEFAULTS.adminListen, 'adminListen'),
    cert, key, ca, trustDomains, federations, policies,
    auditLog: path('auditLog'),
    auditSealIntervalMs: parseDuration(raw.auditSealInterval as string ?? DEFAULTS.auditSealInterval, 'auditSealInterval'),
    upgradeProtocols: parseUpgradeProtocols(raw.upgradeProtocols ?? DEFAULTS.upgradeProtocols),
    issuer: str('issuer'),
    clientId: str('clientId'),
    clientAuth: clientAuth as Config['clientAuth'],
    clientSecretFile,
    ...parseTokenSettings((k) => raw[k], str('issuer'), clientAuth),
    maxHeaderBytes: parseBytes(raw.maxHeaderBytes as string ?? DEFAULTS.maxHeaderBytes, 'maxHeaderBytes'),
    maxBodyBytes: parseBytes(raw.maxBodyBytes as string ?? DEFAULTS.maxBodyBytes, 'maxBodyBytes'),
    drainTimeoutMs: parseDuration(raw.drainTimeout as string ?? DEFAULTS.drainTimeout, 'drainTimeout'),
    upstreamTimeoutMs: parseDuration(raw.upstreamTimeout as string ?? DEFAULTS.upstreamTimeout, 'upstreamTimeout'),
    connectTimeoutMs: parseDuration(raw.connectTimeout as string ?? DEFAULTS.connectTimeout, 'connectTimeout'),
    requestTimeoutMs: parseDuration(raw.requestTimeout as string ?? DEFAULTS.requestTimeout, 'requestTimeout'),
    maxRetries: wholeNumber(raw.maxRetries ?? DEFAULTS.maxRetries, 'maxRetries', 0),
    retryBudget: parseRatio(raw.retryBudget ?? DEFAULTS.retryBudget, 'retryBudget'),
    retryBudgetFloor: wholeNumber(raw.retryBudgetFloor ?? DEFAULTS.retryBudgetFloor, 'retryBudgetFloor', 0),
    reloadIntervalMs: parseDuration(raw.reloadInterval as string ?? DEFAULTS.reloadInterval, 'reloadInterval'),
    maxConnections: wholeNumber(raw.maxConnections ?? DEFAULTS.maxConnections, 'maxConnections', 1),
    headerTimeoutMs: parseDuration(raw.headerTimeout as string ?? DEFAULTS.headerTimeout, 'headerTimeout'),
    clientIdleTimeoutMs: parseDuration(raw.clientIdleTimeout as string ?? DEFAULTS.clientIdleTimeout, 'clientIdleTimeout'),
    dev,
    certsDir,
  };
  if (config.maxHeaderBytes < 1024) throw new ConfigError('must be at least 1024 bytes', { field: 'maxHeaderBytes' });
  if (config.headerTimeoutMs < 100) throw new ConfigError('must be at least 100ms', { field: 'headerTimeout' });
  if (config.clientIdleTimeoutMs <= Math.max(config.upstreamTimeoutMs, config.requestTimeoutMs)) {
    // Otherwise a client waiting on a slow (but in-time) app would be cut off as idle.
    throw new ConfigError(`must be longer than upstreamTimeout and requestTimeout (${Math.max(config.upstreamTimeoutMs, config.requestTimeoutMs)} ms)`, { field: 'clientIdleTimeout' });
  }
  return Object.freeze(config);
}

const PROTOCOL_NAME = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;

/** `websocket`, `websocket,spdy`, or `*` for any; a YAML list works too. h2c and HTTP never. */
function parseUpgradeProtocols(v: unknown): ReadonlySet<string> | null {
  const names = (Array.isArray(v) ? v.map(String) : String(v).split(',')).map((n) => n.trim().toLowerCase()).filter(Boolean);
  if (names.length === 1 && names[0] === '*') return null;
  if (names.length === 0) throw new ConfigError('names no protocol (websocket, a list, or * for any)', { field: 'upgradeProtocols' });
  for (const n of names) {
    if (n === '*' || !PROTOCOL_NAME.test(n)) throw new ConfigError(`'${n}' is not a protocol name (a token such as websocket; * alone for any)`, { field: 'upgradeProtocols' });
    if (/^(?:h2|http$)/.test(n)) throw new ConfigError(`'${n}' carries HTTP after the 101, past the sidecar, and is never accepted`, { field: 'upgradeProtocols' });
  }
  return new Set(names);
}

function wholeNumber(v: unknown, field: string, min: number): number {
  const n = typeof v === 'number' ? v : /^\d+$/.test(String(v)) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min) throw new ConfigError(`'${String(v)}' must be a whole number of at least ${min}`, { field });
  return n;
}

/** `20%` or `0.2`. */
function parseRatio(v: unknown, field: string): number {
  const text = String(v).trim();
  const n = text.endsWith('%') ? Number(text.slice(0, -1)) / 100 : Number(text);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new ConfigError(`'${text}' must be a share like 20% or 0.2`, { field });
  return n;
}

export function isRepeatable(k: RawKey): boolean { return REPEATABLE.has(k); }

/** `--federate TD=FILE`. A federated domain is never also one of ours: its bundle alone vouches for it. */
function parseFederation(entry: string, own: readonly string[], cwd: string): Federation {
  const at = entry.indexOf('=');
  const trustDomain = at > 0 ? entry.slice(0, at) : '';
  const file = at > 0 ? entry.slice(at + 1) : '';
  if (!trustDomain || !file) throw new ConfigError(`'${entry}' is not TRUST_DOMAIN=BUNDLE_FILE (e.g. partner.org=/etc/authproxy/partner-bundle.pem)`, { field: 'federate' });
  if (!isTrustDomainName(trustDomain)) throw new ConfigError(`'${trustDomain}' is not a SPIFFE trust domain name (${TRUST_DOMAIN_RULE})`, { field: 'federate' });
  if (own.includes(trustDomain)) {
    throw new ConfigError(`trust domain '${trustDomain}' is both accepted with --trust-domain (vouched for by --ca) and federated (vouched for by its own bundle); name it in one of the two`, { field: 'federate' });
  }
  return Object.freeze({ trustDomain, bundle: resolve(cwd, file) });
}

/** What `/config` shows: paths and settings, never file contents (keys and secrets live in files). */
export function redactedConfig(c: Config): Record<string, unknown> {
  return {
    ...c,
    upstream: c.upstream.display,
    clientSecretFile: c.clientSecretFile ? '<redacted path>' : null,
  };
}
