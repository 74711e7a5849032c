// Certificate authority and leaf issuance on WebCrypto keys (@peculiar/x509).
// Used by `authproxy certs`, by dev mode, and by tests that need real certificates.
import { webcrypto, createPrivateKey, createPublicKey, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';

// tsconfig has no DOM lib: WebCrypto types come from node:crypto's webcrypto namespace.
type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
type EcKeyGenParams = webcrypto.EcKeyGenParams;
type RsaHashedKeyGenParams = webcrypto.RsaHashedKeyGenParams;
// @peculiar/x509 2.x resolves its ASN.1 services through tsyringe, which needs the Reflect metadata polyfill loaded first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

const SAN_OID = '2.5.29.17';
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export type KeyType = 'ec-p256' | 'ec-p384' | 'rsa-2048' | 'rsa-3072' | 'rsa-4096';
export const KEY_TYPES: readonly KeyType[] = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096'];

export interface PemPair { certPem: string; keyPem: string }

type SignAlg = EcKeyGenParams & { hash: string } | RsaHashedKeyGenParams;

function algorithmFor(keyType: KeyType): SignAlg {
  switch (keyType) {
    case 'ec-p256': return { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
    case 'ec-p384': return { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' };
    case 'rsa-2048': case 'rsa-3072': case 'rsa-4096':
      return { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]),
        modulusLength: Number(keyType.slice(4)) };
  }
}

/** The signing algorithm matching an existing private key (so a CA key of any supported type can sign). */
function algorithmForKey(key: KeyObject): SignAlg {
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'ec') {
    if (d.namedCurve === 'prime256v1' || d.namedCurve === 'P-256') return algorithmFor('ec-p256');
    if (d.namedCurve === 'secp384r1' || d.namedCurve === 'P-384') return algorithmFor('ec-p384');
    throw new Error(`unsupported EC curve ${d.namedCurve ?? '?'}`);
  }
  if (key.asymmetricKeyType === 'rsa') {
    return { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]),
      modulusLength: d.modulusLength ?? 2048 };
  }
  throw new Error(`unsupported key type ${key.asymmetricKeyType ?? '?'}`);
}

export async function generateKeyPair(keyType: KeyType = 'ec-p256'): Promise<CryptoKeyPair> {
  return await webcrypto.subtle.generateKey(algorithmFor(keyType), true, ['sign', 'verify']) as CryptoKeyPair;
}

export async function privateKeyToPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return toPem(der, 'PRIVATE KEY');
}

export function toPem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der).toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}-----END ${label}-----\n`;
}

/** Import a PEM private key as a WebCrypto signing key, keeping its algorithm. */
export async function importSigningKey(keyPem: string): Promise<{ key: CryptoKey; alg: SignAlg }> {
  const ko = createPrivateKey(keyPem);
  const alg = algorithmForKey(ko);
  return { key: ko.toCryptoKey(alg, true, ['sign']) as CryptoKey, alg };
}

async function publicFromPrivatePem(keyPem: string, alg: SignAlg): Promise<CryptoKey> {
  return await Promise.resolve(createPublicKey(keyPem).toCryptoKey(alg, true, ['verify']) as CryptoKey);
}

function serial(): string {
  const b = randomBytes(16);
  b[0] = (b[0] ?? 0) & 0x7f; // positive INTEGER
  if (b[0] === 0) b[0] = 1;
  return b.toString('hex');
}

const DAY_MS = 86_400_000;

export interface CaOptions { commonName?: string; trustDomain?: string; keyType?: KeyType; days?: number }

/** A self-signed root CA. With a trust domain it carries the SPIFFE trust-domain URI SAN, as SPIRE's roots do. */
export async function createCA(opts: CaOptions = {}): Promise<PemPair> {
  const alg = algorithmFor(opts.keyType ?? 'ec-p256');
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']) as CryptoKeyPair;
  const now = Date.now();
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(true, 1, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
  ];
  if (opts.trustDomain) extensions.push(new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${opts.trustDomain}` }]));
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${escapeDn(opts.commonName ?? 'authproxy dev CA')}`,
    notBefore: new Date(now - 5 * 60_000),
    notAfter: new Date(now + (opts.days ?? 365) * DAY_MS),
    signingAlgorithm: alg,
    keys,
    extensions,
  });
  return { certPem: cert.toString('pem') + '\n', keyPem: await privateKeyToPem(keys.privateKey) };
}

export interface LeafOptions {
  /** SPIFFE ID (`spiffe://trust-domain/path`), added as a URI SAN. */
  spiffeId?: string;
  /** Extra URI SANs (tests use this to build invalid SVIDs with two URIs). */
  uris?: string[];
  dnsNames?: string[];
  ipAddresses?: string[];
  commonName?: string;
  keyType?: KeyType;
  days?: number;
  notBefore?: Date;
  notAfter?: Date;
  /** Marks the certificate as a CA (BasicConstraints CA:true); never valid as a workload SVID. */
  isCA?: boolean;
  /** Use this public key instead of generating a key pair (signing a CSR). */
  publicKey?: CryptoKey;
}

export interface Issuer { certPem: string; keyPem: string }

/** Issue a certificate signed by `ca`. Returns the key too unless a public key was supplied. */
export async function issueCertificate(ca: Issuer, opts: LeafOptions): Promise<PemPair> {
  const { key: caKey, alg: caAlg } = await importSigningKey(ca.keyPem);
  const caCert = new x509.X509Certificate(ca.certPem);
  let publicKey = opts.publicKey;
  let keyPem = '';
  if (!publicKey) {
    const keys = await generateKeyPair(opts.keyType ?? 'ec-p256');
    publicKey = keys.publicKey;
    keyPem = await privateKeyToPem(keys.privateKey);
  }
  const sans: x509.JsonGeneralName[] = [];
  if (opts.spiffeId) sans.push({ type: 'url', value: opts.spiffeId });
  for (const u of opts.uris ?? []) sans.push({ type: 'url', value: u });
  for (const d of opts.dnsNames ?? []) sans.push({ type: 'dns', value: d });
  for (const ip of opts.ipAddresses ?? []) sans.push({ type: 'ip', value: ip });
  const now = Date.now();
  const notBefore = opts.notBefore ?? new Date(now - 5 * 60_000);
  const notAfter = opts.notAfter ?? new Date(now + (opts.days ?? 30) * DAY_MS);
  const cn = opts.commonName ?? defaultCommonName(opts);
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(Boolean(opts.isCA), undefined, true),
    new x509.KeyUsagesExtension(opts.isCA
      ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature
      : leafKeyUsage(publicKey), true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
    await x509.SubjectKeyIdentifierExtension.create(publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(caCert),
  ];
  if (sans.length) extensions.push(new x509.SubjectAlternativeNameExtension(sans));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: cn ? `CN=${escapeDn(cn)}` : '',
    issuer: caCert.subject,
    notBefore, notAfter,
    signingAlgorithm: caAlg,
    publicKey,
    signingKey: caKey,
    extensions,
  });
  return { certPem: cert.toString('pem') + '\n', keyPem };
}

/**
 * keyEncipherment only means something for RSA (TLS 1.2 RSA key exchange); RFC 5480 forbids
 * it on EC keys and strict verifiers reject such certificates.
 */
function leafKeyUsage(publicKey: CryptoKey): number {
  const rsa = publicKey.algorithm.name.startsWith('RSA');
  return x509.KeyUsageFlags.digitalSignature | (rsa ? x509.KeyUsageFlags.keyEncipherment : 0);
}

function defaultCommonName(o: { dnsNames?: string[]; spiffeId?: string }): string {
  if (o.dnsNames?.[0]) return o.dnsNames[0];
  if (o.spiffeId) return o.spiffeId.split('/').filter(Boolean).at(-1) ?? 'workload';
  return 'workload';
}

function escapeDn(v: string): string { return v.replace(/([,+"\\<>;=])/g, '\\$1'); }

export interface CsrOptions { spiffeId?: string; dnsNames?: string[]; ipAddresses?: string[]; commonName?: string; keyType?: KeyType }

/** A PKCS#10 request for a fresh key: the key stays with the caller, only the CSR travels. */
export async function createCsr(opts: CsrOptions): Promise<{ csrPem: string; keyPem: string }> {
  const alg = algorithmFor(opts.keyType ?? 'ec-p256');
  const keys = await generateKeyPair(opts.keyType ?? 'ec-p256');
  const sans: x509.JsonGeneralName[] = [];
  if (opts.spiffeId) sans.push({ type: 'url', value: opts.spiffeId });
  for (const d of opts.dnsNames ?? []) sans.push({ type: 'dns', value: d });
  for (const ip of opts.ipAddresses ?? []) sans.push({ type: 'ip', value: ip });
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${escapeDn(opts.commonName ?? defaultCommonName(opts))}`,
    keys,
    signingAlgorithm: alg,
    extensions: sans.length ? [new x509.SubjectAlternativeNameExtension(sans)] : [],
  });
  return { csrPem: csr.toString('pem') + '\n', keyPem: await privateKeyToPem(keys.privateKey) };
}

/** What a CSR asks for, after its self-signature has been checked. */
export interface CsrRequest {
  commonName: string | undefined;
  uris: string[];
  dnsNames: string[];
  ipAddresses: string[];
  /** Names this tool does not copy into certificates (email, otherName…), as `type:value`. */
  otherNames: string[];
  publicKey: CryptoKey;
}

/** Parse and verify a PEM or DER CSR. Throws if it does not parse or its signature does not verify. */
export async function parseCsr(csrData: string | Uint8Array): Promise<CsrRequest> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(typeof csrData === 'string' ? csrData : Uint8Array.from(csrData));
  } catch {
    throw new Error('not a PKCS#10 certificate request (PEM or DER expected)');
  }
  if (!await csr.verify()) throw new Error('CSR signature does not verify');
  // getExtension() does not decode extensions carried in the CSR's extensionRequest attribute; decode by OID.
  const rawSan = csr.extensions.find((e) => e.type === SAN_OID);
  const sanExt = rawSan ? new x509.SubjectAlternativeNameExtension(rawSan.rawData) : undefined;
  const out: CsrRequest = { commonName: csr.subjectName.getField('CN')[0], uris: [], dnsNames: [], ipAddresses: [], otherNames: [],
    publicKey: await csr.publicKey.export() };
  for (const n of sanExt?.names.toJSON() ?? []) {
    if (n.type === 'url') out.uris.push(n.value);
    else if (n.type === 'dns') out.dnsNames.push(n.value);
    else if (n.type === 'ip') out.ipAddresses.push(n.value);
    else out.otherNames.push(`${n.type}:${n.value}`);
  }
  return out;
}

/** Sign a CSR with the CA after checking its self-signature; SANs and CN are taken from the request. */
export async function signCsr(ca: Issuer, csrPem: string | Uint8Array, opts: { days?: number; notAfter?: Date } = {}): Promise<string> {
  const req = await parseCsr(csrPem);
  const { certPem } = await issueCertificate(ca, {
    uris: req.uris, dnsNames: req.dnsNames, ipAddresses: req.ipAddresses, publicKey: req.publicKey,
    ...(req.commonName ? { commonName: req.commonName } : {}),
    ...(opts.days !== undefined ? { days: opts.days } : {}),
    ...(opts.notAfter ? { notAfter: opts.notAfter } : {}),
  });
  return certPem;
}

export { publicFromPrivatePem, X509Certificate };
