// The signing CA as the CLI and dev mode use it: a certificate and key pair on disk, checked
// before anything is signed with it, and the limits it puts on what it signs.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../errors.ts';
import { parseSubjectAltName } from '../identity/san.ts';
import { parseSpiffeId } from '../identity/spiffe.ts';

export const CA_CERT_FILE = 'ca.crt';
export const CA_KEY_FILE = 'ca.key';
const DAY_MS = 86_400_000;

export interface LoadedCa {
  certPem: string;
  /** Only handed to the signer; never printed. */
  keyPem: string;
  cert: X509Certificate;
  /** From the CA's `spiffe://<trust-domain>` URI SAN, when it has one. */
  trustDomain: string | null;
  notAfter: Date;
}

export function caPaths(dir: string): { cert: string; key: string } {
  return { cert: join(dir, CA_CERT_FILE), key: join(dir, CA_KEY_FILE) };
}

export async function readText(file: string): Promise<string> {
  try { return await readFile(file, 'utf8'); } catch (e) {
    throw new ConfigError(`cannot read (${(e as NodeJS.ErrnoException).code ?? 'error'})`, { file });
  }
}

/** Load `ca.crt` + `ca.key` from `dir` and check they are a usable, currently valid CA pair. */
export async function loadCa(dir: string, now = new Date()): Promise<LoadedCa> {
  const files = caPaths(dir);
  // Both are read at once, but a failure is reported for the certificate first: Promise.all would
  // reject with whichever read failed first, and with both missing the message would vary.
  const [certRead, keyRead] = await Promise.allSettled([readText(files.cert), readText(files.key)]);
  if (certRead.status === 'rejected') throw certRead.reason;
  if (keyRead.status === 'rejected') throw keyRead.reason;
  const certPem = certRead.value; const keyPem = keyRead.value;
  let cert: X509Certificate;
  try { cert = new X509Certificate(certPem); } catch {
    throw new ConfigError('does not hold a PEM certificate', { file: files.cert });
  }
  if (!cert.ca) throw new ConfigError('is not a CA certificate (BasicConstraints CA:TRUE missing)', { file: files.cert });
  let key;
  try { key = createPrivateKey(keyPem); } catch {
    // The parser's message can quote key bytes; say only what the operator needs.
    throw new ConfigError('private key does not parse (unencrypted PEM expected)', { file: files.key });
  }
  if (!cert.checkPrivateKey(key)) throw new ConfigError(`private key does not belong to ${files.cert}`, { file: files.key });
  const notAfter = new Date(cert.validTo);
  if (now > notAfter) throw new ConfigError(`CA certificate expired at ${notAfter.toISOString()}`, { file: files.cert });
  if (now < new Date(cert.validFrom)) throw new ConfigError(`CA certificate is not valid before ${new Date(cert.validFrom).toISOString()}`, { file: files.cert });
  const td = parseSubjectAltName(cert.subjectAltName).uris.map(parseSpiffeId).find((id) => id !== null);
  return { certPem, keyPem, cert, trustDomain: td?.trustDomain ?? null, notAfter };
}

/** End of validity for a leaf of `days` days; refuses one that would outlive its CA (it would fail verification early). */
export function leafNotAfter(ca: LoadedCa, days: number, now = new Date()): Date {
  const notAfter = new Date(now.getTime() + days * DAY_MS);
  if (notAfter > ca.notAfter) {
    const max = Math.floor((ca.notAfter.getTime() - now.getTime()) / DAY_MS);
    throw new Error(`a ${days}-day certificate would outlive the CA (valid until ${ca.notAfter.toISOString()}); use --days ${max} or less`);
  }
  return notAfter;
}

/** A SPIFFE ID the CA may vouch for: valid syntax and, when the CA names a trust domain, that one. */
export function checkSpiffeIdForCa(ca: LoadedCa, spiffeId: string): void {
  const id = parseSpiffeId(spiffeId);
  if (!id) throw new Error(`'${spiffeId}' is not a valid SPIFFE ID (spiffe://trust-domain/path)`);
  if (ca.trustDomain && id.trustDomain !== ca.trustDomain) {
    throw new Error(`SPIFFE ID trust domain '${id.trustDomain}' does not match the CA's trust domain '${ca.trustDomain}'`);
  }
}
