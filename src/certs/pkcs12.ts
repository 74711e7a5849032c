// PKCS#12 (RFC 7292) bundles with the algorithms OpenSSL 3 writes by default and reads without
// -legacy: PBES2 (PBKDF2 with HMAC-SHA-256, AES-256-CBC) for the key and the certificates, and an
// HMAC-SHA-256 integrity MAC. node-forge's own toPkcs12Asn1 only takes RSA keys and forge
// certificate objects (which cannot hold EC keys) and MACs with SHA-1, so the structure is built
// here from forge's ASN.1 and PKCS#12 key-derivation primitives; any PKCS#8 key fits.
import { createCipheriv, createHash, createHmac, createPrivateKey, pbkdf2Sync, randomBytes } from 'node:crypto';
import forge from 'node-forge';

const { asn1 } = forge;
const C = asn1.Class.UNIVERSAL;
const T = asn1.Type;

const OID = {
  data: '1.2.840.113549.1.7.1',
  encryptedData: '1.2.840.113549.1.7.6',
  keyBag: '1.2.840.113549.1.12.10.1.2', // pkcs8ShroudedKeyBag
  certBag: '1.2.840.113549.1.12.10.1.3',
  x509Certificate: '1.2.840.113549.1.9.22.1',
  friendlyName: '1.2.840.113549.1.9.20',
  localKeyId: '1.2.840.113549.1.9.21',
  pbes2: '1.2.840.113549.1.5.13',
  pbkdf2: '1.2.840.113549.1.5.12',
  hmacWithSHA256: '1.2.840.113549.2.9',
  aes256Cbc: '2.16.840.1.101.3.4.1.42',
  sha256: '2.16.840.1.101.3.4.2.1',
} as const;

/** PBKDF2 and MAC iterations. Higher than OpenSSL's 2048 default: the bundle leaves the machine. */
export const PKCS12_ITERATIONS = 100_000;

export interface Pkcs12Input {
  /** PEM private key (PKCS#8, PKCS#1 or SEC1). */
  keyPem: string;
  /** DER leaf certificate, then any chain certificates in order. */
  certificates: readonly Uint8Array[];
  password: string;
  friendlyName?: string;
  iterations?: number;
}

type Asn1 = forge.asn1.Asn1;
const bin = (b: Uint8Array): string => Buffer.from(b).toString('binary');
const seq = (items: Asn1[]): Asn1 => asn1.create(C, T.SEQUENCE, true, items);
const set = (items: Asn1[]): Asn1 => asn1.create(C, T.SET, true, items);
const oid = (o: string): Asn1 => asn1.create(C, T.OID, false, asn1.oidToDer(o).getBytes());
const octets = (b: Uint8Array): Asn1 => asn1.create(C, T.OCTETSTRING, false, bin(b));
const int = (n: number): Asn1 => asn1.create(C, T.INTEGER, false, asn1.integerToDer(n).getBytes());
const explicit0 = (inner: Asn1): Asn1 => asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [inner]);
const der = (node: Asn1): Buffer => Buffer.from(asn1.toDer(node).getBytes(), 'binary');

/** PBES2 encryption (RFC 8018): returns the AlgorithmIdentifier and the ciphertext. */
function pbes2Encrypt(plain: Uint8Array, password: string, iterations: number): { alg: Asn1; encrypted: Buffer } {
  const salt = randomBytes(16);
  const iv = randomBytes(16);
  // PBES2 takes the password as its UTF-8 octets (OpenSSL does the same).
  const key = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, 32, 'sha256');
  const cipher = createCipheriv('aes-256-cbc', key, iv);
  const encrypted = Buffer.concat([cipher.update(plain), cipher.final()]);
  const alg = seq([oid(OID.pbes2), seq([
    seq([oid(OID.pbkdf2), seq([octets(salt), int(iterations), seq([oid(OID.hmacWithSHA256), asn1.create(C, T.NULL, false, '')])])]),
    seq([oid(OID.aes256Cbc), octets(iv)]),
  ])]);
  return { alg, encrypted };
}

function bagAttributes(localKeyId: Buffer, friendlyName: string | undefined): Asn1 {
  const attrs = [seq([oid(OID.localKeyId), set([octets(localKeyId)])])];
  if (friendlyName !== undefined) {
    // forge encodes a BMPSTRING from the JS string's UTF-16 code units itself.
    attrs.push(seq([oid(OID.friendlyName), set([asn1.create(C, T.BMPSTRING, false, friendlyName)])]));
  }
  return set(attrs);
}

/** A password-protected PKCS#12 bundle (DER) holding the key, the leaf and its chain. */
export function buildPkcs12(input: Pkcs12Input): Buffer {
  const iterations = input.iterations ?? PKCS12_ITERATIONS;
  const [leaf] = input.certificates;
  if (!leaf) throw new Error('a PKCS#12 bundle needs at least the leaf certificate');
  const pkcs8 = createPrivateKey(input.keyPem).export({ type: 'pkcs8', format: 'der' });
  // SHA-1 of the leaf ties key and certificate together, as OpenSSL and Windows expect.
  const localKeyId = createHash('sha1').update(leaf).digest();
  const attrs = (): Asn1 => bagAttributes(localKeyId, input.friendlyName);

  const certBags = input.certificates.map((c, i) => {
    const bag = [oid(OID.certBag), explicit0(seq([oid(OID.x509Certificate), explicit0(octets(c))]))];
    if (i === 0) bag.push(attrs());
    return seq(bag);
  });
  const certSafe = pbes2Encrypt(der(seq(certBags)), input.password, iterations);
  const certsInfo = seq([oid(OID.encryptedData), explicit0(seq([
    int(0),
    seq([oid(OID.data), certSafe.alg, asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, false, bin(certSafe.encrypted))]),
  ]))]);

  const keyEnc = pbes2Encrypt(pkcs8, input.password, iterations);
  const keyBag = seq([oid(OID.keyBag), explicit0(seq([keyEnc.alg, octets(keyEnc.encrypted)])), attrs()]);
  const keyInfo = seq([oid(OID.data), explicit0(octets(der(seq([keyBag]))))]);

  const authSafe = der(seq([certsInfo, keyInfo]));
  const macSalt = randomBytes(16);
  // The MAC key comes from the PKCS#12 KDF (RFC 7292 B.2, ID 3), which takes the password as a BMPString.
  const macKey = forge.pkcs12.generateKey(input.password, forge.util.createBuffer(bin(macSalt)), 3, iterations, 32, forge.md.sha256.create());
  const mac = createHmac('sha256', Buffer.from(macKey.getBytes(), 'binary')).update(authSafe).digest();

  return der(seq([
    int(3),
    seq([oid(OID.data), explicit0(octets(authSafe))]),
    seq([seq([seq([oid(OID.sha256), asn1.create(C, T.NULL, false, '')]), octets(mac)]), octets(macSalt), int(iterations)]),
  ]));
}
