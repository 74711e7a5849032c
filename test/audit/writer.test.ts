import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openAuditLog, batchedLog, type Sink } from '../../src/audit/writer.ts';
import type { AuditRecord } from '../../src/audit/record.ts';
import { ConfigError } from '../../src/errors.ts';

const record = (i: number): AuditRecord => ({
  time: '2026-11-23T00:00:00.000Z', requestId: `r${i}`, direction: 'inbound', event: 'request',
  peer: { principal: 'spiffe://example.org/a', address: '127.0.0.1' }, method: 'GET', path: `/p/${i}`,
  decision: 'allow', status: null, code: null, policy: 'p', rule: 'r', reason: 'ok', policyDigest: 'd', tls: 'mtls', boundary: null,
});

describe('audit log writer', () => {
  it('writes every record as one JSON line, in order, across batches, and flushes on close', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'authproxy-audit-'));
    try {
      const log = await openAuditLog(join(dir, 'audit.log'));
      // More than one 64 KiB batch in a single turn, then more after the first write started.
      for (let i = 0; i < 1500; i++) log.write(record(i));
      await new Promise((r) => setImmediate(r));
      for (let i = 1500; i < 2000; i++) log.write(record(i));
      await log.close();
      const lines = (await readFile(join(dir, 'audit.log'), 'utf8')).trim().split('\n');
      assert.equal(lines.length, 2000);
      assert.deepEqual(lines.map((l) => (JSON.parse(l) as AuditRecord).requestId), Array.from({ length: 2000 }, (_, i) => `r${i}`));
    } finally { await rm(dir, { recursive: true, force: true }); }
  });

  it('keeps lines whole and in order around a line larger than a whole batch, and reuses nothing early', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'authproxy-audit-'));
    try {
      const log = await openAuditLog(join(dir, 'audit.log'));
      const huge = { ...record(1), reason: 'r'.repeat(100 * 1024) };
      // Batches cut while a write is in flight, a line too big for any batch, then more batches.
      for (let i = 0; i < 400; i++) log.write(record(i));
      log.write({ ...huge, requestId: 'huge' });
      for (let i = 400; i < 1200; i++) { log.write(record(i)); if (i % 100 === 0) await new Promise((r) => setImmediate(r)); }
      await log.close();
      const lines = (await readFile(join(dir, 'audit.log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as AuditRecord);
      const expected = [...Array.from({ length: 400 }, (_, i) => `r${i}`), 'huge', ...Array.from({ length: 800 }, (_, i) => `r${i + 400}`)];
      assert.deepEqual(lines.map((l) => l.requestId), expected);
      assert.equal(lines[400]!.reason.length, 100 * 1024);
      assert.ok(lines.every((l, i) => i === 400 || l.reason === 'ok'), 'no line overwritten by a reused block');
    } finally { await rm(dir, { recursive: true, force: true }); }
  });

  it('holds lines that arrive during a write for the next interval instead of writing them as soon as the write ends', async () => {
    const writes: Array<Array<string | null>> = [];
    let release: () => void = () => {};
    const sink: Sink = {
      write: (chunks) => {
        writes.push(Buffer.concat(chunks).toString().trim().split('\n').map((l) => (JSON.parse(l) as AuditRecord).requestId));
        return new Promise<void>((r) => { release = r; });
      },
      close: async () => {},
    };
    const log = batchedLog(sink);
    log.write(record(0));
    while (writes.length === 0) await new Promise((r) => setTimeout(r, 5));
    log.write(record(1));
    log.write(record(2));
    release();
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    assert.deepEqual(writes, [['r0']], 'nothing written right after the first write ended');
    while (writes.length === 1) await new Promise((r) => setTimeout(r, 5));
    release();
    assert.deepEqual(writes, [['r0'], ['r1', 'r2']], 'the two lines went together, one interval later');
    log.write(record(3));
    const closed = log.close();
    while (writes.length === 2) await new Promise((r) => setImmediate(r));
    release();
    await closed;
    assert.deepEqual(writes, [['r0'], ['r1', 'r2'], ['r3']], 'close() writes what is pending without waiting for the interval');
  });

  it('turns a record into its line after the current turn, not inside write(), and writes it', async () => {
    const lines: string[] = [];
    const log = batchedLog({ write: async (chunks) => { lines.push(...Buffer.concat(chunks).toString().trim().split('\n')); }, close: async () => {} });
    let serialized = false;
    const r = record(1);
    Object.defineProperty(r, 'reason', { enumerable: true, get: () => { serialized = true; return 'ok'; } });
    log.write(r);
    assert.equal(serialized, false, 'write() left the record as it was');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(serialized, true, 'serialized once the turn was over');
    await log.close();
    assert.deepEqual(lines.map((l) => JSON.parse(l) as AuditRecord), [{ ...record(1), reason: 'ok' }]);
  });

  it('appends to an existing log instead of truncating it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'authproxy-audit-'));
    try {
      for (const i of [1, 2]) { const log = await openAuditLog(join(dir, 'audit.log')); log.write(record(i)); await log.close(); }
      assert.equal((await readFile(join(dir, 'audit.log'), 'utf8')).trim().split('\n').length, 2);
    } finally { await rm(dir, { recursive: true, force: true }); }
  });

  it('refuses a path it cannot open, naming the setting', async () => {
    await assert.rejects(openAuditLog('/nonexistent-dir/audit.log'), (e: unknown) => e instanceof ConfigError && /auditLog/.test(e.message) && /ENOENT/.test(e.message));
  });
});
