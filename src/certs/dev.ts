// Dev mode's certificates: a CA, the sidecar's own workload certificate and a client certificate
// for curl, created once under one directory and reused on every later start.
import { X509Certificate } from 'node:crypto';
import { lstat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isTrustDomainName, parseSpiffeId, TRUST_DOMAIN_RULE } from '../identity/spiffe.ts';
import { caPaths, loadCa } from './ca.ts';
import { writeOutputs, type OutputFile } from './files.ts';
import type { Issuer } from './pki.ts';

export interface DevPkiOptions {
  trustDomain: string;
  /** A SPIFFE ID, or a path inside the trust domain (`ns/dev/sa/app` → `spiffe://<td>/ns/dev/sa/app`). */
  workloadId: string;
  clientId: string;
}

export interface DevPki {
  caCert: string;
  workloadCert: string;
  workloadKey: string;
  clientCert: string;
  clientKey: string;
  /** True when anything was written by this call. */
  created: boolean;
}

export const DEV_CA_DAYS = 365;
export const DEV_LEAF_DAYS = 90;
// A certificate this close to its end is made again at the next start, so that a dev setup left
// alone for months starts as it did on day one (a sidecar refuses an expired certificate).
const RENEW_LEAF_WITHIN_MS = 7 * 86_400_000;
const RENEW_CA_WITHIN_MS = 30 * 86_400_000;

export function toSpiffeId(trustDomain: string, id: string): string {
  const full = id.startsWith('spiffe://') ? id : `spiffe://${trustDomain}/${id.replace(/^\/+/, '')}`;
  const parsed = parseSpiffeId(full);
  if (!parsed) throw new Error(`'${full}' is not a valid SPIFFE ID`);
  if (parsed.trustDomain !== trustDomain) throw new Error(`'${full}' is not in trust domain '${trustDomain}'`);
  return full;
}

async function present(path: string): Promise<boolean> {
  try { await lstat(path); return true; } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

/** Both files of a pair are there, and the certificate is valid now and for `renewWithinMs` more. */
async function usable(cert: string, key: string, renewWithinMs: number): Promise<boolean> {
  if (!await present(cert) || !await present(key)) return false;
  let c: X509Certificate;
  try { c = new X509Certificate(await readFile(cert)); } catch { return false; }
  const now = Date.now();
  return new Date(c.validFrom).getTime() <= now && new Date(c.validTo).getTime() - now > renewWithinMs;
}

/**
 * Create whatever of the dev PKI is missing or about to expire under `dir` and return the paths.
 * A certificate and its key are one unit: both present and the certificate valid for days yet
 * means reuse as-is, otherwise both are (re)written. A new CA also means new leaves, since leaves
 * signed by a previous CA could no longer be verified.
 */
export async function ensureDevPki(dir: string, opts: DevPkiOptions): Promise<DevPki> {
  if (!isTrustDomainName(opts.trustDomain)) throw new Error(`'${opts.trustDomain}' is not a valid trust domain (${TRUST_DOMAIN_RULE})`);
  const workloadId = toSpiffeId(opts.trustDomain, opts.workloadId);
  const clientId = toSpiffeId(opts.trustDomain, opts.clientId);
  const ca = caPaths(dir);
  const paths = {
    caCert: ca.cert, caKey: ca.key,
    workloadCert: join(dir, 'workload.crt'), workloadKey: join(dir, 'workload.key'),
    clientCert: join(dir, 'client.crt'), clientKey: join(dir, 'client.key'),
  };
  const needCa = !await usable(paths.caCert, paths.caKey, RENEW_CA_WITHIN_MS);
  const needWorkload = needCa || !await usable(paths.workloadCert, paths.workloadKey, RENEW_LEAF_WITHIN_MS);
  const needClient = needCa || !await usable(paths.clientCert, paths.clientKey, RENEW_LEAF_WITHIN_MS);
  const result = { caCert: paths.caCert, workloadCert: paths.workloadCert, workloadKey: paths.workloadKey,
    clientCert: paths.clientCert, clientKey: paths.clientKey };
  if (!needCa && !needWorkload && !needClient) return { ...result, created: false };

  // Loaded only to create certificates: @peculiar/x509 and its ASN.1 schemas are ~210 modules,
  // which every later dev-mode start (certificates already there) would otherwise load for nothing.
  const { createCA, issueCertificate } = await import('./pki.ts');

  const out: OutputFile[] = [];
  let issuer: Issuer;
  if (needCa) {
    issuer = await createCA({ trustDomain: opts.trustDomain, commonName: `authproxy dev CA (${opts.trustDomain})`, days: DEV_CA_DAYS });
    out.push({ path: paths.caCert, data: issuer.certPem, secret: false }, { path: paths.caKey, data: issuer.keyPem, secret: true });
  } else {
    issuer = await loadCa(dir);
  }
  // Leaves end with the CA at the latest: a leaf outliving its CA fails verification early anyway.
  const caNotAfter = new Date(new X509Certificate(issuer.certPem).validTo).getTime();
  const notAfter = new Date(Math.min(Date.now() + DEV_LEAF_DAYS * 86_400_000, caNotAfter));
  if (needWorkload) {
    // localhost and loopback SANs let curl verify the sidecar by name or address.
    const w = await issueCertificate(issuer, { spiffeId: workloadId, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'], notAfter });
    out.push({ path: paths.workloadCert, data: w.certPem, secret: false }, { path: paths.workloadKey, data: w.keyPem, secret: true });
  }
  if (needClient) {
    const c = await issueCertificate(issuer, { spiffeId: clientId, notAfter });
    out.push({ path: paths.clientCert, data: c.certPem, secret: false }, { path: paths.clientKey, data: c.keyPem, secret: true });
  }
  // Half-present pairs are replaced, hence force; complete pairs were not selected above.
  await writeOutputs(out, { force: true });
  return { ...result, created: true };
}
