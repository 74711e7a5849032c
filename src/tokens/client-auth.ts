// OAuth client authentication for the token request, one function per method:
//   tls_client_auth (RFC 8705)   the TLS layer presents the workload certificate; the body names client_id
//   private_key_jwt (RFC 7523)   a short-lived assertion signed with the workload key
//   client_secret_basic          HTTP Basic with the secret from --client-secret-file (re-read per request,
//                                so a rotated secret file is picked up without a restart)
// Nothing here is ever logged; errors name the failed step, never the key or the secret.
import { createPrivateKey, randomUUID, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { SignJWT } from 'jose';
import type { TlsMaterial } from '../identity/material.ts';

export type ClientAuthMethod = 'tls_client_auth' | 'private_key_jwt' | 'client_secret_basic';

export const JWT_BEARER_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** A client assertion is good for this long: enough for one request, useless if captured later. */
const ASSERTION_TTL_SECONDS = 60;

export interface ClientCredentials {
  /** Extra form parameters (client_id, client_assertion…). */
  readonly params: Record<string, string>;
  readonly headers: Record<string, string>;
  readonly withClientCert: boolean;
}

export class ClientAuthFailed extends Error {
  constructor(message: string) { super(message); this.name = 'ClientAuthFailed'; }
}

export interface ClientAuthOptions {
  method: ClientAuthMethod;
  clientId: string;
  secretFile: string | null;
  /** The `aud` of a private_key_jwt assertion: the issuer identifier, or the token endpoint without one. */
  assertionAudience: string;
  tls: TlsMaterial;
}

export async function clientCredentials(o: ClientAuthOptions): Promise<ClientCredentials> {
  switch (o.method) {
    case 'tls_client_auth':
      return { params: { client_id: o.clientId }, headers: {}, withClientCert: true };
    case 'private_key_jwt':
      return { params: { client_id: o.clientId, client_assertion_type: JWT_BEARER_ASSERTION, client_assertion: await assertion(o) }, headers: {}, withClientCert: false };
    case 'client_secret_basic': {
      const secret = await readSecret(o.secretFile);
      // RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
      const basic = Buffer.from(`${formEncode(o.clientId)}:${formEncode(secret)}`).toString('base64');
      return { params: {}, headers: { authorization: `Basic ${basic}` }, withClientCert: false };
    }
  }
}

function formEncode(s: string): string {
  return encodeURIComponent(s).replace(/%20/g, '+');
}

async function readSecret(file: string | null): Promise<string> {
  if (file === null) throw new ClientAuthFailed('client_secret_basic needs --client-secret-file');
  let text: string;
  try { text = await readFile(file, 'utf8'); } catch (e) {
    throw new ClientAuthFailed(`the client secret file cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const secret = text.trim();
  if (secret === '') throw new ClientAuthFailed('the client secret file is empty');
  return secret;
}

const signingKeys = new WeakMap<TlsMaterial, { key: KeyObject; alg: string }>();

/** The workload key as a signing key, with the JWS algorithm its type implies (cached per certificate version). */
export function workloadSigningKey(m: TlsMaterial): { key: KeyObject; alg: string } {
  let k = signingKeys.get(m);
  if (!k) {
    const key = createPrivateKey(m.keyPem);
    k = { key, alg: algorithmFor(key) };
    signingKeys.set(m, k);
  }
  return k;
}

function algorithmFor(key: KeyObject): string {
  const d = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'ec':
      if (d.namedCurve === 'prime256v1' || d.namedCurve === 'P-256') return 'ES256';
      if (d.namedCurve === 'secp384r1' || d.namedCurve === 'P-384') return 'ES384';
      if (d.namedCurve === 'secp521r1' || d.namedCurve === 'P-521') return 'ES512';
      break;
    case 'rsa': return 'RS256';
    case 'rsa-pss': return 'PS256';
    case 'ed25519': return 'EdDSA';
  }
  throw new ClientAuthFailed(`the workload key (${key.asymmetricKeyType ?? 'unknown'} ${d.namedCurve ?? ''}) cannot sign a private_key_jwt assertion`);
}

async function assertion(o: ClientAuthOptions): Promise<string> {
  const { key, alg } = workloadSigningKey(o.tls);
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg })
    .setIssuer(o.clientId).setSubject(o.clientId).setAudience(o.assertionAudience)
    .setJti(randomUUID()).setIssuedAt(now).setExpirationTime(now + ASSERTION_TTL_SECONDS)
    .sign(key);
}
