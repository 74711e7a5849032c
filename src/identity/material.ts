// Loading the workload's certificate, key and trust bundle from files, with the checks that make
// a reload safe: a pair that does not parse, whose key does not match, or that is not currently
// valid is refused, and the caller keeps serving the previous one.
import { readFile } from 'node:fs/promises';
import { X509Certificate, createPrivateKey, createHash } from 'node:crypto';
import { ConfigError } from '../errors.ts';
import { checkPeer, type PeerIdentity } from './peer.ts';
import { federationProblem, type Bundles } from './federation.ts';
import type { Federation } from '../config/config.ts';

export interface TlsMaterial {
  readonly certPem: string;
  /** Held only to hand to the TLS stack; never logged, never shown by the admin API. */
  readonly keyPem: string;
  /** The --ca bundle: what the sidecar trusts for its own domain, and for destinations (outbound). */
  readonly caPem: string;
  /** What the inbound listener verifies clients against: the --ca bundle and every federated one. */
  readonly peerCaPem: string;
  readonly leaf: X509Certificate;
  /** The certificates after the leaf in the certificate file: its chain up to the bundle. */
  readonly intermediates: readonly X509Certificate[];
  readonly cas: readonly X509Certificate[];
  /** `cas`, and each federated trust domain's CAs (none without --federate): who vouches for which peers. */
  readonly bundles: Bundles;
  readonly identity: PeerIdentity;
  readonly trustDomain: string | null;
  readonly notAfter: Date;
  /** Changes whenever any of the files' contents change: tells a real rotation from a touch. */
  readonly version: string;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export function splitPemCertificates(pem: string, file: string): X509Certificate[] {
  const blocks = pem.match(PEM_CERT) ?? [];
  if (blocks.length === 0) throw new ConfigError('contains no PEM certificate', { file });
  // Text around the blocks is allowed (`openssl x509 -text` writes some), but not a piece of a
  // block: that is a file caught half-written, and reading only its whole blocks would load a
  // bundle that silently lacks a CA.
  if (pem.replace(PEM_CERT, '').includes('-----')) throw new ConfigError('ends in an incomplete PEM block (a file still being written?)', { file });
  return blocks.map((b, i) => {
    try { return new X509Certificate(b); } catch { throw new ConfigError(`certificate #${i + 1} does not parse`, { file }); }
  });
}

export async function loadTlsMaterial(files: { cert: string; key: string; ca: readonly string[]; federations?: readonly Federation[] }, now = new Date()): Promise<TlsMaterial> {
  const read = async (file: string): Promise<string> => {
    try { return await readFile(file, 'utf8'); } catch (e) {
      throw new ConfigError(`cannot read: ${(e as NodeJS.ErrnoException).code ?? 'error'}`, { file });
    }
  };
  const federations = files.federations ?? [];
  const [certPem, keyPem, ...bundlePems] = await Promise.all([read(files.cert), read(files.key), ...files.ca.map(read), ...federations.map((f) => read(f.bundle))]);
  const caPems = bundlePems.slice(0, files.ca.length);
  const federatedPems = bundlePems.slice(files.ca.length);
  const chain = splitPemCertificates(certPem!, files.cert);
  const leaf = chain[0]!;
  let key;
  try { key = createPrivateKey(keyPem!); } catch {
    // The parser's message can quote key bytes; say only what the operator needs.
    throw new ConfigError('private key does not parse (PEM PKCS#8, PKCS#1 or SEC1 expected)', { file: files.key });
  }
  if (!leaf.checkPrivateKey(key)) throw new ConfigError('private key does not match the certificate', { file: files.key });
  const notBefore = new Date(leaf.validFrom); const notAfter = new Date(leaf.validTo);
  if (now < notBefore) throw new ConfigError(`certificate is not valid before ${notBefore.toISOString()}`, { file: files.cert });
  if (now > notAfter) throw new ConfigError(`certificate expired at ${notAfter.toISOString()}`, { file: files.cert });

  const cas = bundleCas(files.ca.flatMap((f, i) => splitPemCertificates(caPems[i]!, f)), files.ca.join(','));
  const federated = new Map(federations.map((f, i) => [f.trustDomain, bundleCas(splitPemCertificates(federatedPems[i]!, f.bundle), f.bundle)] as const));
  const self = checkPeer(leaf, new Set());
  if (!self.ok) throw new ConfigError(`workload certificate is not a usable identity: ${self.reason}`, { file: files.cert });
  const trustDomain = self.identity.trustDomain;
  const bundles: Bundles = { own: cas, federated };
  const problem = federationProblem(bundles, trustDomain);
  if (problem) throw new ConfigError(problem, { field: 'federate' });

  const version = createHash('sha256').update(certPem!).update('\0').update(keyPem!).update('\0').update(bundlePems.join('\0')).digest('hex');
  const caPem = caPems.join('\n');
  return Object.freeze({
    certPem: certPem!, keyPem: keyPem!, caPem, peerCaPem: [caPem, ...federatedPems].join('\n'), leaf, intermediates: chain.slice(1), cas, bundles,
    identity: self.identity, trustDomain, notAfter, version,
  });
}

function bundleCas(cas: X509Certificate[], file: string): X509Certificate[] {
  for (const [i, ca] of cas.entries()) {
    if (!ca.ca) throw new ConfigError(`trust bundle certificate #${i + 1} (${ca.subject.replaceAll('\n', ',')}) is not a CA`, { file });
  }
  return cas;
}

/** Does the leaf chain (directly or through the intermediates in its file) to one of the CAs? */
export function chainsToBundle(m: TlsMaterial): boolean { return chainsTo(m.leaf, m.intermediates, m.cas); }

/** Whether `leaf`, through `intermediates`, was issued by one of `cas` (signatures checked, not dates). */
export function chainsTo(leaf: X509Certificate, intermediates: readonly X509Certificate[], cas: readonly X509Certificate[]): boolean {
  const issuers = [...intermediates, ...cas];
  let cur = leaf;
  for (let depth = 0; depth < 8; depth++) {
    // Only a CA issues: a workload's own leaf, whose key its pod holds, must not vouch for another.
    const parent = issuers.find((c) => c.ca && cur.checkIssued(c) && cur.verify(c.publicKey));
    if (!parent) return false;
    if (cas.includes(parent)) return true;
    cur = parent;
  }
  return false;
}
