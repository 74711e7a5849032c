// The mutating admission webhook: HTTPS, one POST endpoint, health endpoints for the kubelet.
// Whatever arrives, the API server gets an answer before its timeout: a decision, a 400 for a
// review it should not have sent, or a 500 when the namespace could not be read (so its
// failurePolicy decides, rather than this process guessing).
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createSecureContext } from 'node:tls';
import { readFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { ConfigError } from '../errors.ts';
import { log } from '../log.ts';
import { watchPaths, type Watch } from '../reload/watch.ts';
import type { ListenAddress } from '../config/address.ts';
import type { NamespaceMeta } from './k8s.ts';
import type { NamespaceReader } from './kube.ts';
import { BadReview, parseReview, review, reviewResponse } from './review.ts';
import type { InjectSettings } from './settings.ts';

export const INJECT_PATHS = ['/inject', '/mutate'];

export interface WebhookOptions {
  listen: ListenAddress;
  certFile: string;
  keyFile: string;
  settings: InjectSettings;
  /** Where namespace labels come from; without one, namespaces count as unlabelled. */
  namespaces?: NamespaceReader | undefined;
  /** Answer within this, whatever happens; keep it under the webhook's timeoutSeconds. */
  timeoutMs?: number;
  reloadIntervalMs?: number;
  maxBodyBytes?: number;
}

export interface RunningWebhook {
  readonly address: ListenAddress;
  /** SHA-256 fingerprint of the serving certificate in use. */
  fingerprint(): string;
  close(): Promise<void>;
}

interface ServingPair { cert: string; key: string; fingerprint: string }

/** Read and check the serving pair; a broken pair is an error, never half-loaded. */
async function loadServingPair(certFile: string, keyFile: string): Promise<ServingPair> {
  const read = async (file: string): Promise<string> => {
    try { return await readFile(file, 'utf8'); } catch (e) {
      throw new ConfigError(`cannot read: ${(e as NodeJS.ErrnoException).code ?? 'error'}`, { file });
    }
  };
  const [cert, key] = await Promise.all([read(certFile), read(keyFile)]);
  let x509: X509Certificate;
  try { x509 = new X509Certificate(cert); } catch { throw new ConfigError('certificate does not parse', { file: certFile }); }
  // The TLS stack's own check that key and certificate belong together; its message never quotes key bytes.
  try { createSecureContext({ cert, key }); } catch { throw new ConfigError('private key does not parse or does not match the certificate', { file: keyFile }); }
  if (new Date(x509.validTo) < new Date()) throw new ConfigError(`certificate expired at ${new Date(x509.validTo).toISOString()}`, { file: certFile });
  return { cert, key, fingerprint: x509.fingerprint256 };
}

export async function startWebhook(opts: WebhookOptions): Promise<RunningWebhook> {
  const timeoutMs = opts.timeoutMs ?? 8000;
  const maxBody = opts.maxBodyBytes ?? 6 * 1024 * 1024;
  let pair = await loadServingPair(opts.certFile, opts.keyFile);

  const server: Server = createServer({ cert: pair.cert, key: pair.key, minVersion: 'TLSv1.2' }, (req, res) => {
    void handle(req, res).catch((e: unknown) => {
      log.error('webhook request failed', { error: e instanceof Error ? e.message : String(e) });
      if (!res.headersSent) send(res, 500, { error: 'internal error' });
    });
  });
  server.requestTimeout = timeoutMs;
  server.headersTimeout = Math.min(timeoutMs, 60_000);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && (path === '/healthz' || path === '/readyz')) { send(res, 200, { status: 'ok' }); return; }
    if (!INJECT_PATHS.includes(path ?? '')) { send(res, 404, { error: `not found: POST ${INJECT_PATHS[0]}, GET /healthz, GET /readyz` }); return; }
    if (req.method !== 'POST') { send(res, 405, { error: 'POST an AdmissionReview' }); return; }
    const type = req.headers['content-type'] ?? '';
    if (!type.startsWith('application/json')) { send(res, 415, { error: 'content-type must be application/json' }); return; }

    const deadline = new Promise<'timeout'>((resolve) => { const t = setTimeout(() => resolve('timeout'), timeoutMs); t.unref(); });
    const body = await Promise.race([readBody(req, maxBody), deadline]);
    if (body === 'timeout') { send(res, 408, { error: `request body not received within ${timeoutMs} ms` }); return; }
    if (body === 'too-large') { send(res, 413, { error: `AdmissionReview larger than ${maxBody} bytes` }); return; }

    let request;
    try {
      request = parseReview(JSON.parse(body.toString('utf8')));
    } catch (e) {
      const message = e instanceof BadReview ? e.message : 'body is not valid JSON';
      log.warn('webhook: unusable AdmissionReview', { reason: message });
      send(res, 400, { error: message });
      return;
    }

    const nsName = request.namespace ?? '';
    let namespace: NamespaceMeta = { name: nsName, labels: {}, annotations: {} };
    if (opts.namespaces && nsName) {
      const found = await Promise.race([opts.namespaces(nsName).catch((e: unknown) => e as Error), deadline]);
      if (found === 'timeout' || found instanceof Error) {
        const reason = found === 'timeout' ? `namespace ${nsName} not read within ${timeoutMs} ms` : found.message;
        log.error('webhook: cannot read namespace; the webhook failurePolicy decides', { uid: request.uid, reason });
        send(res, 500, { error: reason });
        return;
      }
      namespace = found;
    }

    let outcome;
    try {
      outcome = review(request, namespace, opts.settings);
    } catch (e) {
      // A shape mutate.ts did not foresee: let the pod through untouched rather than fail it here.
      log.error('webhook: object not understood, admitted unchanged', { uid: request.uid, kind: request.kind.kind, error: e instanceof Error ? e.message : String(e) });
      send(res, 200, reviewResponse({ uid: request.uid, allowed: true, warnings: ['authproxy: object not understood; not injected'] }));
      return;
    }
    log.info(`webhook: ${outcome.decision}`, {
      uid: request.uid, kind: outcome.kind, namespace: nsName, name: outcome.name, reason: outcome.reason, operations: outcome.patch.length,
    });
    send(res, 200, reviewResponse(outcome.response));
  }

  const reload = async (): Promise<void> => {
    try {
      const next = await loadServingPair(opts.certFile, opts.keyFile);
      if (next.fingerprint === pair.fingerprint && next.key === pair.key) return;
      server.setSecureContext({ cert: next.cert, key: next.key, minVersion: 'TLSv1.2' });
      pair = next;
      log.info('webhook: serving certificate reloaded', { fingerprint: next.fingerprint });
    } catch (e) {
      log.warn('webhook: new serving certificate refused, keeping the previous one', { error: e instanceof Error ? e.message : String(e) });
    }
  };
  const watch: Watch = watchPaths([opts.certFile, opts.keyFile], opts.reloadIntervalMs ?? 5000, () => { void reload(); });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.listen.port, opts.listen.host, () => { server.off('error', reject); resolve(); });
  });
  const addr = server.address() as AddressInfo;
  return {
    address: { host: addr.address, port: addr.port },
    fingerprint: () => pair.fingerprint,
    close: async () => {
      watch.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) };
  // A body we stopped waiting for cannot be followed by another request on the same connection.
  if (status === 408) headers.connection = 'close';
  res.writeHead(status, headers).end(text);
}

function readBody(req: IncomingMessage, max: number): Promise<Buffer | 'too-large'> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    // Past the limit the rest is drained, not buffered, and the 413 goes out once the body has
    // ended: answering mid-upload makes the client see a reset instead of the status.
    // requestTimeout bounds how long a huge upload can keep us draining.
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= max) chunks.push(chunk);
      else chunks.length = 0;
    });
    req.on('end', () => resolve(size > max ? 'too-large' : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
