// Seals make the audit log tamper-evident (src/audit/seal.ts): these tests write real logs with
// the writer, sealed by keys and certificates issued by a generated CA, then change them the ways
// someone who can edit the log but does not hold the workload key could, and check that
// `verifyAuditFiles` finds each change and accepts every untouched log.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile, rm, rename, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { openAuditLog, batchedLog, type AuditLog, type Sink } from '../../src/audit/writer.ts';
import { Sealer, type SealKey, type Seal } from '../../src/audit/seal.ts';
import { verifyAuditFiles, type VerifyReport } from '../../src/audit/verify.ts';
import type { AuditRecord } from '../../src/audit/record.ts';
import { createCA, issueCertificate, importSigningKey, generateKeyPair, privateKeyToPem, type PemPair, type KeyType } from '../../src/certs/pki.ts';
import * as x509 from '@peculiar/x509';

const ID = 'spiffe://example.org/ns/prod/sa/orders';

const record = (i: number): AuditRecord => ({
  time: '2026-11-24T00:00:00.000Z', requestId: `r${i}`, direction: 'inbound', event: 'request',
  peer: { principal: 'spiffe://example.org/ns/shop/sa/web', address: '127.0.0.1' }, method: 'GET', path: `/p/${i}`,
  decision: 'allow', status: null, code: null, policy: 'p', rule: 'r', reason: 'ok', policyDigest: 'd', tls: 'mtls', boundary: null,
});

function keyOf(pair: PemPair, principal = ID): SealKey {
  return { key: createPrivateKey(pair.keyPem), chain: [new X509Certificate(pair.certPem)], principal };
}

const problems = (r: VerifyReport): string[] => r.problems.map((p) => `${p.line}: ${p.problem}`);
const lines = async (file: string): Promise<string[]> => (await readFile(file, 'utf8')).split('\n').slice(0, -1);
const put = (file: string, ls: string[]): Promise<void> => writeFile(file, ls.map((l) => `${l}\n`).join(''));
const isSeal = (l: string): boolean => l.startsWith('{"event":"seal"');

describe('audit log seals', () => {
  let dir: string; let ca: PemPair; let cas: X509Certificate[]; let workload: PemPair; let otherCa: PemPair;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'authproxy-seal-'));
    ca = await createCA({ trustDomain: 'example.org' });
    otherCa = await createCA({ trustDomain: 'example.org', commonName: 'not the mesh CA' });
    cas = [new X509Certificate(ca.certPem)];
    workload = await issueCertificate(ca, { spiffeId: ID });
  });
  after(() => rm(dir, { recursive: true, force: true }));

  /** A log of `n` records with a seal after every `every` records and a closing seal. */
  async function writeLog(name: string, n: number, every: number, key = keyOf(workload)): Promise<string> {
    const file = join(dir, name);
    const log = await openAuditLog(file, { sealer: new Sealer(() => key), sealIntervalMs: 0 });
    await writeRecords(log, n, every);
    await log.close();
    return file;
  }
  async function writeRecords(log: AuditLog, n: number, every: number, from = 0): Promise<void> {
    for (let i = from; i < from + n; i++) {
      log.write(record(i));
      if ((i - from + 1) % every === 0) await sealNow(log);
    }
  }
  // The writer's interval step, run by the test at the points it chooses instead of by the clock
  // (after the turn's records are serialized, as they are when the timer fires).
  const sealNow = async (log: AuditLog): Promise<void> => {
    await new Promise((r) => setImmediate(r));
    (log as unknown as { seal(): void }).seal();
  };

  it('an untouched log verifies: every line sealed, the chain closed by the sidecar', async () => {
    const file = await writeLog('plain.log', 250, 100);
    const all = await lines(file);
    assert.equal(all.filter(isSeal).length, 3, 'seals after 100 and 200 records, and the closing one after the last 50');
    const r = await verifyAuditFiles([file], cas);
    assert.deepEqual(problems(r), []);
    assert.equal(r.files[0]!.sealed, 250);
    assert.equal(r.files[0]!.unsealed, 0);
    assert.equal(r.chains.length, 1);
    assert.equal(r.chains[0]!.end, 'close');
    assert.deepEqual(r.chains[0]!.principals, [ID]);
    const closing = JSON.parse(all.at(-1)!) as Seal;
    assert.equal(closing.end, 'close');
    assert.equal(closing.lines, 50);
  });

  it('covers lines larger than a whole write block and batches cut mid-interval', async () => {
    const file = join(dir, 'big.log');
    const log = await openAuditLog(file, { sealer: new Sealer(() => keyOf(workload)), sealIntervalMs: 0 });
    for (let i = 0; i < 600; i++) log.write(record(i));
    log.write({ ...record(600), reason: 'x'.repeat(100 * 1024) });
    await sealNow(log);
    for (let i = 601; i < 1200; i++) log.write(record(i));
    await log.close();
    const r = await verifyAuditFiles([file], cas);
    assert.deepEqual(problems(r), []);
    assert.equal(r.files[0]!.sealed, 1200);
  });

  for (const keyType of ['ec-p256', 'ec-p384', 'rsa-2048'] as KeyType[]) {
    it(`signs with the workload's own ${keyType} key, and the signature is checked`, async () => {
      const pair = await issueCertificate(ca, { spiffeId: ID, keyType });
      const file = await writeLog(`${keyType}.log`, 20, 10, keyOf(pair));
      assert.deepEqual(problems(await verifyAuditFiles([file], cas)), []);
      const all = await lines(file);
      const seal = all.findIndex(isSeal);
      all[seal] = all[seal]!.replace('"dropped":0', '"dropped":1');
      await put(file, all);
      assert.match(problems(await verifyAuditFiles([file], cas)).join('\n'), new RegExp(`^${seal + 1}: the seal's signature does not verify`, 'm'));
    });
  }

  const tampering: Array<[string, (ls: string[]) => void, RegExp]> = [
    ['a record changed', (ls) => { ls[5] = ls[5]!.replace('"allow"', '"deny"'); }, /^11: lines 1–10: not what this seal covers \(10 lines sealed, 10 found\)/m],
    ['a record removed', (ls) => { ls.splice(3, 1); }, /^10: lines 1–9: not what this seal covers \(10 lines sealed, 9 found\)/m],
    ['a record added', (ls) => { ls.splice(3, 0, ls[3]!); }, /^12: lines 1–11: not what this seal covers/m],
    ['two records swapped', (ls) => { [ls[1], ls[2]] = [ls[2]!, ls[1]!]; }, /^11: lines 1–10: not what this seal covers/m],
    ['a record moved across a seal', (ls) => { const [l] = ls.splice(2, 1); ls.splice(12, 0, l!); }, /^10: lines 1–9: not what this seal covers.*\n^22: lines 11–21: not what this seal covers/m],
    ['a seal and the records it covered removed', (ls) => { ls.splice(11, 11); }, /^22: seal 2 of chain .* does not follow the seal before it \(seal 0/m],
    ['a seal\'s signature cut off', (ls) => { ls[21] = ls[21]!.replace(/,"sig":"[^"]+"}$/, '}'); }, /^33: lines 12–32: not what this seal covers \(10 lines sealed, 21 found\)/m],
    ['a seal removed', (ls) => { ls.splice(21, 1); }, /^32: lines 12–31: not what this seal covers/m],
    ['the closing seal removed', (ls) => { ls.pop(); }, /./],
  ];
  for (const [what, change, expected] of tampering) {
    it(`finds ${what}`, async () => {
      const file = await writeLog(`t-${what.replaceAll(' ', '-')}.log`, 30, 10);
      const all = await lines(file);
      assert.deepEqual([10, 21, 32, 33].map((i) => isSeal(all[i]!)), [true, true, true, true], 'seals where the test expects them');
      change(all);
      await put(file, all);
      const r = await verifyAuditFiles([file], cas);
      if (what === 'the closing seal removed') {
        // What cutting the end back to a seal does: nothing to find but the missing closing seal.
        assert.deepEqual(problems(r), []);
        assert.equal(r.chains[0]!.end, null);
        return;
      }
      assert.match(problems(r).join('\n'), expected);
    });
  }

  it('refuses a seal signed by a certificate the bundle does not vouch for, even when self-consistent', async () => {
    const forger = await issueCertificate(otherCa, { spiffeId: ID });
    const file = await writeLog('forged.log', 10, 10, keyOf(forger));
    const r = await verifyAuditFiles([file], cas);
    assert.match(problems(r).join('\n'), /^11: signed by spiffe:\/\/example\.org\/ns\/prod\/sa\/orders that does not chain to the trust bundle given/m);
  });

  it('refuses a signer certified by a workload\'s own certificate: only a CA vouches, even for a leaf that names no key usage', async () => {
    // A CA that issues leaves without keyUsage (OpenSSL's checkIssued then lets any of them issue):
    // the pod holding such a leaf's key makes itself a certificate for another workload.
    const { key: caKey, alg } = await importSigningKey(ca.keyPem);
    const caCert = new x509.X509Certificate(ca.certPem);
    const leafKeys = await generateKeyPair();
    const leaf = await x509.X509CertificateGenerator.create({
      serialNumber: '0a01', subject: 'CN=web', issuer: caCert.subject, notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3_600_000),
      signingAlgorithm: alg, publicKey: leafKeys.publicKey, signingKey: caKey,
      extensions: [new x509.BasicConstraintsExtension(false, undefined, true), new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'spiffe://example.org/ns/shop/sa/web' }])],
    });
    const leafPair = { certPem: leaf.toString('pem'), keyPem: await privateKeyToPem(leafKeys.privateKey) };
    const minted = await issueCertificate(leafPair, { spiffeId: ID });
    const key: SealKey = { key: createPrivateKey(minted.keyPem), chain: [new X509Certificate(minted.certPem), new X509Certificate(leafPair.certPem)], principal: ID };
    const file = await writeLog('minted.log', 5, 10, key);
    assert.match(problems(await verifyAuditFiles([file], cas)).join('\n'), /that does not chain to the trust bundle given/);
  });

  it('refuses a seal whose claimed principal is not the one its certificate names', async () => {
    const file = await writeLog('liar.log', 10, 10, keyOf(workload, 'spiffe://example.org/ns/ops/sa/admin'));
    assert.match(problems(await verifyAuditFiles([file], cas)).join('\n'),
      /claims spiffe:\/\/example\.org\/ns\/ops\/sa\/admin but its certificate names spiffe:\/\/example\.org\/ns\/prod\/sa\/orders/);
  });

  it('finds records rewritten and resealed with a key of the attacker\'s own', async () => {
    const file = await writeLog('resealed.log', 10, 10);
    const all = await lines(file);
    all[4] = all[4]!.replace('"allow"', '"deny"');
    // The attacker recomputes the digest and signs a new seal, with a certificate from another CA.
    const forger = await issueCertificate(otherCa, { spiffeId: ID });
    const sealer = new Sealer(() => keyOf(forger));
    sealer.cover(Buffer.from(all.slice(0, 10).map((l) => `${l}\n`).join('')), 10);
    all[10] = sealer.seal().slice(0, -1);
    await put(file, all.slice(0, 11));
    assert.match(problems(await verifyAuditFiles([file], cas)).join('\n'), /does not chain to the trust bundle given/);
    // And a seal edited to match, keeping the real signature, fails its signature.
    const real = JSON.parse((await lines(await writeLog('edited.log', 10, 10)))[10]!) as Seal & { sig: string };
    const { sig, ...body } = real;
    const edited = { ...body, lines: 9 };
    const line = `${JSON.stringify(edited).slice(0, -1)},"sig":"${sig}"}`;
    const file2 = join(dir, 'edited2.log');
    await put(file2, [...all.slice(0, 9), line]);
    assert.match(problems(await verifyAuditFiles([file2], cas)).join('\n'), /signature does not verify/);
  });

  it('follows the chain across a rotation, and finds rotated files given out of order or one left out', async () => {
    const file = join(dir, 'rot.log');
    const log = await openAuditLog(file, { sealer: new Sealer(() => keyOf(workload)), sealIntervalMs: 0 });
    await writeRecords(log, 15, 10);
    await rename(file, `${file}.2`);
    await log.reopen();
    await writeRecords(log, 15, 10, 15);
    await rename(file, `${file}.1`);
    await log.reopen();
    await writeRecords(log, 5, 10, 30);
    await log.close();
    const files = [`${file}.2`, `${file}.1`, file];
    const r = await verifyAuditFiles(files, cas);
    assert.deepEqual(problems(r), []);
    assert.deepEqual(r.files.map((f) => f.sealed), [15, 15, 5]);
    assert.equal(r.chains.length, 1);
    assert.equal(JSON.parse((await lines(`${file}.2`)).at(-1)!).end, 'rotate', 'a rotated file ends with its seal');
    // Each file's first seal carries the certificate, so a file read alone still verifies its signatures.
    const alone = await verifyAuditFiles([`${file}.1`], cas);
    assert.deepEqual(problems(alone), []);
    assert.match(alone.notes.join('\n'), /continues a chain from a file not given/);
    assert.match(problems(await verifyAuditFiles([`${file}.1`, `${file}.2`, file], cas)).join('\n'), /does not follow the seal before it/);
    assert.match(problems(await verifyAuditFiles([`${file}.2`, file], cas)).join('\n'), /does not follow the seal before it/);
  });

  it('tells a sidecar killed after its last seal from tampering: the next run appending to the file starts a new chain', async () => {
    const file = join(dir, 'crash.log');
    const first = await openAuditLog(file, { sealer: new Sealer(() => keyOf(workload)), sealIntervalMs: 0 });
    await writeRecords(first, 12, 10);
    // Killed: the two records after the seal were written, the closing seal never was.
    await new Promise((r) => setTimeout(r, 50));
    const killed = await lines(file);
    assert.equal(killed.length, 13);
    const second = await openAuditLog(file, { sealer: new Sealer(() => keyOf(workload)), sealIntervalMs: 0 });
    await writeRecords(second, 5, 10, 100);
    await second.close();
    await (first as unknown as { sink: Sink }).sink.close();
    const r = await verifyAuditFiles([file], cas);
    assert.deepEqual(problems(r), []);
    assert.equal(r.chains.length, 2);
    assert.match(r.notes.join('\n'), /lines 12–13: before chain .* started, sealed by nothing/);
    assert.match(r.notes.join('\n'), /ends without its closing seal/);
  });

  it('a run killed in the middle of a line: the next run ends that line before its own, and the log verifies', async () => {
    const file = join(dir, 'cut-line.log');
    const first = await openAuditLog(file, { sealer: new Sealer(() => keyOf(workload)), sealIntervalMs: 0 });
    await writeRecords(first, 10, 10);
    await new Promise((r) => setTimeout(r, 50));
    await (first as unknown as { sink: Sink }).sink.close();
    // Killed while writing: part of a line reached the file.
    await appendFile(file, JSON.stringify(record(10)).slice(0, 60));
    const second = await openAuditLog(file, { sealer: new Sealer(() => keyOf(workload)), sealIntervalMs: 0 });
    await writeRecords(second, 5, 10, 100);
    await second.close();
    const r = await verifyAuditFiles([file], cas);
    assert.deepEqual(problems(r), []);
    assert.match(r.notes.join('\n'), /line 12: before chain .* started, sealed by nothing/);
    assert.equal(r.files[0]!.sealed, 15);
  });

  it('seals records that arrive while the closing seal is written: the file still ends with a closing seal', async () => {
    const file = join(dir, 'late.log');
    const log = await openAuditLog(file, { sealer: new Sealer(() => keyOf(workload)), sealIntervalMs: 0 });
    await writeRecords(log, 5, 10);
    const closed = log.close();
    log.write(record(5));
    await closed;
    const all = await lines(file);
    assert.equal(all.length, 8);
    assert.equal((JSON.parse(all.at(-1)!) as Seal).end, 'close');
    const r = await verifyAuditFiles([file], cas);
    assert.deepEqual(problems(r), []);
    assert.equal(r.files[0]!.unsealed, 0);
    assert.equal(r.files[0]!.sealed, 6);
  });

  it('a sidecar killed after a rotation, before its next seal: the next run appending to the new file verifies', async () => {
    const file = join(dir, 'rot-crash.log');
    const first = await openAuditLog(file, { sealer: new Sealer(() => keyOf(workload)), sealIntervalMs: 0 });
    await writeRecords(first, 5, 5);
    await rename(file, `${file}.1`);
    await first.reopen();
    await writeRecords(first, 3, 10, 5);
    // Killed: the three records reached the new file, no seal after them.
    await new Promise((r) => setTimeout(r, 50));
    await (first as unknown as { sink: Sink }).sink.close();
    const second = await openAuditLog(file, { sealer: new Sealer(() => keyOf(workload)), sealIntervalMs: 0 });
    await writeRecords(second, 4, 10, 100);
    await second.close();
    const r = await verifyAuditFiles([`${file}.1`, file], cas);
    assert.deepEqual(problems(r), []);
    assert.match(r.notes.join('\n'), /lines 1–3: before chain .* started, sealed by nothing/);
    assert.equal(r.chains.length, 2);
    assert.equal(r.chains[0]!.end, 'rotate');
  });

  it('finds a whole run copied: appended again to its file, or a file given twice', async () => {
    const file = await writeLog('copied.log', 15, 10);
    const run = await readFile(file);
    const twice = join(dir, 'copied-twice.log');
    await writeFile(twice, Buffer.concat([run, run]));
    assert.match(problems(await verifyAuditFiles([twice], cas)).join('\n'), /^28: chain .* starts again \(seal 0\) after its seals were read/m);
    assert.match(problems(await verifyAuditFiles([file, file], cas)).join('\n'), /starts again/);
    assert.deepEqual(problems(await verifyAuditFiles([file], cas)), []);
  });

  it('reads a line of tens of megabytes in time linear in its length', async () => {
    const file = join(dir, 'one-long-line.log');
    await writeFile(file, Buffer.alloc(32 * 1024 * 1024, 0x61));
    const started = Date.now();
    const r = await verifyAuditFiles([file], cas);
    assert.ok(Date.now() - started < 4000, `took ${Date.now() - started} ms`);
    assert.equal(r.files[0]!.lines, 1);
    assert.equal(r.files[0]!.incompleteLastLine, true);
  });

  it('links each run to the last seal of the file it appends to, and finds a run removed, inserted, or cut back', async () => {
    const file = join(dir, 'runs.log');
    const runs: string[][] = [];
    for (let run = 0; run < 3; run++) {
      const before = (await readFile(file, 'utf8').catch(() => '')).split('\n').length - 1;
      const log = await openAuditLog(file, { sealer: new Sealer(() => keyOf(workload)), sealIntervalMs: 0 });
      await writeRecords(log, 12, 5, run * 100);
      await log.close();
      runs.push((await lines(file)).slice(before));
    }
    const clean = await verifyAuditFiles([file], cas);
    assert.deepEqual(problems(clean), []);
    assert.deepEqual(clean.chains.map((c) => c.linked), [false, true, true], 'the first run had no seal to follow');
    const [a, b, c] = runs as [string[], string[], string[]];
    const follow = /does not follow the seal before it .*the last seal of the log it appended to/;
    // Run b removed: c follows a seal that is not before it.
    await put(file, [...a, ...c]);
    assert.match(problems(await verifyAuditFiles([file], cas)).join('\n'), follow);
    // A run of another replica (same identity, its own file) put between b and c.
    const other = join(dir, 'replica.log');
    const log = await openAuditLog(other, { sealer: new Sealer(() => keyOf(workload)), sealIntervalMs: 0 });
    await writeRecords(log, 3, 5, 900);
    await log.close();
    await put(file, [...a, ...b, ...(await lines(other)), ...c]);
    assert.match(problems(await verifyAuditFiles([file], cas)).join('\n'), follow);
    // Run b cut back to a seal (its last records and closing seal gone): c's link shows it.
    await put(file, [...a, ...b.slice(0, 6), ...c]);
    assert.match(problems(await verifyAuditFiles([file], cas)).join('\n'), follow);
    await put(file, [...a, ...b, ...c]);
    assert.deepEqual(problems(await verifyAuditFiles([file], cas)), []);
  });

  it('links a run to the last seal even when a killed run left more than 64 KiB of lines after it', async () => {
    const file = join(dir, 'far.log');
    const first = await openAuditLog(file, { sealer: new Sealer(() => keyOf(workload)), sealIntervalMs: 0 });
    await writeRecords(first, 10, 10);
    await writeRecords(first, 300, 1000, 10); // ~150 KB, no seal after them
    await new Promise((r) => setTimeout(r, 50));
    await (first as unknown as { sink: Sink }).sink.close();
    const second = await openAuditLog(file, { sealer: new Sealer(() => keyOf(workload)), sealIntervalMs: 0 });
    await writeRecords(second, 5, 10, 1000);
    await second.close();
    const r = await verifyAuditFiles([file], cas);
    assert.deepEqual(problems(r), []);
    assert.deepEqual(r.chains.map((c) => c.linked), [false, true]);
  });

  it('finds lines put between a run\'s closing seal and the next run\'s first seal: no killed run leaves them there', async () => {
    const file = await writeLog('two-runs.log', 5, 10);
    const second = await openAuditLog(file, { sealer: new Sealer(() => keyOf(workload)), sealIntervalMs: 0 });
    await writeRecords(second, 5, 10, 100);
    await second.close();
    const clean = await verifyAuditFiles([file], cas);
    assert.deepEqual(problems(clean), []);
    assert.equal(clean.chains.length, 2);
    const all = await lines(file);
    assert.equal(JSON.parse(all[5]!).end, 'close');
    all.splice(6, 0, JSON.stringify(record(666)));
    await put(file, all);
    assert.match(problems(await verifyAuditFiles([file], cas)).join('\n'), /^7: line 7: before chain .* started, sealed by nothing, yet the chain before ended with its close seal: they were added/m);
  });

  it('skips the operational log and other text interleaved with the records, and still finds a record disguised as either', async () => {
    const file = await writeLog('mixed.log', 10, 10);
    const all = await lines(file);
    const opLine = '{"time":"2026-11-24T17:18:01.382Z","level":"info","msg":"ready","inbound":"127.0.0.1:15443"}';
    const mixed = [opLine, 'authproxy dev mode', ...all.slice(0, 4), opLine, '', ...all.slice(4)];
    await put(file, mixed);
    const r = await verifyAuditFiles([file], cas);
    assert.deepEqual(problems(r), []);
    assert.equal(r.files[0]!.skipped, 4);
    assert.equal(r.files[0]!.sealed, 10);
    // The fourth record rewritten as an operational line (or as text) is skipped, so its seal misses it.
    for (const disguise of [(l: string) => l.replace(/^\{"time":"([^"]+)",/, '{"time":"$1","level":"info","msg":"x",'), (l: string) => ` ${l}`]) {
      const changed = [...all];
      changed[3] = disguise(changed[3]!);
      await put(file, changed);
      assert.match(problems(await verifyAuditFiles([file], cas)).join('\n'), /^11: lines 1–10: not what this seal covers \(10 lines sealed, 9 found\)/m);
    }
  });

  it('reports lines after the last seal, and a last line cut short, as notes, and a log with no seal at all as a problem', async () => {
    const file = await writeLog('tail.log', 10, 10);
    await appendFile(file, `${JSON.stringify(record(99))}\n{"time":"2026`);
    const r = await verifyAuditFiles([file], cas);
    assert.deepEqual(problems(r), []);
    assert.equal(r.files[0]!.unsealed, 2);
    assert.equal(r.files[0]!.incompleteLastLine, true);
    const unsealed = join(dir, 'unsealed.log');
    const log = await openAuditLog(unsealed);
    for (let i = 0; i < 5; i++) log.write(record(i));
    await log.close();
    assert.match(problems(await verifyAuditFiles([unsealed], cas)).join('\n'), /no seal in the files given/);
  });

  it('ends a rotated file with its seal even when a hung sink has stopped the interval seals, so both files still verify', async () => {
    const files: Buffer[][] = [[]];
    let release: () => void = () => {};
    let hung = true;
    const sink: Sink = {
      write: async (chunks) => {
        if (hung) await new Promise<void>((r) => { release = r; });
        files.at(-1)!.push(...chunks);
      },
      close: async () => {},
      reopen: async () => { files.push([]); },
    };
    const log = batchedLog(sink, { sealer: new Sealer(() => keyOf(workload)), sealIntervalMs: 0, maxBacklogBytes: 4096 });
    log.write(record(0));
    await sealNow(log);
    await new Promise((r) => setTimeout(r, 30)); // the first write starts, and hangs
    // Records keep coming and are dropped; interval seals pile up until the backlog is a block past its limit.
    for (let i = 1; i < 400; i++) { log.write(record(i)); await sealNow(log); }
    const rotated = log.reopen();
    hung = false;
    release();
    await rotated;
    log.write(record(400));
    await log.close();
    const paths = await Promise.all(files.map(async (chunks, i) => { const f = join(dir, `hung-${i}.log`); await writeFile(f, Buffer.concat(chunks)); return f; }));
    assert.equal(paths.length, 2);
    const old = await lines(paths[0]!);
    assert.equal((JSON.parse(old.at(-1)!) as Seal).end, 'rotate');
    const r = await verifyAuditFiles(paths, cas);
    assert.deepEqual(problems(r), []);
    assert.ok(r.dropped > 300, 'the drops are in the seals');
  });

  it('counts in the next seal the records it had to drop and those a failed write lost, and the file still verifies', async () => {
    // The first write fails (ENOSPC), the second hangs until released, the rest go through.
    let calls = 0; let release: () => void = () => {};
    const file = join(dir, 'lost.log');
    const sink: Sink = {
      write: async (chunks) => {
        if (++calls === 1) throw Object.assign(new Error('no space'), { code: 'ENOSPC' });
        if (calls === 2) await new Promise<void>((r) => { release = r; });
        await appendFile(file, Buffer.concat(chunks));
      },
      close: async () => {},
    };
    const log = batchedLog(sink, { sealer: new Sealer(() => keyOf(workload)), sealIntervalMs: 0, maxBacklogBytes: 4096 });
    for (let i = 0; i < 3; i++) log.write(record(i));
    await new Promise((r) => setTimeout(r, 30));
    // The first write failed (3 records lost); the next hangs while 40 more come: most are dropped.
    for (let i = 3; i < 43; i++) log.write(record(i));
    await sealNow(log);
    await new Promise((r) => setTimeout(r, 30));
    release();
    await log.close();
    const all = await lines(file);
    const seals = all.filter(isSeal).map((l) => JSON.parse(l) as Seal);
    assert.equal(seals.reduce((a, s) => a + s.lost, 0), 3, 'the failed write\'s records');
    assert.ok(seals.reduce((a, s) => a + s.dropped, 0) > 0, 'records dropped while the sink hung');
    // What a failed write lost is not in the digest of the seal after it: the log verifies.
    const r = await verifyAuditFiles([file], cas);
    assert.deepEqual(problems(r), []);
    assert.deepEqual(r.notes, []);
    assert.equal(r.lost, 3);
    assert.equal(r.chains[0]!.end, 'close');
    assert.equal(r.files[0]!.sealed, all.length - seals.length);
  });

  for (const [what, failing] of [['records', [3, 5]], ['seal lines', [2, 4]]] as const) {
  it(`verifies a log whose writes of ${what} failed half way (a disk filling up): the broken line is ended and sealed as it is`, async () => {
    const file = join(dir, `partial-${failing.join('-')}.log`);
    // Those writes (a batch of records and its seal alternate) reach the file in part, then fail; the others go through.
    let calls = 0;
    const sink: Sink = {
      write: async (chunks) => {
        const data = Buffer.concat(chunks);
        if ((failing as readonly number[]).includes(++calls)) {
          const written = Math.min(data.length - 1, 150);
          await appendFile(file, data.subarray(0, written));
          throw Object.assign(new Error('no space'), { code: 'ENOSPC', written });
        }
        await appendFile(file, data);
      },
      close: async () => {},
    };
    const log = batchedLog(sink, { sealer: new Sealer(() => keyOf(workload)), sealIntervalMs: 0 });
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 5; i++) log.write(record(round * 10 + i));
      await sealNow(log);
      await new Promise((r) => setTimeout(r, 30));
    }
    await log.close();
    assert.ok(calls >= 6, `the failures happened (${calls} writes)`);
    const r = await verifyAuditFiles([file], cas);
    assert.deepEqual(problems(r), []);
    assert.equal(r.chains[0]!.end, 'close');
    assert.equal(r.files[0]!.unsealed, 0);
    if (what === 'records') assert.ok(r.lost >= 5, `records cut short or never written are counted lost (${r.lost})`);
    else assert.ok((await lines(file)).some((l) => l.startsWith('{"event":"seal"') && !l.includes('"sig"')), 'a seal line cut short is in the file');
  });
  }
});
