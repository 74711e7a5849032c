// Shared by the issuer tests: a real token request over HTTP(S), a private_key_jwt assertion
// signed with a workload key, and JWT verification against the JWKS the issuer serves.
import { randomUUID } from 'node:crypto';
import { Agent, request, type Dispatcher } from 'undici';
import { SignJWT, importPKCS8, createLocalJWKSet, jwtVerify, type JWTPayload } from 'jose';

export const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

export interface TokenResponse { status: number; body: Record<string, unknown> }

export async function postToken(tokenEndpoint: string, params: Record<string, string>,
  opts: { basic?: [string, string]; dispatcher?: Dispatcher } = {}): Promise<TokenResponse> {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (opts.basic) headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(opts.basic[0])}:${encodeURIComponent(opts.basic[1])}`).toString('base64')}`;
  const res = await request(tokenEndpoint, {
    method: 'POST', headers, body: new URLSearchParams({ grant_type: 'client_credentials', ...params }).toString(),
    ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}),
  });
  return { status: res.statusCode, body: await res.body.json() as Record<string, unknown> };
}

/** A private_key_jwt client assertion (RFC 7523) signed with the PEM key, audience = the issuer. */
export async function clientAssertion(clientId: string, keyPem: string, audience: string, alg = 'ES256'): Promise<Record<string, string>> {
  const key = await importPKCS8(keyPem, alg);
  const assertion = await new SignJWT({})
    .setProtectedHeader({ alg })
    .setIssuer(clientId).setSubject(clientId).setAudience(audience)
    .setJti(randomUUID()).setIssuedAt().setExpirationTime('2m')
    .sign(key);
  return { client_assertion_type: JWT_BEARER, client_assertion: assertion };
}

/** Verify an access token against the JWKS fetched from the issuer itself (RFC 9068 at+jwt). */
export async function verifyAccessToken(token: string, issuerUrl: string, audience: string, dispatcher?: Dispatcher): Promise<JWTPayload> {
  const res = await request(`${issuerUrl}/jwks`, dispatcher ? { dispatcher } : {});
  const jwks = createLocalJWKSet(await res.body.json() as Parameters<typeof createLocalJWKSet>[0]);
  const { payload } = await jwtVerify(token, jwks, { issuer: issuerUrl, audience, typ: 'at+jwt', algorithms: ['ES256'] });
  return payload;
}

export function tlsAgent(opts: { ca: string; cert?: string; key?: string }): Agent {
  return new Agent({ connect: { ca: opts.ca, ...(opts.cert ? { cert: opts.cert, key: opts.key } : {}) } });
}
