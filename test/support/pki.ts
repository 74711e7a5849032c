// Certificates for end-to-end tests, generated fresh into a temp dir: one trust domain's CA,
// the sidecar's workload pair, and a cast of clients both valid and deliberately broken.
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCA, issueCertificate, type PemPair } from '../../src/certs/pki.ts';

export interface ClientFiles { cert: string; key: string }

export interface TestPki {
  dir: string;
  ca: string;
  caPair: PemPair;
  server: ClientFiles;
  clients: Record<'billing' | 'shop' | 'otherCa' | 'expired' | 'caAsLeaf' | 'twoUris' | 'foreignDomain' | 'dnsOnly', ClientFiles>;
  /** Issue another pair from the same CA (rotation tests). */
  issue(name: string, opts: Parameters<typeof issueCertificate>[1]): Promise<ClientFiles>;
  cleanup(): Promise<void>;
}

export const SERVER_ID = 'spiffe://example.org/ns/prod/sa/orders';
export const BILLING_ID = 'spiffe://example.org/ns/billing/sa/api';
export const SHOP_ID = 'spiffe://example.org/ns/shop/sa/web';

export async function makePki(): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), 'authproxy-pki-'));
  const caPair = await createCA({ trustDomain: 'example.org' });
  const otherCa = await createCA({ commonName: 'some other CA', trustDomain: 'example.org' });
  const ca = join(dir, 'ca.crt');
  await writeFile(ca, caPair.certPem);
  const save = async (name: string, p: PemPair): Promise<ClientFiles> => {
    const cert = join(dir, `${name}.crt`); const key = join(dir, `${name}.key`);
    await writeFile(cert, p.certPem); await writeFile(key, p.keyPem, { mode: 0o600 });
    return { cert, key };
  };
  const issue = async (name: string, opts: Parameters<typeof issueCertificate>[1]): Promise<ClientFiles> => save(name, await issueCertificate(caPair, opts));
  const hour = 3_600_000;
  const [server, billing, shop, other, expired, caAsLeaf, twoUris, foreign, dnsOnly] = await Promise.all([
    issue('server', { spiffeId: SERVER_ID, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] }),
    issue('billing', { spiffeId: BILLING_ID }),
    issue('shop', { spiffeId: SHOP_ID }),
    issueCertificate(otherCa, { spiffeId: BILLING_ID }).then((p) => save('other-ca', p)),
    issue('expired', { spiffeId: BILLING_ID, notBefore: new Date(Date.now() - 48 * hour), notAfter: new Date(Date.now() - 24 * hour) }),
    issue('ca-as-leaf', { spiffeId: BILLING_ID, isCA: true }),
    issue('two-uris', { spiffeId: BILLING_ID, uris: ['spiffe://example.org/ns/ops/sa/admin'] }),
    issue('foreign', { spiffeId: 'spiffe://evil.example/ns/billing/sa/api' }),
    issue('dns-only', { dnsNames: ['legacy.internal'] }),
  ]);
  return {
    dir, ca, caPair, server: server!,
    clients: { billing: billing!, shop: shop!, otherCa: other!, expired: expired!, caAsLeaf: caAsLeaf!, twoUris: twoUris!, foreignDomain: foreign!, dnsOnly: dnsOnly! },
    issue,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
