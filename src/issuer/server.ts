// The embedded dev token issuer: a real OAuth 2.0 / OIDC server (oidc-provider) for local dev,
// dev mode and tests. Client credentials grant with private_key_jwt, tls_client_auth (RFC 8705)
// and client_secret_basic; JWT access tokens per resource indicator (RFC 8707); JIT approvals.
import type { IncomingMessage, ServerResponse, Server } from 'node:http';
import { createServer as createHttpServer } from '../http/node-http.ts';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Provider } from 'oidc-provider';
import { ConfigError } from '../errors.ts';
import { withoutUserinfo } from '../http/url-text.ts';
import { isLoopbackHostname } from '../http/ip.ts';
import { log } from '../log.ts';
import { parseListen, type ListenAddress } from '../config/address.ts';
import { APPROVALS_PATH, handleApprovals } from './admin.ts';
import { ApprovalStore, type Approval, type ApprovalRequest } from './approvals.ts';
import { loadClientsFile, parseClients, type ClientsDocument, type IssuerClient } from './clients.ts';
import { generateSigningKey } from './keys.ts';
import { createProvider, APPROVAL_PARAM } from './provider.ts';

export const DEFAULT_ISSUER_LISTEN = '127.0.0.1:15080';
export const DEFAULT_TOKEN_TTL_SECONDS = 300;

export interface IssuerOptions {
  /** `host:port` or parsed; port 0 picks a free port. Default 127.0.0.1:15080. */
  listen?: string | ListenAddress;
  /** The `iss` of every token. Default: http(s)://<listen host>:<port> (127.0.0.1 for a wildcard host). */
  issuerUrl?: string;
  /** A clients YAML file, or the same document as an object (paths relative to the cwd). */
  clients?: string | ClientsDocument;
  /** Access token lifetime; default 300. */
  tokenTtlSeconds?: number;
  /** Pad every access token to about this many characters (0 = off). */
  padTokensTo?: number;
  /** Serve HTTPS, request client certificates and verify them against `caPems` (tls_client_auth). */
  tls?: { certPem: string; keyPem: string; caPems: readonly string[] };
  /** No operational log lines (tests). */
  quiet?: boolean;
}

export interface RunningIssuer {
  /** The issuer identifier, no trailing slash. */
  readonly url: string;
  readonly tokenEndpoint: string;
  readonly jwksUri: string;
  readonly approvalsEndpoint: string;
  readonly clients: ReadonlyMap<string, IssuerClient>;
  /** Create a JIT approval in-process (the CLI uses the approvals endpoint instead). */
  approve(req: ApprovalRequest): Approval;
  close(): Promise<void>;
}

export async function startIssuer(opts: IssuerOptions = {}): Promise<RunningIssuer> {
  const listen = typeof opts.listen === 'string' ? parseListen(opts.listen, 'listen')
    : opts.listen ?? parseListen(DEFAULT_ISSUER_LISTEN, 'listen');
  const clientList = await resolveClients(opts.clients);
  const clients = new Map(clientList.map((c) => [c.id, c]));
  const tokenTtlSeconds = opts.tokenTtlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS;
  if (!Number.isInteger(tokenTtlSeconds) || tokenTtlSeconds < 1) throw new ConfigError('must be a whole number of seconds, at least 1', { field: 'tokenTtl' });
  const padTokensTo = opts.padTokensTo ?? 0;
  if (!Number.isInteger(padTokensTo) || padTokensTo < 0) throw new ConfigError('must be a size in bytes', { field: 'padTokens' });
  const mtls = opts.tls !== undefined;
  const needsTls = clientList.find((c) => c.auth === 'tls_client_auth');
  if (needsTls && !mtls) {
    throw new ConfigError(`client '${needsTls.id}' uses tls_client_auth, which needs the issuer to serve HTTPS (give --cert, --key and --ca)`, { field: 'clients' });
  }
  // Checked before listening; the default URL's port is only known after, and does not matter here.
  checkIssuerUrl(opts.issuerUrl ?? defaultIssuerUrl(listen.host, 1, mtls), mtls);

  const server: Server = opts.tls
    ? createHttpsServer({
      cert: opts.tls.certPem, key: opts.tls.keyPem, ca: [...opts.tls.caPems],
      // Client certificates are asked for, not required: private_key_jwt and secret clients
      // have none. tls_client_auth refuses a missing or unverified one itself.
      requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2',
    })
    : createHttpServer();
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(new ConfigError(`cannot listen on ${listen.host}:${listen.port}: ${e.code ?? e.message}`, { field: 'listen' })));
    server.listen(listen.port, listen.host, () => resolveListen());
  });
  const port = (server.address() as AddressInfo).port;
  const url = (opts.issuerUrl ?? defaultIssuerUrl(listen.host, port, mtls)).replace(/\/$/, '');

  const approvals = new ApprovalStore(clients);
  let provider: Provider;
  try {
    provider = createProvider({ issuerUrl: url, clients, approvals, signingKey: generateSigningKey(), tokenTtlSeconds, padTokensTo, mtls });
  } catch (e) {
    server.close();
    throw e;
  }
  const quiet = opts.quiet ?? false;
  provider.on('server_error', (_ctx, err) => log.error('issuer internal error', { error: (err as Error).message }));
  if (!quiet) {
    provider.on('grant.success', (ctx) => log.info('issuer: token issued', grantFields(ctx)));
    // error_detail is what oidc-provider keeps from the client ("invalid secret provided",
    // "client certificate was not provided"): names the failed check, never carries the credential.
    provider.on('grant.error', (ctx, err) => {
      const e = err as { error?: string; error_description?: string; error_detail?: string };
      log.info('issuer: token refused', { ...grantFields(ctx), error: e.error, reason: e.error_description, ...(e.error_detail ? { detail: e.error_detail } : {}) });
    });
  }

  const providerHandler = provider.callback();
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if ((req.url ?? '').split('?')[0] === APPROVALS_PATH) {
      handleApprovals(req, res, approvals).catch((e: unknown) => {
        log.error('issuer approvals endpoint failed', { error: (e as Error).message });
        if (!res.headersSent) res.writeHead(500).end();
      });
      return;
    }
    providerHandler(req, res);
  });

  return {
    url,
    tokenEndpoint: `${url}/token`,
    jwksUri: `${url}/jwks`,
    approvalsEndpoint: `${url}${APPROVALS_PATH}`,
    clients,
    approve: (req) => approvals.grant(req),
    close: () => new Promise<void>((done) => {
      server.close(() => done());
      server.closeAllConnections();
    }),
  };
}

async function resolveClients(clients: IssuerOptions['clients']): Promise<IssuerClient[]> {
  if (clients === undefined) return [];
  if (typeof clients === 'string') return loadClientsFile(clients);
  return parseClients(clients, { baseDir: process.cwd() });
}

function defaultIssuerUrl(host: string, port: number, https: boolean): string {
  const h = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host;
  return `${https ? 'https' : 'http'}://${h}:${port}`;
}

/** An origin (no path, query, fragment); http:// only on loopback, where nothing else can listen in. */
function checkIssuerUrl(value: string, https: boolean): void {
  const u = URL.parse(value);
  const shown = withoutUserinfo(value); // never quote credentials
  if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:')) throw new ConfigError(`'${shown}' is not an http(s) URL`, { field: 'issuerUrl' });
  if ((u.pathname !== '/' && u.pathname !== '') || u.search || u.hash || u.username || u.password) {
    throw new ConfigError(`'${shown}' must be an origin (scheme://host:port) with no path, query or credentials`, { field: 'issuerUrl' });
  }
  if (https !== (u.protocol === 'https:')) {
    throw new ConfigError(`'${shown}' must use ${https ? 'https' : 'http'}:// (the issuer serves ${https ? 'HTTPS' : 'plain HTTP'})`, { field: 'issuerUrl' });
  }
  if (!https && !isLoopbackHostname(u.hostname)) {
    throw new ConfigError(`'${shown}': a plain-HTTP issuer must be on a loopback host; give --cert, --key and --ca to serve HTTPS`, { field: 'issuerUrl' });
  }
}

function grantFields(ctx: unknown): Record<string, unknown> {
  const oidc = (ctx as { oidc?: { client?: { clientId: string }; params?: Record<string, unknown>; body?: Record<string, unknown> } }).oidc;
  return {
    client: oidc?.client?.clientId,
    audience: oidc?.params?.resource,
    ...(typeof oidc?.body?.[APPROVAL_PARAM] === 'string' ? { approval: oidc.body[APPROVAL_PARAM] } : {}),
  };
}
