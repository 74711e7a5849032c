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
// postrotate) makes the next batch go to a freshly opened file at the same path.
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

interface Queued { data: Buffer; block: Buffer | null; records: number }

class BatchedLog implements AuditLog {
  private block: Buffer = Buffer.allocUnsafeSlow(MAX_BATCH);
  private used = 0;
  /** Records in `block`. */
  private records = 0;
  /** Filled parts of blocks waiting for the sink; `block` is returned to `spare` once written. */
  private queued: Queued[] = [];
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

  constructor(sink: Sink, options: BatchedLogOptions) {
    this.sink = sink;
    this.maxBacklogBytes = options.maxBacklogBytes ?? MAX_BACKLOG_BYTES;
    this.closeTimeoutMs = options.closeTimeoutMs ?? CLOSE_TIMEOUT_MS;
    this.counter = options.counter ?? null;
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
      if (bytes > this.block.length) { this.queued.push({ data: Buffer.from(line), block: null, records: 1 }); this.flush(); return; }
    }
    this.used += this.block.write(line, this.used);
    this.records++;
    if (this.queued.length) { this.flush(); return; }
    this.arm();
  }

  private drop(reason: AuditDropReason, records: number, error?: unknown): void {
    this.counter?.auditDropped(reason, records);
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

  private cut(): void {
    if (this.used === 0) return;
    this.queued.push({ data: this.block.subarray(0, this.used), block: this.block, records: this.records });
    this.block = this.spare.pop() ?? Buffer.allocUnsafeSlow(MAX_BATCH);
    this.used = 0;
    this.records = 0;
  }

  private flush(): void {
    // One write in flight: lines arriving meanwhile form the next batch.
    if (this.writing) return;
    this.cut();
    if (this.queued.length === 0) return;
    const batch = this.queued;
    this.queued = [];
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

  async reopen(): Promise<void> {
    if (this.closed || this.closing || !this.sink.reopen) return;
    try {
      await this.sink.reopen();
      log.info('audit log reopened');
    } catch (e) {
      log.error('cannot reopen the audit log; still writing to the file open before', { error: (e as Error).message, code: (e as NodeJS.ErrnoException).code });
    }
  }

  close(): Promise<void> {
    return this.closing ??= this.closeWithin(this.closeTimeoutMs);
  }

  private async closeWithin(timeoutMs: number): Promise<void> {
    this.serialize();
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
