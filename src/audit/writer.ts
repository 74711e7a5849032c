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
// each block are handed to the sealer as the block leaves for the sink (one hash update per
// block, not per record), and a seal line is added every interval when anything was written,
// before each rotation (ending the old file) and at close.
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
import type { Sealer, SealEnd } from './seal.ts';

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

/** Where batches go: the file or stdout; exported for the writer's tests. */
export interface Sink { write(chunks: Buffer[]): Promise<void>; close(): Promise<void>; reopen?(): Promise<void> }

export const SEAL_INTERVAL_MS = 1000;

/** Opens the log at start-up, so an unwritable path stops the sidecar with a clear error. */
export async function openAuditLog(file: string | null, options: BatchedLogOptions = {}): Promise<AuditLog> {
  let sink: Sink;
  try {
    sink = file ? await fileSink(file) : stdoutSink();
  } catch (e) {
    throw new ConfigError(`cannot open the audit log: ${(e as NodeJS.ErrnoException).code ?? 'error'}`, { file: file ?? undefined, field: 'auditLog' });
  }
  return batchedLog(sink, options);
}

export function batchedLog(sink: Sink, options: BatchedLogOptions = {}): AuditLog { return new BatchedLog(sink, options); }

interface Queued { data: Buffer; block: Buffer | null; records: number; reopen?: undefined }
/** Where a reopen() falls among the queued batches: everything before it goes to the old file. */
interface ReopenMark { reopen: () => Promise<void> }

class BatchedLog implements AuditLog {
  private block: Buffer = Buffer.allocUnsafeSlow(MAX_BATCH);
  private used = 0;
  /** Records in `block`. */
  private records = 0;
  /** Filled parts of blocks waiting for the sink; `block` is returned to `spare` once written. */
  private queued: Array<Queued | ReopenMark> = [];
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
  /** How far into `block` the sealer has been given the bytes, and how many lines lie past that. */
  private coveredTo = 0;
  private uncoveredLines = 0;

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
        this.sealer?.cover(data, 1);
        this.queued.push({ data, block: null, records: 1 });
        this.flush();
        return;
      }
    }
    this.used += this.block.write(line, this.used);
    this.records++;
    this.uncoveredLines++;
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

  /** Hands the sealer the block's lines it has not had yet, in file order. */
  private cover(): void {
    if (this.sealer === null || this.used === this.coveredTo) return;
    this.sealer.cover(this.block.subarray(this.coveredTo, this.used), this.uncoveredLines);
    this.coveredTo = this.used;
    this.uncoveredLines = 0;
  }

  /**
   * Adds a seal line after everything written so far. An interval's seal is skipped when the
   * backlog is full by a block past its limit (the sink has stopped): it would only grow it, and
   * the next one covers the same lines. A rotation's or the closing seal never is: a file must
   * end with the seal of its own lines, or the next file's first seal would cover lines that are
   * not in it.
   */
  private seal(end?: SealEnd): void {
    if (this.sealer === null || this.closed) return;
    this.cover();
    if (!end && (!this.sealer.pending || this.backlogBytes >= this.maxBacklogBytes + MAX_BATCH)) return;
    const line = this.sealer.seal(end);
    const bytes = Buffer.byteLength(line);
    this.backlogBytes += bytes;
    if (this.used + bytes > this.block.length) this.cut();
    this.used += this.block.write(line, this.used);
    // A seal line is chained by the next seal's `prev`, not covered by its digest.
    this.coveredTo = this.used;
    if (this.queued.length) { this.flush(); return; }
    this.arm();
  }

  private cut(): void {
    if (this.used === 0) return;
    this.cover();
    this.queued.push({ data: this.block.subarray(0, this.used), block: this.block, records: this.records });
    this.block = this.spare.pop() ?? Buffer.allocUnsafeSlow(MAX_BATCH);
    this.used = 0;
    this.records = 0;
    this.coveredTo = 0;
  }

  private flush(): void {
    // One write in flight: lines arriving meanwhile form the next batch.
    if (this.writing) return;
    this.cut();
    if (this.queued.length === 0) return;
    const first = this.queued[0]!;
    if (first.reopen) {
      this.queued.shift();
      this.writing = first.reopen().finally(() => {
        this.writing = null;
        if (this.closed) return;
        if (this.queued.length) this.flush(); else if (this.used) this.arm();
      });
      return;
    }
    const mark = this.queued.findIndex((q) => q.reopen);
    const batch = (mark < 0 ? this.queued : this.queued.slice(0, mark)) as Queued[];
    this.queued = mark < 0 ? [] : this.queued.slice(mark);
    let bytes = 0; let records = 0;
    for (const q of batch) { bytes += q.data.length; records += q.records; }
    this.writing = this.sink.write(batch.map((q) => q.data)).catch((e: unknown) => {
      this.drop('write_error', records, e);
    }).finally(() => {
      this.writing = null;
      this.backlogBytes -= bytes;
      this.backlogRecords -= records;
      for (const q of batch) if (q.block && this.spare.length < 2) this.spare.push(q.block);
      if (this.closed) return;
      // Full blocks go at once; lines that came in during the write wait for the interval.
      // Writing them at once chained write after write (and a thread-pool hop and a wake-up each):
      // 60–200 writes a second at 500 req/s where 50 were meant (/proc/PID/io syscw).
      if (this.queued.length) this.flush();
      else if (this.used) this.arm();
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
        reopen: async () => {
          try {
            await sink.reopen!();
            log.info('audit log reopened');
          } catch (e) {
            log.error('cannot reopen the audit log; still writing to the file open before', { error: (e as Error).message, code: (e as NodeJS.ErrnoException).code });
          }
          resolve();
        },
      });
    });
    this.sealer?.newFile();
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
      while (!this.closed && (this.writing || this.queued.length || this.used)) {
        this.flush();
        await this.writing;
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
  return {
    // fh is read when the write starts: a batch goes whole to one file, old or new.
    write: async (chunks) => { await fh.writev(chunks); },
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

function stdoutSink(): Sink {
  return {
    write: (chunks) => new Promise<void>((resolve, reject) => { process.stdout.write(Buffer.concat(chunks), (e) => { if (e) reject(e); else resolve(); }); }),
    close: async () => {},
  };
}
