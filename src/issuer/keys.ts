// The issuer's signing key: ES256, generated at start, held only in memory. A restart rotates
// it, and verifiers pick the new key up from the JWKS by its kid.
import { generateKeyPairSync, randomBytes, createHash } from 'node:crypto';

export interface SigningKey {
  readonly kid: string;
  /** Handed to oidc-provider only; never logged. */
  readonly privateJwk: Readonly<Record<string, unknown>>;
  /** Keys oidc-provider's (unused) cookies with; random per process. */
  readonly cookieSecret: string;
}

export function generateSigningKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pub = publicKey.export({ format: 'jwk' });
  // RFC 7638 thumbprint: a kid that names the key without revealing anything about it.
  const kid = createHash('sha256').update(JSON.stringify({ crv: pub.crv, kty: pub.kty, x: pub.x, y: pub.y })).digest('base64url');
  return Object.freeze({
    kid,
    privateJwk: Object.freeze({ ...privateKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' }),
    cookieSecret: randomBytes(32).toString('base64url'),
  });
}
