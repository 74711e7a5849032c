// The oidc-provider configuration of the dev issuer: client credentials only, one JWT access
// token per resource indicator, claims and lifetime from the clients file and JIT approvals.
// Every decision about what a token carries is made here, in the provider's own hooks.
import type { TLSSocket } from 'node:tls';
import type { X509Certificate } from 'node:crypto';
import { Provider, errors, type KoaContextWithOIDC, type ClientCredentialsToken, type OidcClient,
  type ResourceServerInfo, type StructuredJwt } from 'oidc-provider';
import { checkPeer } from '../identity/peer.ts';
import { memoryAdapter } from './adapter.ts';
import { ApprovalRefused, type Approval, type ApprovalStore } from './approvals.ts';
import { providerMetadata, type IssuerClient } from './clients.ts';
import { padPayload } from './padding.ts';
import type { SigningKey } from './keys.ts';

/** Token request parameters oidc-provider does not know; read from the parsed body. */
export const APPROVAL_PARAM = 'approval';
export const AUDIENCE_PARAM = 'audience';

const ACCESS_TOKEN_ALG = 'ES256';
const ES256_SIGNATURE_BYTES = 64;

export interface ProviderSettings {
  issuerUrl: string;
  clients: ReadonlyMap<string, IssuerClient>;
  approvals: ApprovalStore;
  signingKey: SigningKey;
  tokenTtlSeconds: number;
  /** 0 = no padding */
  padTokensTo: number;
  /** HTTPS with client certificates: enables tls_client_auth. */
  mtls: boolean;
}

export function createProvider(s: ProviderSettings): Provider {
  // What getResourceServerInfo decided about this request, for the hooks that run later in it.
  const approvalOf = new WeakMap<object, Approval>();

  const clientOf = (id: string): IssuerClient => {
    const c = s.clients.get(id);
    if (!c) throw new errors.InvalidRequest('unknown client');
    return c;
  };

  const provider = new Provider(s.issuerUrl, {
    clients: [...s.clients.values()].map(providerMetadata),
    jwks: { keys: [s.signingKey.privateJwk] },
    adapter: memoryAdapter(),
    // No browser flows: the authorization endpoint exists (oidc-provider always mounts it) but
    // issues nothing, and discovery says so.
    responseTypes: ['none'],
    clientAuthMethods: ['private_key_jwt', 'client_secret_basic', ...(s.mtls ? ['tls_client_auth'] : [])],
    clientDefaults: {
      grant_types: ['client_credentials'],
      response_types: [],
      id_token_signed_response_alg: ACCESS_TOKEN_ALG,
      token_endpoint_auth_method: 'private_key_jwt',
    },
    enabledJWA: {
      clientAuthSigningAlgValues: ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA', 'Ed25519', 'HS256'],
      idTokenSigningAlgValues: [ACCESS_TOKEN_ALG],
    },
    cookies: { keys: [s.signingKey.cookieSecret] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      userinfo: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource,
        useGrantedResource: () => false,
        getResourceServerInfo,
      },
      mTLS: {
        enabled: s.mtls,
        tlsClientAuth: s.mtls,
        getCertificate: (ctx: KoaContextWithOIDC) => peerCertificate(ctx),
        // The TLS stack verified the chain against the trust bundle; an unverified certificate is
        // still offered to us (client certificates are optional here) and is refused by this check.
        certificateAuthorized: (ctx: KoaContextWithOIDC) => (ctx.socket as TLSSocket).authorized === true,
        certificateSubjectMatches,
      },
    },
    ttl: {
      ClientCredentials: (_ctx: unknown, token: ClientCredentialsToken) => token.resourceServer?.accessTokenTTL ?? s.tokenTtlSeconds,
    },
    extraTokenClaims,
    formats: { customizers: { jwt: customizeJwt } },
    // Errors are JSON for every caller, browsers included: the issuer has no pages.
    renderError: (ctx: KoaContextWithOIDC, out: unknown) => { ctx.type = 'json'; ctx.body = out; },
  });
  provider.silent = true;
  return provider;

  /** `audience=` as an alias of `resource=`; else the client's only audience. */
  async function defaultResource(ctx: KoaContextWithOIDC, client: OidcClient, oneOf?: string | string[]): Promise<string | string[] | undefined> {
    if (oneOf) return oneOf;
    const alias = bodyParam(ctx, AUDIENCE_PARAM);
    if (alias !== undefined) return alias;
    const audiences = [...clientOf(client.clientId).audiences.keys()];
    if (audiences.length === 1) return audiences[0];
    throw new errors.InvalidTarget(`resource (or audience) is required: this client has several audiences (${audiences.join(', ')})`);
  }

  async function getResourceServerInfo(ctx: KoaContextWithOIDC, resource: string, client: OidcClient): Promise<ResourceServerInfo> {
    const alias = bodyParam(ctx, AUDIENCE_PARAM);
    if (alias !== undefined && alias !== resource) throw new errors.InvalidTarget('audience and resource name different targets');
    const grant = clientOf(client.clientId).audiences.get(resource);
    if (!grant) throw new errors.InvalidTarget(`this client may not obtain tokens for ${resource}`);

    let ttl = s.tokenTtlSeconds;
    const approvalId = bodyParam(ctx, APPROVAL_PARAM);
    if (approvalId !== undefined) {
      try {
        const { approval, remainingMs } = s.approvals.redeem(approvalId, client.clientId, resource);
        approvalOf.set(ctx, approval);
        ttl = Math.min(ttl, Math.floor(remainingMs / 1000));
      } catch (e) {
        if (e instanceof ApprovalRefused) throw new errors.CustomOIDCProviderError('invalid_grant', e.message);
        throw e;
      }
    }

    // No scope asked for: the client gets everything it is allowed for this audience.
    const params = ctx.oidc.params;
    if (params && (params.scope === undefined || params.scope === '') && grant.scopes.length) params.scope = grant.scopes.join(' ');
    return {
      audience: resource,
      scope: grant.scopes.join(' '),
      accessTokenFormat: 'jwt',
      accessTokenTTL: ttl,
      jwt: { sign: { alg: ACCESS_TOKEN_ALG } },
    };
  }

  async function extraTokenClaims(ctx: KoaContextWithOIDC, token: ClientCredentialsToken): Promise<Record<string, unknown> | undefined> {
    const aud = Array.isArray(token.aud) ? token.aud[0] : token.aud;
    const grant = aud === undefined ? undefined : s.clients.get(token.clientId)?.audiences.get(aud);
    const approval = approvalOf.get(ctx);
    const roles = new Set(grant?.roles ?? []);
    if (approval) roles.add(approval.role);
    const claims: Record<string, unknown> = {};
    if (roles.size) claims.roles = [...roles];
    if (approval) claims.approval = approval.id;
    return Object.keys(claims).length ? claims : undefined;
  }

  async function customizeJwt(_ctx: unknown, _token: unknown, jwt: StructuredJwt): Promise<void> {
    if (s.padTokensTo <= 0) return;
    // The header oidc-provider signs with: alg, typ at+jwt (RFC 9068) and our key's kid.
    const header = { alg: ACCESS_TOKEN_ALG, typ: 'at+jwt', kid: s.signingKey.kid, ...jwt.header };
    padPayload(jwt.payload, header, ES256_SIGNATURE_BYTES, s.padTokensTo);
  }
}

function bodyParam(ctx: KoaContextWithOIDC, name: string): string | undefined {
  const v = ctx.oidc.body?.[name];
  if (Array.isArray(v)) throw new errors.InvalidRequest(`'${name}' parameter must not be provided twice`);
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function peerCertificate(ctx: KoaContextWithOIDC): X509Certificate | undefined {
  const socket = ctx.socket as Partial<TLSSocket>;
  return typeof socket.getPeerX509Certificate === 'function' ? socket.getPeerX509Certificate() : undefined;
}

/** RFC 8705 tls_client_auth_san_uri, with the X.509-SVID rules: the SPIFFE ID must be the cert's only URI SAN. */
function certificateSubjectMatches(ctx: KoaContextWithOIDC, property: string, expected: string): boolean {
  if (property !== 'tls_client_auth_san_uri') return false;
  const cert = peerCertificate(ctx);
  if (!cert) return false;
  const peer = checkPeer(cert, new Set());
  return peer.ok && peer.identity.spiffeId === expected;
}
