// The audit writer against sinks that stop or fail: a FIFO whose reader stopped reading (the way
// an NFS hang or a stalled log shipper looks to us), /dev/full (ENOSPC), and a rotated file.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { openSync, closeSync, constants } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openAuditLog, MAX_BACKLOG_BYTES, type AuditDropReason } from '../../src/audit/writer.ts';
import type { AuditRecord } from '../../src/audit/record.ts';

const record = (i: number): AuditRecord => ({
  time: '2026-11-23T00:00:00.000Z', requestId: `r${i}`, direction: 'inbound', event: 'request',
  peer: { principal: 'spiffe://example.org/a', address: '127.0.0.1' }, method: 'GET', path: `/p/${i}`,
  decision: 'allow', status: null, code: null, policy: 'p', rule: 'r', reason: 'ok', policyDigest: 'd'.repeat(64), tls: 'mtls', boundary: null,
});

const counter = (): { dropped: Record<AuditDropReason, number>; auditDropped(reason: AuditDropReason, n: number): void } => ({
  dropped: { backlog: 0, write_error: 0 },
  auditDropped(reason, n) { this.dropped[reason] += n; },
});

/** The writer's log lines (stderr) while fn runs. */
async function capturingStderr<T>(fn: () => Promise<T>): Promise<{ value: T; lines: Array<Record<string, unknown>> }> {
  const original = process.stderr.write.bind(process.stderr);
  let text = '';
  process.stderr.write = ((chunk: string | Uint8Array) => { text += String(chunk); return true; }) as typeof process.stderr.write;
  try {
    const value = await fn();
    return { value, lines: text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>) };
  } finally { process.stderr.write = original; }
}

/** A FIFO with a reader that never reads: once the pipe's 64 KiB are full, a write blocks in the thread pool. */
async function stalledFifo(): Promise<{ path: string; release(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'authproxy-audit-fifo-'));
  const path = join(dir, 'audit.fifo');
  execFileSync('mkfifo', [path]);
  const reader = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  // Closing the reader makes the hung write fail with EPIPE, which frees its thread-pool thread.
  return { path, release: async () => { closeSync(reader); await rm(dir, { recursive: true, force: true }); } };
}

const sleep = (ms: number): Promise<'timeout'> => new Promise((r) => setTimeout(() => r('timeout'), ms).unref());

describe('audit log writer with a stalled or failing sink', () => {
  it('bounds what a stalled sink holds: past the backlog limit records are dropped, counted, and logged once', async () => {
    const fifo = await stalledFifo();
    try {
      const c = counter();
      const lineBytes = Buffer.byteLength(JSON.stringify(record(100_000)) + '\n');
      const { value: grewBy, lines } = await capturingStderr(async () => {
        const log = await openAuditLog(fifo.path, { counter: c, closeTimeoutMs: 200 });
        const before = process.memoryUsage().arrayBuffers;
        for (let round = 0; round < 20; round++) {
          for (let i = 0; i < 10_000; i++) log.write(record(100_000 + i));
          await new Promise((r) => setImmediate(r));
        }
        await new Promise((r) => setTimeout(r, 100));
        const grew = process.memoryUsage().arrayBuffers - before;
        assert.notEqual(await Promise.race([log.close(), sleep(5000)]), 'timeout', 'close() resolved');
        return grew;
      });
      // The old writer grew by ~87 MB here (one 64 KiB block per ~200 records, none ever freed).
      assert.ok(grewBy < 3 * MAX_BACKLOG_BYTES, `off-heap growth ${(grewBy / 1e6).toFixed(1)} MB stays near the ${MAX_BACKLOG_BYTES / 2 ** 20} MiB bound`);
      const accepted = 200_000 - c.dropped.backlog;
      // What the pipe took (up to 64 KiB) plus the backlog bound, give or take a line per block.
      assert.ok(accepted * lineBytes <= MAX_BACKLOG_BYTES + 128 * 1024, `accepted ${accepted} records (${accepted * lineBytes} bytes)`);
      assert.ok(accepted * lineBytes >= MAX_BACKLOG_BYTES - 64 * 1024, `accepted ${accepted} records before dropping`);
      const backlogLines = lines.filter((l) => l.reason === 'backlog');
      assert.equal(backlogLines.length, 1, 'one log line for ~190,000 drops, not one each');
      assert.equal(backlogLines[0]!.dropped, 1, 'the first drop is reported at once');
    } finally { await fifo.release(); }
  });

  it('close() gives up on a stalled sink within its deadline, saying how many records were lost', async () => {
    const fifo = await stalledFifo();
    try {
      const { value: outcome, lines } = await capturingStderr(async () => {
        const log = await openAuditLog(fifo.path, { closeTimeoutMs: 300 });
        // 100 records (~35 KB) fit the pipe and are written; the next 1100 (~380 KB) go in one
        // write that fills the pipe and hangs.
        for (let i = 0; i < 100; i++) log.write(record(i));
        await new Promise((r) => setTimeout(r, 60));
        for (let i = 100; i < 1200; i++) log.write(record(i));
        await new Promise((r) => setTimeout(r, 60));
        const t0 = Date.now();
        const r = await Promise.race([log.close().then(() => 'closed' as const), sleep(5000)]);
        return { r, ms: Date.now() - t0 };
      });
      assert.equal(outcome.r, 'closed', 'close() resolved with the write still hanging (the old one never did)');
      assert.ok(outcome.ms < 4000, `closed after ${outcome.ms} ms`);
      const lost = lines.find((l) => /close deadline/.test(String(l.msg)));
      assert.ok(lost, `a log line names the loss: ${JSON.stringify(lines)}`);
      assert.equal(lost.lost, 1100, 'the records of the hung write; the 100 written before are not counted');
    } finally { await fifo.release(); }
  });

  it('counts the records of a failed write (ENOSPC on /dev/full) and logs the error once', async () => {
    const c = counter();
    const { lines } = await capturingStderr(async () => {
      const log = await openAuditLog('/dev/full', { counter: c });
      for (let i = 0; i < 100; i++) log.write(record(i));
      await new Promise((r) => setTimeout(r, 60));
      for (let i = 100; i < 150; i++) log.write(record(i));
      await log.close();
    });
    assert.deepEqual(c.dropped, { backlog: 0, write_error: 150 });
    const errors = lines.filter((l) => l.reason === 'write_error');
    assert.equal(errors.length, 1, 'rate-limited to one line');
    assert.equal(errors[0]!.code, 'ENOSPC');
  });

  it('after the file is renamed, reopen() ends the old file with the records accepted before it, and sends later ones to a new file at the path', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'authproxy-audit-'));
    try {
      const file = join(dir, 'audit.log');
      const log = await capturingStderr(() => openAuditLog(file)).then((x) => x.value);
      log.write(record(1));
      await new Promise((r) => setTimeout(r, 60));
      await rename(file, `${file}.1`);
      log.write(record(2));
      await new Promise((r) => setImmediate(r));
      const { lines } = await capturingStderr(() => log.reopen());
      assert.ok(lines.some((l) => l.msg === 'audit log reopened'));
      log.write(record(3));
      await log.close();
      const ids = async (f: string): Promise<string[]> => (await readFile(f, 'utf8')).trim().split('\n').map((l) => String((JSON.parse(l) as AuditRecord).requestId));
      assert.deepEqual(await ids(`${file}.1`), ['r1', 'r2'], 'the record written before the signal, still pending then, went to the old file');
      assert.deepEqual(await ids(file), ['r3']);
    } finally { await rm(dir, { recursive: true, force: true }); }
  });
});
