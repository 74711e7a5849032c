// HTTP to the token issuer (discovery, token endpoint, JWKS). HTTPS issuers are verified against
// the system roots plus the workload's trust bundle, so both a public issuer and one signed by the
// mesh CA work. Only `tls_client_auth` presents the workload certificate; the agents are rebuilt
// when the certificate rotates, so the issuer always sees the current one.
import { rootCertificates } from 'node:tls';
import { Agent, request, type Dispatcher } from 'undici';
import type { TlsMaterial } from '../identity/material.ts';

/** Each issuer call (connection, headers and the whole body) must be done within this; a slow issuer must not hold requests for the app's timeout. */
export const ISSUER_TIMEOUT_MS = 10_000;
/** Discovery documents, JWKS and token responses larger than this are refused (a padded 32 KB token fits many times). */
const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

export interface IssuerResponse { status: number; body: unknown }

/** A transport-level failure talking to the issuer; `reason` is safe to log (no URL query, no body). */
export class IssuerUnreachable extends Error {
  constructor(reason: string, options?: { cause?: unknown }) { super(reason, options); this.name = 'IssuerUnreachable'; }
}

export class IssuerHttp {
  readonly #tls: () => TlsMaterial;
  #agents: { version: string; plain: Agent; withCert: Agent } | null = null;

  constructor(tls: () => TlsMaterial) { this.#tls = tls; }

  /** The dispatcher for issuer calls; `withClientCert` presents the workload certificate (tls_client_auth). */
  dispatcher(withClientCert: boolean): Dispatcher {
    const m = this.#tls();
    if (this.#agents?.version !== m.version) {
      const old = this.#agents;
      const ca = [...rootCertificates, m.caPem];
      const base = { headersTimeout: ISSUER_TIMEOUT_MS, bodyTimeout: ISSUER_TIMEOUT_MS, connectTimeout: ISSUER_TIMEOUT_MS, allowH2: false };
      this.#agents = {
        version: m.version,
        plain: new Agent({ ...base, connect: { ca } }),
        withCert: new Agent({ ...base, connect: { ca, cert: m.certPem, key: m.keyPem } }),
      };
      // In-flight calls on the old agents finish; new ones use the rotated certificate.
      if (old) { void old.plain.close(); void old.withCert.close(); }
    }
    return withClientCert ? this.#agents.withCert : this.#agents.plain;
  }

  async getJson(url: string, signal?: AbortSignal): Promise<IssuerResponse> {
    return this.#send(url, { method: 'GET', headers: { accept: 'application/json' } }, false, signal);
  }

  async postForm(url: string, form: URLSearchParams, headers: Record<string, string>, withClientCert: boolean, signal?: AbortSignal): Promise<IssuerResponse> {
    return this.#send(url, {
      method: 'POST',
      headers: { ...headers, accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
    }, withClientCert, signal);
  }

  async #send(url: string, opts: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: string }, withCert: boolean, signal?: AbortSignal): Promise<IssuerResponse> {
    // One deadline for the whole call, connect to last body byte. The agent's timeouts alone do
    // not bound it: bodyTimeout is an idle timer between chunks, so an issuer that sends a byte
    // every few seconds would hold the call (and every request waiting on it) indefinitely.
    const deadline = AbortSignal.timeout(ISSUER_TIMEOUT_MS);
    const abort = signal ? AbortSignal.any([signal, deadline]) : deadline;
    const failed = (e: unknown): IssuerUnreachable =>
      new IssuerUnreachable(deadline.aborted ? timedOut() : describeTransportError(e), { cause: e });
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, { ...opts, dispatcher: this.dispatcher(withCert), signal: abort });
    } catch (e) {
      throw failed(e);
    }
    const chunks: Buffer[] = [];
    let bytes = 0;
    try {
      for await (const chunk of res.body) {
        bytes += (chunk as Buffer).length;
        if (bytes > MAX_RESPONSE_BYTES) { res.body.destroy(); throw new IssuerUnreachable(`issuer response larger than ${MAX_RESPONSE_BYTES} bytes`); }
        chunks.push(chunk as Buffer);
      }
    } catch (e) {
      if (e instanceof IssuerUnreachable) throw e;
      throw failed(e);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    let body: unknown;
    try { body = text === '' ? null : JSON.parse(text); } catch { body = null; }
    return { status: res.statusCode, body };
  }

  async close(): Promise<void> {
    const a = this.#agents;
    this.#agents = null;
    if (a) await Promise.all([a.plain.close(), a.withCert.close()]);
  }
}

function describeTransportError(e: unknown): string {
  const err = e as { code?: string; name?: string; cause?: { code?: string } };
  const code = err.code ?? err.cause?.code ?? err.name ?? 'error';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') return timedOut(code);
  if (code === 'AbortError' || code === 'UND_ERR_ABORTED') return 'issuer request aborted';
  return `issuer unreachable (${code})`;
}

function timedOut(code?: string): string {
  return `issuer did not answer within ${ISSUER_TIMEOUT_MS / 1000}s${code ? ` (${code})` : ''}`;
}
