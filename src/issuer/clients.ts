// The dev issuer's clients file: who may ask for tokens, how each proves who it is, and which
// audiences, scopes and roles each may receive. Validated once at start-up; every error names
// the file and the field, and never echoes a secret.
//
//   clients:
//     billing:                                   # the OAuth client_id
//       auth: private_key_jwt                    # private_key_jwt | tls_client_auth | client_secret_basic
//       certificate: certs/billing.crt           # private_key_jwt: the key of this PEM certificate...
//       # jwks: { keys: [ { kty: EC, crv: P-256, x: ..., y: ... } ] }   # ...or a public JWKS
//       # spiffeId: spiffe://example.org/ns/billing/sa/billing   # tls_client_auth: the cert's URI SAN
//       # secret: s3cret   /   secretFile: billing.secret          # client_secret_basic
//       audiences:
//         api://payments:
//           scopes: [payments.charge]
//           roles: [Payments.Writer]
//         api://orders: {}
//
// Relative paths are relative to the clients file.
import { readFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { resolve, dirname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../errors.ts';
import { parseSpiffeId } from '../identity/spiffe.ts';
import { parseSubjectAltName } from '../identity/san.ts';

export const CLIENT_AUTH_METHODS = ['private_key_jwt', 'tls_client_auth', 'client_secret_basic'] as const;
export type ClientAuthMethod = typeof CLIENT_AUTH_METHODS[number];

export interface AudienceGrant { readonly scopes: readonly string[]; readonly roles: readonly string[] }

export type PublicJwk = Readonly<Record<string, unknown>>;

export interface IssuerClient {
  readonly id: string;
  readonly auth: ClientAuthMethod;
  readonly spiffeId: string | null;
  readonly jwks: { readonly keys: readonly PublicJwk[] } | null;
  readonly secret: string | null;
  /** audience (resource indicator) -> what this client may hold for it */
  readonly audiences: ReadonlyMap<string, AudienceGrant>;
}

/** The clients file's shape, also accepted as an object by `startIssuer`. */
export interface ClientsDocument { clients: Record<string, RawClient | null> }
export interface RawClient {
  auth?: ClientAuthMethod;
  spiffeId?: string;
  certificate?: string;
  jwks?: { keys: Record<string, unknown>[] };
  secret?: string;
  secretFile?: string;
  audiences?: Record<string, { scopes?: string[]; roles?: string[] } | null>;
}

const CLIENT_KEYS = new Set(['auth', 'spiffeId', 'certificate', 'jwks', 'secret', 'secretFile', 'audiences']);
const AUDIENCE_KEYS = new Set(['scopes', 'roles']);
// JWK members that only a private or symmetric key has: a client's JWKS must never carry them.
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

export async function loadClientsFile(file: string): Promise<IssuerClient[]> {
  let text: string;
  try { text = await readFile(file, 'utf8'); } catch (e) {
    throw new ConfigError(`cannot read clients file: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { file });
  }
  let doc: unknown;
  try { doc = parseYaml(text); } catch (e) { throw new ConfigError(`not valid YAML: ${(e as Error).message}`, { file }); }
  return parseClients(doc, { file, baseDir: dirname(resolve(file)) });
}

export async function parseClients(doc: unknown, where: { file?: string; baseDir: string }): Promise<IssuerClient[]> {
  const at = (field: string): { file?: string; field: string } => ({ ...(where.file ? { file: where.file } : {}), field });
  if (doc === null || doc === undefined) return [];
  if (!isMapping(doc)) throw new ConfigError('must be a mapping with a `clients` key', at('clients'));
  for (const k of Object.keys(doc)) if (k !== 'clients') throw new ConfigError('unknown key (known: clients)', at(k));
  const clients = doc.clients ?? {};
  if (!isMapping(clients)) throw new ConfigError('must be a mapping of client_id to client', at('clients'));
  const out: IssuerClient[] = [];
  for (const [id, raw] of Object.entries(clients)) {
    out.push(await parseClient(id, raw ?? {}, where.baseDir, (f) => at(`clients.${id}${f ? `.${f}` : ''}`)));
  }
  return out;
}

type At = (field?: string) => { file?: string; field: string };

async function parseClient(id: string, raw: unknown, baseDir: string, at: At): Promise<IssuerClient> {
  if (!/^[\x21-\x7e]{1,255}$/.test(id)) throw new ConfigError('client_id must be 1-255 visible ASCII characters', at());
  if (!isMapping(raw)) throw new ConfigError('must be a mapping', at());
  for (const k of Object.keys(raw)) if (!CLIENT_KEYS.has(k)) throw new ConfigError(`unknown key (known: ${[...CLIENT_KEYS].join(', ')})`, at(k));
  const auth = raw.auth;
  if (!isAuthMethod(auth)) throw new ConfigError(`must be one of ${CLIENT_AUTH_METHODS.join(', ')}`, at('auth'));
  const only = (allowed: string[]): void => {
    for (const k of ['spiffeId', 'certificate', 'jwks', 'secret', 'secretFile']) {
      if (raw[k] !== undefined && !allowed.includes(k)) throw new ConfigError(`does not apply to auth ${auth}`, at(k));
    }
  };

  let spiffeId: string | null = null;
  if (raw.spiffeId !== undefined) {
    if (typeof raw.spiffeId !== 'string' || !parseSpiffeId(raw.spiffeId)) throw new ConfigError('is not a SPIFFE ID (spiffe://trust-domain/path)', at('spiffeId'));
    spiffeId = raw.spiffeId;
  }
  let jwks: IssuerClient['jwks'] = null;
  let secret: string | null = null;

  if (auth === 'tls_client_auth') {
    only(['spiffeId']);
    if (!spiffeId) throw new ConfigError('is required for tls_client_auth: the URI SAN the client certificate must carry', at('spiffeId'));
  } else if (auth === 'private_key_jwt') {
    only(['spiffeId', 'certificate', 'jwks']);
    if ((raw.certificate === undefined) === (raw.jwks === undefined)) {
      throw new ConfigError('private_key_jwt needs exactly one of certificate or jwks', at('certificate'));
    }
    jwks = raw.certificate !== undefined
      ? { keys: [await certificateJwk(raw.certificate, baseDir, spiffeId, at('certificate'))] }
      : { keys: parseJwks(raw.jwks, at('jwks')) };
  } else {
    only(['secret', 'secretFile']);
    if ((raw.secret === undefined) === (raw.secretFile === undefined)) {
      throw new ConfigError('client_secret_basic needs exactly one of secret or secretFile', at('secret'));
    }
    secret = raw.secret !== undefined ? raw.secret as string : await readSecretFile(raw.secretFile, baseDir, at('secretFile'));
    if (typeof secret !== 'string' || secret === '') throw new ConfigError('must be a non-empty string', at('secret'));
  }

  return Object.freeze({ id, auth, spiffeId, jwks, secret, audiences: parseAudiences(raw.audiences, at) });
}

function parseAudiences(raw: unknown, at: At): ReadonlyMap<string, AudienceGrant> {
  if (!isMapping(raw) || Object.keys(raw).length === 0) {
    throw new ConfigError('must map at least one audience (e.g. api://payments) to its scopes and roles', at('audiences'));
  }
  const out = new Map<string, AudienceGrant>();
  for (const [aud, grantRaw] of Object.entries(raw)) {
    const field = `audiences.${aud}`;
    // The same rule oidc-provider applies to a resource indicator: an absolute URI without fragment.
    if (!URL.parse(aud) || aud.includes('#')) throw new ConfigError('audience must be an absolute URI without fragment, e.g. api://payments', at(field));
    const g = grantRaw ?? {};
    if (!isMapping(g)) throw new ConfigError('must be a mapping with scopes and roles', at(field));
    for (const k of Object.keys(g)) if (!AUDIENCE_KEYS.has(k)) throw new ConfigError('unknown key (known: scopes, roles)', at(`${field}.${k}`));
    out.set(aud, Object.freeze({
      scopes: Object.freeze(stringList(g.scopes, /^[\x21\x23-\x5b\x5d-\x7e]+$/, at(`${field}.scopes`))),
      roles: Object.freeze(stringList(g.roles, /^[\x21-\x7e]+$/, at(`${field}.roles`))),
    }));
  }
  return out;
}

function stringList(v: unknown, valid: RegExp, where: { file?: string; field: string }): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string' && valid.test(s))) {
    throw new ConfigError('must be a list of names without spaces or quotes', where);
  }
  return [...new Set(v as string[])];
}

async function certificateJwk(path: unknown, baseDir: string, spiffeId: string | null, where: { file?: string; field: string }): Promise<PublicJwk> {
  if (typeof path !== 'string' || path === '') throw new ConfigError('must be the path of a PEM certificate', where);
  let pem: Buffer;
  try { pem = await readFile(resolve(baseDir, path)); } catch (e) {
    throw new ConfigError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`, where);
  }
  let cert: X509Certificate;
  try { cert = new X509Certificate(pem); } catch { throw new ConfigError(`${path} is not a PEM certificate`, where); }
  if (spiffeId !== null && !parseSubjectAltName(cert.subjectAltName).uris.includes(spiffeId)) {
    throw new ConfigError(`${path} does not carry the client's spiffeId ${spiffeId}`, where);
  }
  return { ...cert.publicKey.export({ format: 'jwk' }), use: 'sig' };
}

function parseJwks(raw: unknown, where: { file?: string; field: string }): PublicJwk[] {
  const keys = isMapping(raw) ? raw.keys : undefined;
  if (!Array.isArray(keys) || keys.length === 0 || !keys.every(isMapping)) throw new ConfigError('must be a JWKS: { keys: [ ... ] } with at least one key', where);
  for (const k of keys) {
    if (typeof k.kty !== 'string') throw new ConfigError('every key needs kty', where);
    if (PRIVATE_JWK_MEMBERS.some((m) => k[m] !== undefined)) throw new ConfigError('must hold public keys only (found private or symmetric key material)', where);
  }
  return keys;
}

async function readSecretFile(path: unknown, baseDir: string, where: { file?: string; field: string }): Promise<string> {
  if (typeof path !== 'string' || path === '') throw new ConfigError('must be a path', where);
  try { return (await readFile(resolve(baseDir, path), 'utf8')).trim(); } catch (e) {
    throw new ConfigError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`, where);
  }
}

function isAuthMethod(v: unknown): v is ClientAuthMethod {
  return typeof v === 'string' && (CLIENT_AUTH_METHODS as readonly string[]).includes(v);
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The client as oidc-provider registers it: client_credentials only, no redirects. */
export function providerMetadata(c: IssuerClient): Record<string, unknown> {
  return {
    client_id: c.id,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: c.auth,
    ...(c.jwks ? { jwks: { keys: c.jwks.keys.map((k) => ({ ...k })) } } : {}),
    ...(c.secret !== null ? { client_secret: c.secret } : {}),
    ...(c.auth === 'tls_client_auth' ? { tls_client_auth_san_uri: c.spiffeId } : {}),
  };
}
