// Namespace labels and annotations from the Kubernetes API, for the webhook: an AdmissionReview
// carries the pod but not its namespace. In-cluster credentials (the service account token, which
// the kubelet rotates, so it is re-read) and a short cache keep the webhook inside its deadline.
import { request } from 'node:https';
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { LRUCache } from 'lru-cache';
import { isObject, stringMap, type NamespaceMeta } from './k8s.ts';

export type NamespaceReader = (name: string) => Promise<NamespaceMeta>;

export interface KubeApiOptions {
  /** https://host:port of the API server. */
  url: string;
  tokenFile: string;
  caFile: string;
  cacheTtlMs?: number;
  timeoutMs?: number;
}

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** The in-cluster API settings, or undefined when not running in a pod. */
export function inClusterApi(env: NodeJS.ProcessEnv = process.env): KubeApiOptions | undefined {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  if (!host || !existsSync(`${SA_DIR}/token`)) return undefined;
  const h = host.includes(':') ? `[${host}]` : host;
  return { url: `https://${h}:${port}`, tokenFile: `${SA_DIR}/token`, caFile: `${SA_DIR}/ca.crt` };
}

export class NamespaceLookupError extends Error {}

export function kubeNamespaceReader(opts: KubeApiOptions): NamespaceReader {
  const timeoutMs = opts.timeoutMs ?? 3000;
  const cache = new LRUCache<string, NamespaceMeta>({
    max: 1000,
    ttl: opts.cacheTtlMs ?? 10_000,
    // Concurrent pod creations in one namespace (a scaled Deployment) share one API call.
    fetchMethod: async (name) => fetchNamespace(opts, name, timeoutMs),
  });
  return async (name) => {
    const meta = await cache.fetch(name);
    if (!meta) throw new NamespaceLookupError(`namespace ${name}: no answer`);
    return meta;
  };
}

async function fetchNamespace(opts: KubeApiOptions, name: string, timeoutMs: number): Promise<NamespaceMeta> {
  const [token, ca] = await Promise.all([readFile(opts.tokenFile, 'utf8'), readFile(opts.caFile, 'utf8')]);
  const url = new URL(`/api/v1/namespaces/${encodeURIComponent(name)}`, opts.url);
  const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(url, {
      method: 'GET', ca, timeout: timeoutMs,
      headers: { authorization: `Bearer ${token.trim()}`, accept: 'application/json' },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new NamespaceLookupError(`namespace ${name}: API server did not answer within ${timeoutMs} ms`)));
    req.on('error', (e) => reject(e instanceof NamespaceLookupError ? e : new NamespaceLookupError(`namespace ${name}: ${e.message}`)));
    req.end();
  });
  if (status === 404) return { name, labels: {}, annotations: {} };
  if (status !== 200) throw new NamespaceLookupError(`namespace ${name}: API server answered ${status}${status === 403 ? ' (the injector needs RBAC get on namespaces)' : ''}`);
  let doc: unknown;
  try { doc = JSON.parse(body); } catch { throw new NamespaceLookupError(`namespace ${name}: API server answered with invalid JSON`); }
  const meta = isObject(doc) && isObject(doc.metadata) ? doc.metadata : {};
  return { name, labels: stringMap(meta.labels), annotations: stringMap(meta.annotations) };
}
