// Decision log writer: JSON lines to a file (appended) or stdout.
//
// One write per request cost more than the rest of the sidecar's own request work (the profile
// showed 17% of busy time in audit file writes: a thread-pool hop, a wake-up and futexes per
// line). Lines are therefore collected and written together: every 20 ms, or as soon as 64 KiB
// are pending, with at most one write in flight. At 500 req/s that took the sidecar from 14.9 to
// 13.3 system calls per request (strace -c; futex 5.2 → 3.6, write 2.9 → 2.3), where flushing
// once per event-loop turn still meant one write per request at moderate rates. Envoy flushes its
// file access logs on an interval too (--file-flush-interval-msec); 20 ms keeps the window a crash
// can lose small.
//
// Lines are copied into reused 64 KiB blocks outside the JS heap: strings held for an interval
// survive scavenges and get promoted (+11 MB peak RSS under load with 100 ms of them). Nothing
// here is synchronous, and close() flushes what is pending.
//
// A sink that stops answering (an NFS hang, a FIFO whose reader stopped) must cost neither memory
// nor the shutdown. Bytes accepted but not yet written are bounded (MAX_BACKLOG_BYTES): past it a
// record is dropped and counted, never waited for, as Envoy's file access log drops what does not
// fit its flush buffer. A failed write (ENOSPC, EIO, EPIPE) drops its batch and is counted the
// same way (authproxy_audit_records_dropped_total{reason}), with one log line per reason at most
// every 10 s, so a full disk cannot flood stderr too. close() gives up after a deadline, says how
// many records it lost, and resolves, so the drain finishes. reopen() (SIGHUP, for logrotate's
// postrotate) makes what is written after it go to a freshly opened file at the same path; what
// was written before it still goes to the old file (a marker in the queue, so a batch never
// straddles the two).
//
// With a Sealer (seal.ts, --audit-seal-interval), the lines are chained and signed: the bytes of
// each batch are handed to the sealer once the sink has written them (one hash update per block,
// not per record), and a seal is queued every interval when anything was written, before each
// rotation (ending the old file) and at close. A seal is a marker in the queue, made and signed
// when the writes before it are done, and written alone: what it covers is then exactly what
// reached the file. Hashing blocks as they were queued made a failed write (ENOSPC) a seal over
// lines that were never written, and a lost seal line a break in the chain: `audit verify`
// reported a log with a full disk in its past as tampered with. A write cut short (part of a
// batch written, then ENOSPC) leaves part of a line: the next write starts with a newline that
// ends it, and the seal covers the broken line as it is in the file.
//
// Records are serialized in a setImmediate after the event-loop turn's I/O callbacks, not in
// write(): JSON.stringify and the copy took a median 13–17 µs of the 66–81 the inbound handler
// spends before a request can go to the app (bench/FINDINGS.md, "The request's way in").
// Deferred, they run once the request is on its way. The records are complete values when
// written, so the line says what was decided, when, under which policy digest, exactly as before;
// a record waits at most one turn, too short to outlive a scavenge (holding them for the 20 ms
// flush did: +17 MB peak RSS).
import { open, type FileHandle } from 'node:fs/promises';
import type { AuditRecord } from './record.ts';
import { ConfigError } from '../errors.ts';
import { log } from '../log.ts';
import { SEAL_START, splitSealLine, type Sealer, type SealEnd } from './seal.ts';

const NEWLINE = Buffer.from('\n');

export interface AuditLog {
  write(record: AuditRecord): void;
  /** Reopens the file at its path (after a rotation moved it); a no-op for stdout. */
  reopen(): Promise<void>;
  /** Flushes what is pending, for at most the close deadline; never rejects. */
  close(): Promise<void>;
}

export type AuditDropReason = 'backlog' | 'write_error';

/** Where dropped records are counted: the Metrics object in the sidecar. */
export interface AuditDropCounter { auditDropped(reason: AuditDropReason, records: number): void }

export interface BatchedLogOptions {
  /** Bytes accepted but not yet written (in blocks, queued or in the write in flight) past which records are dropped. */
  maxBacklogBytes?: number;
  /** How long close() waits for the sink before giving up on what is left. */
  closeTimeoutMs?: number;
  counter?: AuditDropCounter;
  /** Chains and signs the lines (seal.ts); none = no seal lines. */
  sealer?: Sealer | null;
  /** How often a seal is added when lines were written since the last; 0 = only at rotation and close. */
  sealIntervalMs?: number;
}

const MAX_BATCH = 64 * 1024;
const FLUSH_INTERVAL_MS = 20;
// 4 MiB: 64 full blocks, about 10,000 records (~400 bytes each), 20 s of audit at 500 req/s. A
// healthy disk never holds more than one block plus the one being written (flushes every 20 ms),
// so this only binds when the sink has stopped; against the 256Mi memory limit of our sidecar
// manifests it is 1.6%, where an unbounded backlog grew 87 MB in 200,000 records (off-heap, so no
// GC pressure warned of it) and would end in an OOM kill of the pod, audit lines and all.
export const MAX_BACKLOG_BYTES = 4 * 1024 * 1024;
// 2 s: the drain (--drain-timeout, 15 s by default) has already run by then, and Kubernetes'
// default terminationGracePeriodSeconds is 30; a disk that has not taken 4 MiB in 2 s is not
// going to, and waiting longer only turns a SIGTERM into a SIGKILL.
export const CLOSE_TIMEOUT_MS = 2000;
const DROP_LOG_INTERVAL_MS = 10_000;

/**
 * Where batches go: the file or stdout; exported for the writer's tests. A write that fails after
 * writing part of its bytes rejects with an error whose `written` says how many reached the sink.
 */
export interface Sink {
  write(chunks: Buffer[]): Promise<void>; close(): Promise<void>; reopen?(): Promise<void>;
  /** The last seal line the file held when opened (an earlier run's), newline included. */
  lastSeal?: Buffer | null;
}

export const SEAL_INTERVAL_MS = 1000;

/** Opens the log at start-up, so an unwritable path stops the sidecar with a clear error. */
export async function openAuditLog(file: string | null, options: BatchedLogOptions = {}): Promise<AuditLog> {
  let sink: Sink;
  try {
    sink = file ? await fileSink(file) : stdoutSink();
  } catch (e) {
    throw new ConfigError(`cannot open the audit log: ${(e as NodeJS.ErrnoException).code ?? 'error'}`, { file: file ?? undefined, field: 'auditLog' });
  }
  if (sink.lastSeal) options.sealer?.follow(sink.lastSeal);
  return batchedLog(sink, options);
}

export function batchedLog(sink: Sink, options: BatchedLogOptions = {}): AuditLog { return new BatchedLog(sink, options); }

interface Queued { kind?: undefined; data: Buffer; block: Buffer | null; records: number }
/** Where a reopen() falls among the queued batches: everything before it goes to the old file. */
interface ReopenMark { kind: 'reopen'; reopen: () => Promise<void> }
/** Where a seal goes: made when everything before it has been written. */
interface SealMark { kind: 'seal'; end: SealEnd | undefined }

class BatchedLog implements AuditLog {
  private block: Buffer = Buffer.allocUnsafeSlow(MAX_BATCH);
  private used = 0;
  /** Records in `block`. */
  private records = 0;
  /** Filled parts of blocks waiting for the sink; `block` is returned to `spare` once written. */
  private queued: Array<Queued | ReopenMark | SealMark> = [];
  /** Written blocks, free for reuse. */
  private spare: Buffer[] = [];
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> | null = null;
  /** Bytes and records accepted and not yet written: in `block`, `queued` and the write in flight. */
  private backlogBytes = 0;
  private backlogRecords = 0;
  private closing: Promise<void> | null = null;
  /** Set once close() has given up or finished: records written after it are dropped. */
  private closed = false;
  private readonly sink: Sink;
  private readonly maxBacklogBytes: number;
  private readonly closeTimeoutMs: number;
  private readonly counter: AuditDropCounter | null;
  /** Drops not yet reported in a log line, and when the last line went out. */
  private readonly unreported: Record<AuditDropReason, number> = { backlog: 0, write_error: 0 };
  private lastReport: Record<AuditDropReason, number> = { backlog: -Infinity, write_error: -Infinity };

  /** Records written this turn, serialized by the next setImmediate. */
  private unserialized: AuditRecord[] = [];

  private readonly sealer: Sealer | null;
  private sealTimer: NodeJS.Timeout | null = null;
  /** A write was cut short inside a line: the next write starts with the newline that ends it. */
  private broken = false;

  constructor(sink: Sink, options: BatchedLogOptions) {
    this.sink = sink;
    this.maxBacklogBytes = options.maxBacklogBytes ?? MAX_BACKLOG_BYTES;
    this.closeTimeoutMs = options.closeTimeoutMs ?? CLOSE_TIMEOUT_MS;
    this.counter = options.counter ?? null;
    this.sealer = options.sealer ?? null;
    const every = options.sealIntervalMs ?? SEAL_INTERVAL_MS;
    // unref: sealing never keeps a stopping process alive; close() writes the last seal.
    if (this.sealer && every > 0) this.sealTimer = setInterval(() => this.seal(), every).unref();
  }

  write(record: AuditRecord): void {
    if (this.unserialized.push(record) === 1) setImmediate(this.serialize);
  }

  private readonly serialize = (): void => {
    const records = this.unserialized;
    if (records.length === 0) return;
    this.unserialized = [];
    if (this.closed) return;
    for (const record of records) this.append(record);
  };

  private append(record: AuditRecord): void {
    // Full already: drop without serializing (no work for a record that goes nowhere).
    if (this.backlogBytes >= this.maxBacklogBytes) { this.drop('backlog', 1); return; }
    const line = JSON.stringify(record) + '\n';
    const bytes = Buffer.byteLength(line);
    if (this.backlogBytes + bytes > this.maxBacklogBytes) { this.drop('backlog', 1); return; }
    this.backlogBytes += bytes;
    this.backlogRecords++;
    if (this.used + bytes > this.block.length) {
      this.cut();
      if (bytes > this.block.length) {
        const data = Buffer.from(line);
        this.queued.push({ data, block: null, records: 1 });
        this.flush();
        return;
      }
    }
    this.used += this.block.write(line, this.used);
    this.records++;
    if (this.queued.length) { this.flush(); return; }
    this.arm();
  }

  private drop(reason: AuditDropReason, records: number, error?: unknown): void {
    this.counter?.auditDropped(reason, records);
    if (reason === 'backlog') this.sealer?.dropped(records); else this.sealer?.lost(records);
    this.unreported[reason] += records;
    const now = Date.now();
    if (now - this.lastReport[reason] < DROP_LOG_INTERVAL_MS) return;
    this.lastReport[reason] = now;
    const dropped = this.unreported[reason];
    this.unreported[reason] = 0;
    log.error(reason === 'backlog'
      ? 'audit log sink is not keeping up: records dropped (audit backlog full)'
      : 'audit log write failed: records dropped', {
      reason, dropped, backlogBytes: this.backlogBytes, limitBytes: this.maxBacklogBytes, nextReportInMs: DROP_LOG_INTERVAL_MS,
      ...(error ? { error: (error as Error).message, code: (error as NodeJS.ErrnoException).code } : {}),
    });
  }

  private arm(): void {
    // unref: the interval never keeps a stopping process alive; close() flushes instead.
    if (this.timer === null) this.timer = setTimeout(this.onInterval, FLUSH_INTERVAL_MS).unref();
  }

  private readonly onInterval = (): void => { this.timer = null; this.flush(); };

  /**
   * Queues a seal after everything accepted so far. One waiting interval seal is enough while the
   * sink is stalled: it covers whatever was written by the time its turn comes.
   */
  private seal(end?: SealEnd): void {
    if (this.sealer === null || this.closed) return;
    if (!end && !this.sealer.pending && this.backlogRecords === 0) return;
    this.cut();
    const last = this.queued.at(-1);
    if (!end && last?.kind === 'seal' && !last.end) return;
    this.queued.push({ kind: 'seal', end });
    this.flush();
  }

  private cut(): void {
    if (this.used === 0) return;
    this.queued.push({ data: this.block.subarray(0, this.used), block: this.block, records: this.records });
    this.block = this.spare.pop() ?? Buffer.allocUnsafeSlow(MAX_BATCH);
    this.used = 0;
    this.records = 0;
  }

  /**
   * Hands the sealer the first `written` bytes of `parts` (all when undefined), the lines the sink
   * wrote, and notes whether they end inside a line. Returns how many whole lines they were.
   */
  private wrote(parts: ReadonlyArray<{ data: Buffer; lines: number }>, written = Infinity): number {
    let lines = 0;
    for (const p of parts) {
      if (written <= 0) break;
      const data = p.data.length <= written ? p.data : p.data.subarray(0, written);
      const n = data === p.data ? p.lines : countLines(data);
      this.sealer?.cover(data, n);
      lines += n;
      written -= data.length;
      this.broken = data.at(-1) !== NEWLINE[0];
    }
    return lines;
  }

  /** After a write: the next, or wait for the interval. */
  private readonly next = (): void => {
    this.writing = null;
    if (this.closed) return;
    // Full blocks go at once; lines that came in during the write wait for the interval.
    // Writing them at once chained write after write (and a thread-pool hop and a wake-up each):
    // 60–200 writes a second at 500 req/s where 50 were meant (/proc/PID/io syscw).
    if (this.queued.length) this.flush();
    else if (this.used) this.arm();
  };

  /** Makes the seal from what has been written, and writes it (after the newline a broken line needs). */
  private writeSeal(end: SealEnd | undefined): void {
    const sealer = this.sealer!;
    const before = sealer.save();
    const parts = this.broken ? [{ data: NEWLINE, lines: 1 }] : [];
    if (this.broken) sealer.cover(NEWLINE, 1);
    if (!end && !sealer.pending) { sealer.restore(before); this.flush(); return; }
    const line = Buffer.from(sealer.seal(end));
    this.writing = this.sink.write([...parts.map((p) => p.data), line]).then(() => { this.broken = false; }, (e: unknown) => {
      // Not in the file: the next seal covers what this one did, and follows the seal before it.
      sealer.restore(before);
      const written = (e as { written?: number }).written ?? 0;
      this.wrote([...parts, { data: line, lines: 0 }], written);
      this.drop('write_error', 0, e);
    }).finally(this.next);
  }

  private flush(): void {
    // One write in flight: lines arriving meanwhile form the next batch.
    if (this.writing) return;
    this.cut();
    if (this.queued.length === 0) return;
    const first = this.queued[0]!;
    if (first.kind === 'reopen') {
      this.queued.shift();
      this.writing = first.reopen().finally(this.next);
      return;
    }
    if (first.kind === 'seal') {
      this.queued.shift();
      this.writeSeal(first.end);
      return;
    }
    const mark = this.queued.findIndex((q) => q.kind !== undefined);
    const batch = (mark < 0 ? this.queued : this.queued.slice(0, mark)) as Queued[];
    this.queued = mark < 0 ? [] : this.queued.slice(mark);
    let bytes = 0; let records = 0;
    for (const q of batch) { bytes += q.data.length; records += q.records; }
    const parts = [...(this.broken ? [{ data: NEWLINE, lines: 1 }] : []), ...batch.map((q) => ({ data: q.data, lines: q.records }))];
    this.writing = this.sink.write(parts.map((p) => p.data)).then(() => { this.wrote(parts); }, (e: unknown) => {
      const written = (e as { written?: number }).written ?? 0;
      // The newline that ends a broken line is not a record; a record cut short is lost.
      const ended = parts[0]!.data === NEWLINE && written > 0 ? 1 : 0;
      this.drop('write_error', records - (this.wrote(parts, written) - ended), e);
    }).finally(() => {
      this.backlogBytes -= bytes;
      this.backlogRecords -= records;
      for (const q of batch) if (q.block && this.spare.length < 2) this.spare.push(q.block);
      this.next();
    });
  }

  reopen(): Promise<void> {
    const sink = this.sink;
    if (this.closed || this.closing || !sink.reopen) return Promise.resolve();
    // What was written before the signal ends the old file, sealed; the marker switches files
    // once those batches are written.
    this.serialize();
    this.seal('rotate');
    this.cut();
    const done = new Promise<void>((resolve) => {
      this.queued.push({
        kind: 'reopen',
        reopen: async () => {
          try {
            await sink.reopen!();
            log.info('audit log reopened');
          } catch (e) {
            log.error('cannot reopen the audit log; still writing to the file open before', { error: (e as Error).message, code: (e as NodeJS.ErrnoException).code });
          }
          // The new file's first seal carries the certificates again.
          this.sealer?.newFile();
          resolve();
        },
      });
    });
    this.flush();
    return done;
  }

  close(): Promise<void> {
    return this.closing ??= this.closeWithin(this.closeTimeoutMs);
  }

  private async closeWithin(timeoutMs: number): Promise<void> {
    this.serialize();
    if (this.sealTimer !== null) { clearInterval(this.sealTimer); this.sealTimer = null; }
    this.seal('close');
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null; }
    const drained = (async () => {
      for (let round = 0; round < 2; round++) {
        if (round > 0) {
          // Records that came in while the closing seal was written (requests cut off by the
          // drain) went after it: one more closing seal covers them, so the file ends with one.
          this.serialize();
          if (this.closed || (!this.sealer?.pending && !this.used)) break;
          this.seal('close');
        }
        while (!this.closed && (this.writing || this.queued.length || this.used)) {
          this.flush();
          await this.writing;
        }
      }
      if (!this.closed) await this.sink.close();
    })();
    let deadline: NodeJS.Timeout | undefined;
    const gaveUp = await Promise.race([
      drained.then(() => false, () => false),
      new Promise<boolean>((resolve) => { deadline = setTimeout(() => resolve(true), timeoutMs); }),
    ]);
    clearTimeout(deadline);
    this.closed = true;
    // A write hanging in the thread pool cannot be cancelled; it is left behind, and what it and
    // the queue held is reported lost (part of the hung write may have reached the file).
    if (gaveUp) log.error('audit log not flushed within the close deadline: records lost', { lost: this.backlogRecords, lostBytes: this.backlogBytes, timeoutMs });
  }
}

async function fileSink(file: string): Promise<Sink> {
  let fh: FileHandle = await open(file, 'a', 0o640);
  // A run killed in the middle of a write left part of a line: end it, so that this run's first
  // line is not glued to it (it stays what it was, a broken line before this run's first seal).
  // Its last seal line is where this run's chain links on (seal.ts, Sealer.follow).
  const st = await fh.stat();
  let lastSeal: Buffer | null = null;
  if (st.isFile() && st.size > 0) {
    const r = await open(file, 'r');
    try {
      // The last seal is nearly always in the last 64 KiB; look further back only when it is not.
      for (let want = 64 * 1024; ; want *= 4) {
        const tail = Buffer.alloc(Math.min(st.size, want, TAIL_BYTES));
        await r.read(tail, 0, tail.length, st.size - tail.length);
        if (want === 64 * 1024 && tail.at(-1) !== NEWLINE[0]) await fh.write(NEWLINE);
        lastSeal = lastSealLine(tail);
        if (lastSeal || tail.length === st.size || tail.length === TAIL_BYTES) break;
      }
    } finally { await r.close(); }
  }
  return {
    lastSeal,
    // fh is read when the write starts: a batch goes whole to one file, old or new.
    write: async (chunks) => {
      const h = fh;
      let rest = chunks; let written = 0;
      // writev may write less than asked (a disk filling up): the rest is written again, and a
      // failure after part of the batch says how much of it reached the file.
      while (rest.length) {
        let n: number;
        try { ({ bytesWritten: n } = await h.writev(rest)); } catch (e) { throw Object.assign(e as Error, { written }); }
        if (n === 0) throw Object.assign(new Error('audit log write wrote nothing'), { code: 'EIO', written });
        written += n;
        rest = skip(rest, n);
      }
    },
    reopen: async () => {
      const next = await open(file, 'a', 0o640);
      const old = fh;
      fh = next;
      // FileHandle.close() waits for the write in flight on it; not awaited, so a hung write on
      // the old file does not hold up the new one.
      old.close().catch(() => {});
    },
    close: () => fh.close(),
  };
}

// How far back the last seal is looked for: a killed run writes at most an interval's lines after
// its last seal (1 s; ~2 MB only at 4,000 records a second); past it the run starts unlinked.
const TAIL_BYTES = 4 * 1024 * 1024;
const SEAL_AT_LINE_START = Buffer.from(`\n${SEAL_START}`);

/** The last whole seal line (signature and newline included) in `tail`, the end of a file. */
function lastSealLine(tail: Buffer): Buffer | null {
  for (let at = tail.lastIndexOf(SEAL_AT_LINE_START); ; at = tail.lastIndexOf(SEAL_AT_LINE_START, at - 1)) {
    const start = at < 0 ? 0 : at + 1;
    const end = tail.indexOf(NEWLINE[0]!, start);
    if (end >= 0 && tail.subarray(start, start + SEAL_START.length).toString() === SEAL_START
      && splitSealLine(tail.toString('utf8', start, end)) !== null) return tail.subarray(start, end + 1);
    if (at <= 0) return null;
  }
}

/** The chunks after the first `n` bytes. */
function skip(chunks: Buffer[], n: number): Buffer[] {
  let i = 0;
  while (i < chunks.length && n >= chunks[i]!.length) n -= chunks[i++]!.length;
  const rest = chunks.slice(i);
  if (n > 0) rest[0] = rest[0]!.subarray(n);
  return rest;
}

function countLines(data: Buffer): number {
  let n = 0;
  for (let at = data.indexOf(NEWLINE[0]!); at >= 0; at = data.indexOf(NEWLINE[0]!, at + 1)) n++;
  return n;
}

function stdoutSink(): Sink {
  return {
    write: (chunks) => new Promise<void>((resolve, reject) => { process.stdout.write(Buffer.concat(chunks), (e) => { if (e) reject(e); else resolve(); }); }),
    close: async () => {},
  };
}
