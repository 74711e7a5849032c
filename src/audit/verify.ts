// Checking an audit log's seals (seal.ts): `authproxy audit verify --ca BUNDLE FILE…`. The files
// are read in the order given (oldest rotated file first), line by line as bytes, and every line
// between two seals must hash to what the later seal says; every seal must be signed by a
// workload certificate that chains to the bundle and names the principal the seal claims, and must
// follow the seal before it. What this proves, and what it cannot, is in docs/audit.md.
//
// What a log can settle is a problem (exit 1): a line changed, removed, added or moved between
// two seals; a seal altered, forged, removed, or out of its chain; a signer the bundle does not
// vouch for. What it cannot settle is a note: lines after the last seal (a running sidecar seals
// within --audit-seal-interval; an attacker may also have cut the log back to a seal), a chain
// that ends without its closing seal (the sidecar was killed, or the end was cut), a first seal
// that continues a chain from a file not given.
import { createReadStream } from 'node:fs';
import { createHash, X509Certificate, type Hash } from 'node:crypto';
import { SEAL_START, sha256, splitSealLine, verifySeal, type Seal } from './seal.ts';
import { chainsTo } from '../identity/material.ts';
import { checkPeer } from '../identity/peer.ts';

export interface VerifyProblem { file: string; line: number; problem: string }

export interface FileSummary {
  file: string;
  lines: number;
  /** Lines covered by a seal that verified. */
  sealed: number;
  /** Lines the audit writer does not write, skipped: the sidecar's operational log, other text. */
  skipped: number;
  seals: number;
  /** Lines after the file's last seal. */
  unsealed: number;
  /** The file ends without a newline: a write cut short (a crash, a full disk) or a cut file. */
  incompleteLastLine: boolean;
}

export interface ChainSummary {
  chain: string;
  firstSeq: number;
  lastSeq: number;
  principals: string[];
  /** How its last seal read ended it: `close` (the sidecar stopped), `rotate`, or null (neither). */
  end: Seal['end'] | null;
  /** Its first seal links to the last seal of the log the run appended to (a file log; not stdout). */
  linked: boolean;
}

export interface VerifyReport {
  files: FileSummary[];
  chains: ChainSummary[];
  /** Records the sidecar itself reported dropped (backlog) or lost (write errors), from the seals. */
  dropped: number;
  lost: number;
  problems: VerifyProblem[];
  notes: string[];
}

const START = Buffer.from(SEAL_START);
const NEWLINE = 0x0a;
// The lines since the last seal are also kept (up to this many bytes) for one case: a sidecar
// killed after its last seal leaves lines sealed by nothing, and the next one to append to the
// same file starts a chain whose first seal covers only its own lines, the tail of the window.
const KEEP_WINDOW_BYTES = 64 * 1024 * 1024;

interface Signer { cert: X509Certificate; principal: string | null; trouble: string | null }

class Verifier {
  readonly report: VerifyReport = { files: [], chains: [], dropped: 0, lost: 0, problems: [], notes: [] };
  readonly #cas: readonly X509Certificate[];
  /** Signing certificates met so far, by the SHA-256 of their DER, and whether the bundle vouches for them. */
  readonly #signers = new Map<string, Signer>();
  #last: { seal: Seal; hash: string } | null = null;
  #chain: ChainSummary | null = null;
  /** Every chain met so far: a run's seals come once, together. */
  readonly #chains = new Set<string>();
  #window: Hash = createHash('sha256');
  #windowLines = 0;
  #windowFrom = 1;
  #kept: Buffer[] = [];
  #keptBytes = 0;
  #file!: FileSummary;

  constructor(cas: readonly X509Certificate[]) { this.#cas = cas; }

  startFile(file: string): void {
    this.#file = { file, lines: 0, sealed: 0, skipped: 0, seals: 0, unsealed: 0, incompleteLastLine: false };
    this.report.files.push(this.#file);
    // Each file's first seal covers from the file's start: the writer ends a file with a seal.
    this.#resetWindow(1);
  }

  #resetWindow(from: number): void {
    this.#window = createHash('sha256');
    this.#windowLines = 0;
    this.#windowFrom = from;
    this.#kept = [];
    this.#keptBytes = 0;
  }

  line(bytes: Buffer): void {
    const n = ++this.#file.lines;
    if (bytes.length >= START.length && bytes.subarray(0, START.length).equals(START)) {
      const parts = splitSealLine(bytes.toString('utf8', 0, bytes.length - 1));
      // Without its signature at the end it is a seal line cut short by a failed write, which the
      // writer ended and the next seal covers as it is. A whole seal cut short by someone merges
      // its lines into the next seal's, whose digest then does not match.
      if (parts) { this.#seal(bytes, n, parts); return; }
    }
    if (notAuditLine(bytes)) { this.#file.skipped++; return; }
    this.#window.update(bytes);
    this.#windowLines++;
    if (this.#keptBytes <= KEEP_WINDOW_BYTES) { this.#kept.push(bytes); this.#keptBytes += bytes.length; }
  }

  endFile(partial: Buffer | null, last: boolean): void {
    if (partial) {
      this.#file.lines++;
      this.#file.incompleteLastLine = true;
      this.#windowLines++;
    }
    this.#file.unsealed = this.#windowLines;
    if (this.#windowLines === 0) return;
    const where = span2(this.#windowFrom, this.#file.lines);
    if (!last && this.#last?.seal.end !== 'close') {
      this.#problem(this.#windowFrom, `${where}: after the file's last seal, sealed nowhere (a later file was given, so this one should have ended with a seal)`);
    } else if (partial) {
      this.report.notes.push(`${this.#file.file}: ${where}: not sealed; the last line has no newline (a write cut short by a crash or a full disk, or the file was cut)`);
    } else {
      this.report.notes.push(`${this.#file.file}: ${where}: not sealed yet (a running sidecar seals within --audit-seal-interval; a log cut back to a seal reads the same)`);
    }
  }

  finish(): VerifyReport {
    if (this.#chain) this.report.chains.push(this.#chain);
    if (this.report.files.every((f) => f.seals === 0) && this.report.files.some((f) => f.lines > 0)) {
      this.report.problems.push({ file: this.report.files[0]!.file, line: 1, problem: 'no seal in the files given: the log was written with --audit-seal-interval 0, or its seals were removed' });
    }
    for (const c of this.report.chains.slice(0, -1)) {
      if (c.end !== 'close') this.report.notes.push(`chain ${c.chain} (seals ${c.firstSeq}–${c.lastSeq}) ends without its closing seal: the sidecar was killed, or what followed its last seal was cut`);
    }
    return this.report;
  }

  #problem(line: number, problem: string): void { this.report.problems.push({ file: this.#file.file, line, problem }); }

  #seal(bytes: Buffer, n: number, parts: { body: string; sig: string }): void {
    const f = this.#file;
    f.seals++;
    const covered = { from: this.#windowFrom, lines: this.#windowLines, digest: this.#window.digest('base64url') };
    const kept = this.#keptBytes <= KEEP_WINDOW_BYTES ? this.#kept : null;
    this.#resetWindow(n + 1);
    const seal = parseSeal(parts.body);
    if (!seal) { this.#problem(n, 'a seal line that does not read as one (altered)'); return; }
    const signer = this.#signer(seal, n);
    if (!signer) return;
    if (!verifySeal(parts.body, parts.sig, signer.cert.publicKey)) {
      this.#problem(n, `the seal's signature does not verify: it was altered, or not made by ${seal.principal}`);
      return;
    }
    // Only a signed seal is believed from here on; a forged one was reported above and proves nothing.
    if (signer.trouble) { this.#problem(n, signer.trouble); return; }
    if (signer.principal !== seal.principal) { this.#problem(n, `the seal claims ${seal.principal} but its certificate names ${String(signer.principal)}`); return; }
    const t = Date.parse(seal.time);
    if (!(t >= Date.parse(signer.cert.validFrom) && t <= Date.parse(signer.cert.validTo))) {
      this.#problem(n, `signed at ${seal.time}, outside its certificate's validity (${signer.cert.validFrom} – ${signer.cert.validTo})`);
    }
    const orphans = seal.seq === 0 && kept && seal.lines < covered.lines ? covered.lines - seal.lines : 0;
    if (orphans > 0 && seal.digest === digestOf(kept!.slice(orphans))) {
      f.sealed += seal.lines;
      const span = `${span2(covered.from, covered.from + orphans - 1)}: before chain ${seal.chain} started, sealed by nothing`;
      // Only a run that ended without its closing seal leaves such lines; after one that did,
      // they were put there. A rotation seal does not end the run: a sidecar killed after it left
      // its lines in the file it rotated into (or the same file, when SIGHUP came without a rename).
      if (this.#last === null || this.#last.seal.end !== 'close') {
        this.report.notes.push(`${f.file}: ${span} (the sidecar that wrote them stopped without its closing seal: killed or crashed)`);
      } else {
        this.#problem(covered.from, `${span}, yet the chain before ended with its ${this.#last.seal.end} seal: they were added`);
      }
    } else if (seal.lines !== covered.lines || seal.digest !== covered.digest) {
      const span = covered.lines === 0 ? 'no lines' : span2(covered.from, n - 1);
      this.#problem(n, `${span}: not what this seal covers (${seal.lines} line${seal.lines === 1 ? '' : 's'} sealed, ${covered.lines} found): lines were changed, removed, added or reordered`);
    } else {
      f.sealed += covered.lines;
    }
    this.#follow(seal, n);
    this.report.dropped += seal.dropped;
    this.report.lost += seal.lost;
    this.#last = { seal, hash: sha256(bytes) };
  }

  /** The seal's place in its chain: the one before it, by hash, chain and number. */
  #follow(seal: Seal, n: number): void {
    const last = this.#last;
    if (seal.prev === null && seal.seq !== 0) this.#problem(n, `seal ${seal.seq} of chain ${seal.chain} claims to start its chain`);
    if (seal.prev === null || seal.seq === 0) {
      // A run's first seal: linked to the last seal of the file it appended to, or to nothing.
      if (seal.prev !== null && last === null) {
        this.report.notes.push(`${this.#file.file}: chain ${seal.chain} (line ${n}) follows a run whose seals are in a file not given; give the older files too to check the link`);
      } else if (seal.prev !== null && seal.prev !== last!.hash) {
        this.#problem(n, `chain ${seal.chain} does not follow the seal before it (seal ${last!.seal.seq} of chain ${last!.seal.chain}), the last seal of the log it appended to: a run was removed or inserted, a run's end was cut, or the files are out of order`);
      }
      this.#again(seal, n);
      if (this.#chain) this.report.chains.push(this.#chain);
      this.#chain = { chain: seal.chain, firstSeq: seal.seq, lastSeq: seal.seq, principals: [seal.principal], end: seal.end ?? null, linked: seal.prev !== null };
      return;
    }
    if (last === null) {
      this.report.notes.push(`${this.#file.file}: the first seal (line ${n}, seal ${seal.seq} of chain ${seal.chain}) continues a chain from a file not given; give the older files too to check the link`);
    } else if (seal.prev !== last.hash || seal.chain !== last.seal.chain || seal.seq !== last.seal.seq + 1) {
      this.#problem(n, `seal ${seal.seq} of chain ${seal.chain} does not follow the seal before it (seal ${last.seal.seq} of chain ${last.seal.chain}): seals were removed or altered, or the files are out of order`);
    }
    if (this.#chain?.chain !== seal.chain) {
      this.#again(seal, n);
      if (this.#chain) this.report.chains.push(this.#chain);
      this.#chain = { chain: seal.chain, firstSeq: seal.seq, lastSeq: seal.seq, principals: [], end: null, linked: true };
    }
    this.#chain.lastSeq = seal.seq;
    this.#chain.end = seal.end ?? null;
    if (!this.#chain.principals.includes(seal.principal)) this.#chain.principals.push(seal.principal);
  }

  /** A chain starting again after it was met: each run's seals are in the log once, in one piece. */
  #again(seal: Seal, n: number): void {
    if (this.#chains.has(seal.chain)) {
      this.#problem(n, `chain ${seal.chain} starts again (seal ${seal.seq}) after its seals were read: a run's lines and seals were copied, or a file was given twice`);
    }
    this.#chains.add(seal.chain);
  }

  /** The seal's signing certificate: given in this seal, or in an earlier one. */
  #signer(seal: Seal, n: number): Signer | null {
    if (seal.certs) {
      let chain: X509Certificate[];
      try { chain = seal.certs.map((c) => new X509Certificate(Buffer.from(c, 'base64'))); } catch {
        this.#problem(n, 'a certificate in the seal does not parse');
        return null;
      }
      if (sha256(chain[0]!.raw) !== seal.signer) { this.#problem(n, 'the seal\'s signer is not the certificate it carries'); return null; }
      const known = this.#signers.get(seal.signer);
      if (known) return known;
      const leaf = chain[0]!;
      const peer = checkPeer(leaf, new Set());
      const trouble = !chainsTo(leaf, chain.slice(1), this.#cas) ? `signed by ${peer.ok ? peer.identity.principal : 'a certificate'} that does not chain to the trust bundle given (--ca)`
        : !peer.ok ? `the signing certificate is not a workload identity: ${peer.reason}` : null;
      const signer: Signer = { cert: leaf, principal: peer.ok ? peer.identity.principal : null, trouble };
      this.#signers.set(seal.signer, signer);
      return signer;
    }
    const signer = this.#signers.get(seal.signer);
    if (!signer) this.#problem(n, 'signed by a certificate the files read so far do not carry (a file\'s first seal carries it: give the files from the start of a file)');
    return signer ?? null;
  }
}

const B64URL = /^[A-Za-z0-9_-]+$/;

// With the audit log on stdout (the default, and what the Kubernetes injector leaves it at),
// `kubectl logs` interleaves it with the operational log the sidecar writes on stderr (and dev
// mode prints its banner on stdout). The writer writes JSON objects only, none of them an
// operational log line, so both are skipped rather than read as lines someone added. Skipping
// cannot hide a change: a record altered to look like either is missing from its seal's digest.
const OPERATIONAL = /^\{"time":"[0-9T:.Z-]{20,30}","level":"[a-z]+","msg":/;
function notAuditLine(bytes: Buffer): boolean {
  if (bytes[0] !== 0x7b) return true;
  return OPERATIONAL.test(bytes.toString('latin1', 0, 64));
}

const span2 = (from: number, to: number): string => (from === to ? `line ${from}` : `lines ${from}–${to}`);

function digestOf(lines: readonly Buffer[]): string {
  const h = createHash('sha256');
  for (const l of lines) h.update(l);
  return h.digest('base64url');
}

function parseSeal(body: string): Seal | null {
  let v: unknown;
  try { v = JSON.parse(body); } catch { return null; }
  if (typeof v !== 'object' || v === null) return null;
  const s = v as Record<string, unknown>;
  const count = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;
  const ok = s.event === 'seal' && typeof s.chain === 'string' && count(s.seq) && typeof s.time === 'string'
    && count(s.lines) && typeof s.digest === 'string' && B64URL.test(s.digest)
    && (s.prev === null || (typeof s.prev === 'string' && B64URL.test(s.prev)))
    && count(s.dropped) && count(s.lost) && (s.end === undefined || s.end === 'rotate' || s.end === 'close')
    && typeof s.principal === 'string' && typeof s.signer === 'string'
    && (s.certs === undefined || (Array.isArray(s.certs) && s.certs.length > 0 && s.certs.every((c) => typeof c === 'string')));
  return ok ? (s as unknown as Seal) : null;
}

/** Verifies the files as one log, in the order given (oldest first). `cas`: whom the signers must chain to. */
export async function verifyAuditFiles(files: readonly string[], cas: readonly X509Certificate[]): Promise<VerifyReport> {
  const v = new Verifier(cas);
  for (const [i, file] of files.entries()) {
    v.startFile(file);
    // The start of a line that spans chunks, in pieces: joined once its newline comes (joining
    // them chunk by chunk made a long line cost its length squared: 13 s for a 32 MB one).
    let rest: Buffer[] = [];
    for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
      let start = 0;
      for (let nl = chunk.indexOf(NEWLINE); nl >= 0; nl = chunk.indexOf(NEWLINE, start)) {
        const line = chunk.subarray(start, nl + 1);
        v.line(rest.length ? Buffer.concat([...rest, line]) : line);
        rest = [];
        start = nl + 1;
      }
      if (start < chunk.length) rest.push(chunk.subarray(start));
    }
    v.endFile(rest.length ? Buffer.concat(rest) : null, i === files.length - 1);
  }
  return v.finish();
}
