// Loading the workload's certificate, key and trust bundle from files, with the checks that make
// a reload safe: a pair that does not parse, whose key does not match, or that is not currently
// valid is refused, and the caller keeps serving the previous one.
import { readFile } from 'node:fs/promises';
import { X509Certificate, createPrivateKey, createHash } from 'node:crypto';
import { ConfigError } from '../errors.ts';
import { checkPeer, type PeerIdentity } from './peer.ts';
import { parseSpiffeId } from './spiffe.ts';

export interface TlsMaterial {
  readonly certPem: string;
  /** Held only to hand to the TLS stack; never logged, never shown by the admin API. */
  readonly keyPem: string;
  readonly caPem: string;
  readonly leaf: X509Certificate;
  /** The certificates after the leaf in the certificate file: its chain up to the bundle. */
  readonly intermediates: readonly X509Certificate[];
  readonly cas: readonly X509Certificate[];
  readonly identity: PeerIdentity;
  readonly trustDomain: string | null;
  readonly notAfter: Date;
  /** Changes whenever any of the three files' contents change: tells a real rotation from a touch. */
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

export async function loadTlsMaterial(files: { cert: string; key: string; ca: readonly string[] }, now = new Date()): Promise<TlsMaterial> {
  const read = async (file: string): Promise<string> => {
    try { return await readFile(file, 'utf8'); } catch (e) {
      throw new ConfigError(`cannot read: ${(e as NodeJS.ErrnoException).code ?? 'error'}`, { file });
    }
  };
  const [certPem, keyPem, ...caPems] = await Promise.all([read(files.cert), read(files.key), ...files.ca.map(read)]);
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

  const cas = files.ca.flatMap((f, i) => splitPemCertificates(caPems[i]!, f));
  for (const [i, ca] of cas.entries()) {
    if (!ca.ca) throw new ConfigError(`trust bundle certificate #${i + 1} (${ca.subject.replaceAll('\n', ',')}) is not a CA`, { file: files.ca.join(',') });
  }
  const self = checkPeer(leaf, new Set());
  if (!self.ok) throw new ConfigError(`workload certificate is not a usable identity: ${self.reason}`, { file: files.cert });
  const trustDomain = self.identity.spiffeId ? parseSpiffeId(self.identity.spiffeId)!.trustDomain : null;

  const version = createHash('sha256').update(certPem!).update('\0').update(keyPem!).update('\0').update(caPems.join('\0')).digest('hex');
  return Object.freeze({
    certPem: certPem!, keyPem: keyPem!, caPem: caPems.join('\n'), leaf, intermediates: chain.slice(1), cas, identity: self.identity, trustDomain, notAfter, version,
  });
}

/** Does the leaf chain (directly or through the intermediates in its file) to one of the CAs? */
export function chainsToBundle(m: TlsMaterial): boolean {
  const issuers = [...m.intermediates, ...m.cas];
  let cur = m.leaf;
  for (let depth = 0; depth < 8; depth++) {
    const parent = issuers.find((c) => cur.checkIssued(c) && cur.verify(c.publicKey));
    if (!parent) return false;
    if (m.cas.includes(parent)) return true;
    cur = parent;
  }
  return false;
}
