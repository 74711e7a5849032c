// A readable summary of a certificate: who it names (the identity authproxy would derive from it,
// by the sidecar's own checkPeer, or why the sidecar would refuse it), what it may be used for,
// who issued it and how long it has left.
import { X509Certificate as NodeX509 } from 'node:crypto';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { checkPeer, type RefusalKind } from '../identity/peer.ts';

const DAY_MS = 86_400_000;

export interface CertificateSummary {
  /** SPIFFE ID, else first DNS SAN, else subject CN: the principal authproxy would see; empty when refused. */
  identity: string;
  identitySource: 'spiffe' | 'dns' | 'cn' | 'none';
  /**
   * Why a sidecar would refuse this certificate from a peer, else null. The trust domains a
   * sidecar accepts are its configuration, so any is taken as accepted here.
   */
  refusal: { kind: RefusalKind; reason: string } | null;
  subject: string;
  issuer: string;
  /** Uppercase hex, as `openssl x509 -serial` prints it. */
  serial: string;
  notBefore: string;
  notAfter: string;
  /** Whole days until notAfter; negative once expired. */
  daysLeft: number;
  status: 'valid' | 'expired' | 'not-yet-valid';
  isCA: boolean;
  pathLength: number | null;
  selfSigned: boolean;
  sans: { uris: string[]; dns: string[]; ips: string[]; emails: string[]; other: string[] };
  keyUsage: string[];
  extendedKeyUsage: string[];
  publicKey: string;
  signatureAlgorithm: string;
  sha256Fingerprint: string;
}

const KEY_USAGE_NAMES: readonly [number, string][] = [
  [x509.KeyUsageFlags.digitalSignature, 'digitalSignature'],
  [x509.KeyUsageFlags.nonRepudiation, 'nonRepudiation'],
  [x509.KeyUsageFlags.keyEncipherment, 'keyEncipherment'],
  [x509.KeyUsageFlags.dataEncipherment, 'dataEncipherment'],
  [x509.KeyUsageFlags.keyAgreement, 'keyAgreement'],
  [x509.KeyUsageFlags.keyCertSign, 'keyCertSign'],
  [x509.KeyUsageFlags.cRLSign, 'cRLSign'],
  [x509.KeyUsageFlags.encipherOnly, 'encipherOnly'],
  [x509.KeyUsageFlags.decipherOnly, 'decipherOnly'],
];

const EKU_NAMES: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(x509.ExtendedKeyUsage).map(([name, oid]) => [oid, name]),
);

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Every certificate in a PEM file (in order), or the one certificate of a DER file. */
export function readCertificates(data: Uint8Array): NodeX509[] {
  const text = Buffer.from(data).toString('latin1');
  const blocks = text.match(PEM_CERT);
  if (blocks) return blocks.map((b, i) => parseOne(b, `certificate #${i + 1} does not parse`));
  if (text.includes('-----BEGIN')) {
    const label = /-----BEGIN ([A-Z0-9 ]+)-----/.exec(text)?.[1] ?? 'unknown';
    throw new Error(`holds a PEM '${label}' block, not a certificate`);
  }
  return [parseOne(Buffer.from(data), 'is neither a PEM nor a DER certificate')];
}

function parseOne(input: string | Buffer, message: string): NodeX509 {
  try { return new NodeX509(input); } catch { throw new Error(message); }
}

function describeKey(cert: NodeX509): string {
  const k = cert.publicKey;
  const d = k.asymmetricKeyDetails ?? {};
  if (k.asymmetricKeyType === 'ec') {
    const curve = ({ prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' } as Record<string, string>)[d.namedCurve ?? ''] ?? d.namedCurve;
    return `EC ${curve ?? '?'}`;
  }
  if (k.asymmetricKeyType === 'rsa' || k.asymmetricKeyType === 'rsa-pss') return `RSA ${d.modulusLength ?? '?'}`;
  return (k.asymmetricKeyType ?? 'unknown').toUpperCase();
}

export function summarize(cert: NodeX509, now = new Date()): CertificateSummary {
  const pc = new x509.X509Certificate(cert.raw);
  const sans: CertificateSummary['sans'] = { uris: [], dns: [], ips: [], emails: [], other: [] };
  for (const n of pc.getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON() ?? []) {
    if (n.type === 'url') sans.uris.push(n.value);
    else if (n.type === 'dns') sans.dns.push(n.value);
    else if (n.type === 'ip') sans.ips.push(n.value);
    else if (n.type === 'email') sans.emails.push(n.value);
    else sans.other.push(`${n.type}:${n.value}`);
  }
  const ku = pc.getExtension(x509.KeyUsagesExtension);
  const eku = pc.getExtension(x509.ExtendedKeyUsageExtension);
  const bc = pc.getExtension(x509.BasicConstraintsExtension);
  const peer = checkPeer(cert, new Set());
  const notBefore = pc.notBefore; const notAfter = pc.notAfter;
  const status = now > notAfter ? 'expired' : now < notBefore ? 'not-yet-valid' : 'valid';
  return {
    identity: peer.ok ? peer.identity.principal : '',
    identitySource: peer.ok ? peer.identity.source : 'none',
    refusal: peer.ok ? null : { kind: peer.kind, reason: peer.reason },
    subject: pc.subject,
    issuer: pc.issuer,
    serial: cert.serialNumber.toUpperCase(),
    notBefore: notBefore.toISOString(),
    notAfter: notAfter.toISOString(),
    daysLeft: Math.floor((notAfter.getTime() - now.getTime()) / DAY_MS),
    status,
    isCA: Boolean(bc?.ca),
    pathLength: bc?.ca && bc.pathLength !== undefined ? bc.pathLength : null,
    selfSigned: cert.checkIssued(cert) && cert.verify(cert.publicKey),
    sans,
    keyUsage: ku ? KEY_USAGE_NAMES.filter(([bit]) => (ku.usages & bit) !== 0).map(([, name]) => name) : [],
    extendedKeyUsage: (eku?.usages ?? []).map((u) => EKU_NAMES[String(u)] ?? String(u)),
    publicKey: describeKey(cert),
    signatureAlgorithm: signatureName(pc),
    sha256Fingerprint: cert.fingerprint256,
  };
}

function signatureName(pc: x509.X509Certificate): string {
  // peculiar exposes the signature algorithm as a WebCrypto algorithm; name it the way openssl does.
  const alg = pc.signatureAlgorithm as { name: string; hash?: { name?: string } };
  const hash = alg.hash?.name?.replace('-', '') ?? '';
  if (alg.name === 'ECDSA') return `ecdsa-with-${hash}`;
  if (alg.name === 'RSASSA-PKCS1-v1_5') return `${hash.toLowerCase()}WithRSAEncryption`;
  return alg.name;
}

/** Aligned `label: value` lines for a terminal. */
export function formatSummary(s: CertificateSummary): string {
  const list = (xs: string[]): string => xs.length ? xs.join(', ') : '(none)';
  const sanList = [
    ...s.sans.uris.map((v) => `URI:${v}`), ...s.sans.dns.map((v) => `DNS:${v}`),
    ...s.sans.ips.map((v) => `IP:${v}`), ...s.sans.emails.map((v) => `email:${v}`), ...s.sans.other,
  ];
  const left = s.status === 'expired' ? `expired ${-s.daysLeft} days ago`
    : s.status === 'not-yet-valid' ? 'not yet valid' : `${s.daysLeft} days left`;
  const rows: [string, string][] = [
    ['identity', s.refusal ? `(none: authproxy refuses this certificate from a peer: ${s.refusal.reason})`
      : `${s.identity} (${s.identitySource === 'spiffe' ? 'SPIFFE ID' : s.identitySource === 'dns' ? 'DNS SAN' : 'subject CN'})`],
    ['subject', s.subject || '(empty)'],
    ['issuer', s.selfSigned ? `${s.issuer} (self-signed)` : s.issuer],
    ['serial', s.serial],
    ['not before', s.notBefore],
    ['not after', `${s.notAfter} (${left})`],
    ['CA', s.isCA ? `yes${s.pathLength !== null ? ` (path length ${s.pathLength})` : ''}` : 'no'],
    ['SANs', list(sanList)],
    ['key usage', list(s.keyUsage)],
    ['extended key usage', list(s.extendedKeyUsage)],
    ['public key', s.publicKey],
    ['signature', s.signatureAlgorithm],
    ['sha256 fingerprint', s.sha256Fingerprint],
  ];
  const width = Math.max(...rows.map(([k]) => k.length)) + 1;
  return rows.map(([k, v]) => `${(k + ':').padEnd(width)} ${v}`).join('\n') + '\n';
}
