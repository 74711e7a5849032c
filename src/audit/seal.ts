// Seals: what makes the audit log tamper-evident. `policy replay` shows that each record agrees
// with the policy set; it cannot show that a record was not deleted, or rewritten to agree. So
// every second (--audit-seal-interval) the writer adds a seal line that covers the lines written
// since the previous seal: their count and the SHA-256 of their exact bytes, the SHA-256 of the
// previous seal line (so seals form a chain, across rotated files too), and a signature by the
// workload's own key. A reviewer checks it with `authproxy audit verify --ca BUNDLE FILE…`
// (verify.ts): anyone who can edit the log, but does not hold the workload's key, can neither
// change, drop, insert or reorder a sealed line nor forge the seal that would hide it.
//
// Why the workload key: it is what the pod already has and the reviewer can already check (the
// certificate chains to the mesh's bundle and names the SPIFFE ID), so no second key needs
// issuing, rotating or distributing. A fixed context string goes in front of the signed bytes so
// that a seal signature can never be mistaken for a signature of anything else the key signs (a
// TLS handshake signs its own context, RFC 8446 §4.4.3). AWS CloudTrail's digest files do the
// same job: hashes of what was delivered, chained, signed; its verifier says which files were
// changed or deleted.
//
// The seal is written in the line's order, after what it covers; the bytes are hashed a block at
// a time once the sink has written the block, not per record, so the request path pays nothing,
// and a failed write (ENOSPC) leaves out of the digest exactly what never reached the file.
import { createHash, createPrivateKey, randomBytes, sign, verify, type Hash, type KeyObject, type X509Certificate } from 'node:crypto';
import { isoTime } from './time.ts';

/** Every seal line starts with this (records start with `{"time"`), so a reader tells them apart without parsing. */
export const SEAL_START = '{"event":"seal",';
const SIG_FIELD = ',"sig":"';
const CONTEXT = Buffer.from('authproxy audit seal v1\n');

/** Why a seal ends its file's part of the chain: a rotation (SIGHUP) or the sidecar stopping. */
export type SealEnd = 'rotate' | 'close';

/** A seal line's fields, in the order written. */
export interface Seal {
  event: 'seal';
  /** Random per process: the seals of one run of the sidecar. */
  chain: string;
  /** 0 for the chain's first seal (a run's first), then +1 each. */
  seq: number;
  time: string;
  /** Lines covered: every line since the previous seal line (or the file's start). */
  lines: number;
  /** SHA-256 (base64url) of the covered lines' bytes, newlines included. */
  digest: string;
  /**
   * SHA-256 (base64url) of the previous seal line, newline included. For a chain's first seal,
   * the last seal line of the file the run appended to (another run's), or null when it had none.
   */
  prev: string | null;
  /** Records the writer dropped since the previous seal, never written (its backlog was full). */
  dropped: number;
  /** Records the sink failed to write (write errors) reported since the previous seal. */
  lost: number;
  end?: SealEnd;
  /** The signer's SPIFFE ID (or other principal), as its certificate names it. */
  principal: string;
  /** SHA-256 (base64url) of the signing certificate's DER. */
  signer: string;
  /** The signing certificate and its intermediates (base64 DER), in the first seal of a file and after a rotation of the certificate. */
  certs?: string[];
}

/** What signs: the workload's current key and certificate chain (they rotate; the writer asks each time). */
export interface SealKey {
  readonly key: KeyObject;
  readonly chain: readonly X509Certificate[];
  readonly principal: string;
}

/** The key and chain of the sidecar's current TLS material, built once per material version. */
export function sealKeyFrom(current: () => { keyPem: string; leaf: X509Certificate; intermediates: readonly X509Certificate[]; identity: { principal: string }; version: string }): () => SealKey {
  let version: string | null = null;
  let cached: SealKey | null = null;
  return () => {
    const m = current();
    if (m.version !== version || cached === null) {
      cached = { key: createPrivateKey(m.keyPem), chain: [m.leaf, ...m.intermediates], principal: m.identity.principal };
      version = m.version;
    }
    return cached;
  };
}

export const sha256 = (bytes: Buffer | string): string => createHash('sha256').update(bytes).digest('base64url');

// ECDSA signatures in the fixed-width form (r‖s) a JWS uses; RSA keys sign PKCS#1 v1.5, RSA-PSS
// keys PSS; EdDSA keys take no digest name.
function digestFor(key: KeyObject): string | null {
  return key.asymmetricKeyType === 'ed25519' || key.asymmetricKeyType === 'ed448' ? null : 'sha256';
}
const ecdsa = (key: KeyObject): { dsaEncoding: 'ieee-p1363' } | object => (key.asymmetricKeyType === 'ec' ? { dsaEncoding: 'ieee-p1363' } : {});

export function signSeal(body: string, key: KeyObject): string {
  return sign(digestFor(key), Buffer.concat([CONTEXT, Buffer.from(body)]), { key, ...ecdsa(key) }).toString('base64url');
}

export function verifySeal(body: string, sig: string, publicKey: KeyObject): boolean {
  try {
    return verify(digestFor(publicKey), Buffer.concat([CONTEXT, Buffer.from(body)]), { key: publicKey, ...ecdsa(publicKey) }, Buffer.from(sig, 'base64url'));
  } catch { return false; }
}

/** A seal line without its newline: the seal's JSON with the signature as its last field. */
export function sealLine(seal: Seal, key: KeyObject): string {
  const body = JSON.stringify(seal);
  return `${body.slice(0, -1)}${SIG_FIELD}${signSeal(body, key)}"}`;
}

/** Splits a seal line (no newline) into the JSON that was signed and the signature; null when it has no signature last. */
export function splitSealLine(line: string): { body: string; sig: string } | null {
  const at = line.lastIndexOf(SIG_FIELD);
  if (at < 0 || !line.endsWith('"}')) return null;
  const sig = line.slice(at + SIG_FIELD.length, -2);
  if (!/^[A-Za-z0-9_-]+$/.test(sig)) return null;
  return { body: `${line.slice(0, at)}}`, sig };
}

/**
 * The writer's side of the chain: it is told the bytes as they go to the sink and makes the
 * seal lines. One per process (`chain`); a rotation starts a new file, not a new chain.
 */
export class Sealer {
  readonly chain = randomBytes(12).toString('base64url');
  #seq = 0;
  #prev: string | null = null;
  #hash: Hash = createHash('sha256');
  #lines = 0;
  #dropped = 0;
  #lost = 0;
  /** The signer whose certificates the current file has already been given. */
  #certsGiven: SealKey | null = null;
  readonly #key: () => SealKey;

  constructor(key: () => SealKey) { this.#key = key; }

  /**
   * This run appends to a log whose last seal line is `line` (another run's): the first seal
   * links to it, so a reviewer can tell that no run was removed, inserted or cut back between the
   * two. Only before the first seal; a stdout log has nothing to read, and its runs start unlinked.
   */
  follow(line: Buffer): void {
    if (this.#seq === 0) this.#prev = sha256(line);
  }

  /** Lines the sink has written, in file order. */
  cover(bytes: Buffer, lines: number): void {
    this.#hash.update(bytes);
    this.#lines += lines;
  }

  dropped(records: number): void { this.#dropped += records; }
  lost(records: number): void { this.#lost += records; }

  /** Anything a seal would say: lines written, or records dropped or lost. */
  get pending(): boolean { return this.#lines > 0 || this.#dropped > 0 || this.#lost > 0; }

  /** The next seal line, newline included; what it covers starts again from nothing. */
  seal(end?: SealEnd): string {
    const k = this.#key();
    const seal: Seal = {
      event: 'seal', chain: this.chain, seq: this.#seq, time: isoTime(Date.now()),
      lines: this.#lines, digest: this.#hash.digest('base64url'), prev: this.#prev,
      dropped: this.#dropped, lost: this.#lost, ...(end ? { end } : {}),
      principal: k.principal, signer: sha256(k.chain[0]!.raw),
      ...(this.#certsGiven === k ? {} : { certs: k.chain.map((c) => c.raw.toString('base64')) }),
    };
    const line = `${sealLine(seal, k.key)}\n`;
    this.#certsGiven = k;
    this.#seq++;
    this.#prev = sha256(line);
    this.#hash = createHash('sha256');
    this.#lines = 0; this.#dropped = 0; this.#lost = 0;
    return line;
  }

  /** The next line goes to a new file, which needs the certificates again for a reader given only it. */
  newFile(): void { this.#certsGiven = null; }

  /** Where the chain stands, to go back to (restore) when the seal line made next never reached the file. */
  save(): SealerState {
    return { seq: this.#seq, prev: this.#prev, hash: this.#hash.copy(), lines: this.#lines, dropped: this.#dropped, lost: this.#lost, certsGiven: this.#certsGiven };
  }

  /** Back to a saved state: the next seal covers again what the unwritten one did, and follows the seal before it. */
  restore(s: SealerState): void {
    this.#seq = s.seq; this.#prev = s.prev; this.#hash = s.hash; this.#lines = s.lines;
    this.#dropped = s.dropped; this.#lost = s.lost; this.#certsGiven = s.certsGiven;
  }
}

/** A Sealer's state (Sealer.save). */
export interface SealerState {
  readonly seq: number; readonly prev: string | null; readonly hash: Hash; readonly lines: number;
  readonly dropped: number; readonly lost: number; readonly certsGiven: SealKey | null;
}
