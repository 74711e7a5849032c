// The real `authproxy injector` as a child process with a generated serving certificate, and an
// HTTPS client speaking AdmissionReview to it the way the API server does.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCA, issueCertificate, type PemPair } from '../../../src/certs/pki.ts';
import { wholeJsonLines } from '../../support/json-lines.ts';

export const REPO = fileURLToPath(new URL('../../..', import.meta.url));
export const BIN = join(REPO, 'bin/authproxy.js');

export interface WebhookPki {
  dir: string;
  ca: PemPair;
  caFile: string;
  certFile: string;
  keyFile: string;
  /** Write a freshly issued serving pair over the current files (rotation). */
  rotate(): Promise<void>;
  cleanup(): Promise<void>;
}

export async function webhookPki(): Promise<WebhookPki> {
  const dir = await mkdtemp(join(tmpdir(), 'authproxy-injector-'));
  const ca = await createCA({ commonName: 'injector test CA' });
  const caFile = join(dir, 'ca.crt'); const certFile = join(dir, 'tls.crt'); const keyFile = join(dir, 'tls.key');
  const issue = async (): Promise<void> => {
    const pair = await issueCertificate(ca, { dnsNames: ['localhost', 'authproxy-injector.authproxy-system.svc'], ipAddresses: ['127.0.0.1'] });
    await writeFile(keyFile, pair.keyPem, { mode: 0o600 });
    await writeFile(certFile, pair.certPem);
  };
  await writeFile(caFile, ca.certPem);
  await issue();
  return { dir, ca, caFile, certFile, keyFile, rotate: issue, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface Injector {
  proc: ChildProcess;
  port: number;
  stderr(): string;
  logs(): Array<Record<string, unknown>>;
  stop(): Promise<number | null>;
}

export async function startInjector(args: string[]): Promise<Injector> {
  const proc = spawn(process.execPath, [BIN, 'injector', '--listen', '127.0.0.1:0', ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stdout!.resume();
  const logs = (): Array<Record<string, unknown>> => wholeJsonLines(err);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`injector did not start; stderr:\n${err}`)), 15_000);
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
      err += d;
      const ready = logs().find((l) => l.msg === 'injector: listening');
      if (ready) { clearTimeout(timer); resolve(Number(new URL(String(ready.url)).port)); }
    });
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`injector exited ${code}; stderr:\n${err}`)); });
  });
  return {
    proc, port, stderr: () => err, logs,
    async stop() {
      if (proc.exitCode !== null) return proc.exitCode;
      proc.kill('SIGTERM');
      const [code] = await once(proc, 'exit') as [number | null];
      return code;
    },
  };
}

export interface HttpsReply { status: number; body: string; peerFingerprint: string }

export function post(port: number, ca: string, path: string, body: string | Buffer, headers: Record<string, string> = { 'content-type': 'application/json' }): Promise<HttpsReply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', ca, servername: 'localhost', headers, agent: false }, (res) => {
      const fp = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => { text += d; }).on('end', () => resolve({ status: res.statusCode ?? 0, body: text, peerFingerprint: fp }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

export function get(port: number, ca: string, path: string): Promise<HttpsReply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, ca, servername: 'localhost', agent: false }, (res) => {
      const fp = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => { text += d; }).on('end', () => resolve({ status: res.statusCode ?? 0, body: text, peerFingerprint: fp }));
    });
    req.on('error', reject);
    req.end();
  });
}

let uidCounter = 0;
/** An AdmissionReview as the API server sends it for a CREATE. */
export function admissionReview(object: Record<string, unknown>, opts: { namespace?: string; uid?: string } = {}): Record<string, unknown> {
  const apiVersion = String(object.apiVersion);
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') as [string, string] : ['', apiVersion];
  const kind = String(object.kind);
  const resource = `${kind.toLowerCase()}s`;
  const meta = object.metadata as { name?: string } | undefined;
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: opts.uid ?? `00000000-0000-4000-8000-${String(++uidCounter).padStart(12, '0')}`,
      kind: { group, version, kind },
      resource: { group, version, resource },
      requestKind: { group, version, kind },
      requestResource: { group, version, resource },
      name: meta?.name ?? '',
      namespace: opts.namespace ?? 'shop',
      operation: 'CREATE',
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller', groups: ['system:serviceaccounts', 'system:authenticated'] },
      object,
      oldObject: null,
      dryRun: false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
    },
  };
}
