// oidc-provider ships no type declarations. This declares only the surface the dev issuer uses,
// so a misuse of that surface is still a type error rather than an `any`.
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';
  import type { Socket } from 'node:net';

  export interface OidcClient { readonly clientId: string }

  /** The Koa context oidc-provider passes to configuration hooks. */
  export interface KoaContextWithOIDC {
    socket: Socket;
    status: number;
    body: unknown;
    type: string;
    oidc: {
      /** The whole parsed request body, including parameters oidc-provider itself ignores. */
      body?: Record<string, string | string[] | undefined>;
      params?: Record<string, unknown>;
      client?: OidcClient;
    };
  }

  export interface ResourceServerInfo {
    audience?: string;
    scope: string;
    accessTokenTTL?: number;
    accessTokenFormat?: 'opaque' | 'jwt';
    jwt?: { sign?: { alg?: string; kid?: string } };
  }

  export interface ClientCredentialsToken {
    readonly clientId: string;
    readonly aud?: string | string[];
    readonly resourceServer?: { readonly accessTokenTTL?: number };
  }

  export interface StructuredJwt { header: Record<string, unknown> | undefined; payload: Record<string, unknown> }

  export class OIDCProviderError extends Error {
    error: string;
    error_description?: string;
    status: number;
    statusCode: number;
    expose: boolean;
  }

  export const errors: {
    OIDCProviderError: typeof OIDCProviderError;
    CustomOIDCProviderError: new (error: string, description: string) => OIDCProviderError;
    InvalidTarget: new (description?: string) => OIDCProviderError;
    InvalidRequest: new (description?: string) => OIDCProviderError;
  };

  export class Provider {
    constructor(issuer: string, configuration: Record<string, unknown>);
    readonly issuer: string;
    /** Koa's switch: when true, Koa itself prints nothing for errors. */
    silent: boolean;
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    on(event: string, listener: (...args: unknown[]) => void): this;
  }

  export default Provider;
}
