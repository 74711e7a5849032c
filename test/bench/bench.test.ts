// The benchmark harness end to end on a tiny configuration (`--smoke`: 200 requests per path):
// real app, real sidecars, real load-generator processes. Checks that every row of the report is
// produced, measured or skipped with its reason; never how fast anything was.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../support/sidecar.ts';
import type { BenchReport } from '../../bench/lib/report.ts';

describe('npm run bench -- --smoke', () => {
  let out: string; let code: number | null; let stderr: string; let report: BenchReport; let md: string; let svg: string;

  before(async () => {
    out = await mkdtemp(join(tmpdir(), 'authproxy-bench-test-'));
    ({ code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(process.execPath, ['bench/run.ts', '--smoke', '--out', out], { cwd: REPO, timeout: 110_000, maxBuffer: 16 << 20 },
        (err, _stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stderr }));
    }));
    report = JSON.parse(await readFile(join(out, 'latest.json'), 'utf8')) as BenchReport;
    md = await readFile(join(out, 'latest.md'), 'utf8');
    svg = await readFile(join(out, 'latency.svg'), 'utf8');
  });
  after(async () => { await rm(out, { recursive: true, force: true }); });

  it('exits 0 and writes the markdown report, the JSON results and the SVG chart, with no failed measurement', () => {
    assert.equal(code, 0, stderr);
    assert.deepEqual(report.notes, []);
    assert.match(md, /^# authproxy benchmark/);
    assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  });

  it('measures the direct baseline, both authproxy inbound rows and the bare Node floor with every request answered 200', () => {
    for (const id of ['direct', 'authproxy-tcp', 'authproxy-unix', 'node-floor']) {
      const p = report.paths.find((x) => x.id === id);
      assert.ok(p, `row ${id} missing`);
      assert.equal(p.skipped, null, `${id}: ${p.skipped ?? ''}`);
      assert.equal(p.rate?.latency.count, 200, `${id} fixed-rate sample count`);
      assert.equal(p.rate?.errors, 0, `${id} fixed-rate errors`);
      assert.ok((p.saturate?.completed ?? 0) > 0 && p.saturate?.errors === 0, `${id} saturation`);
      assert.ok((p.handshake?.completed ?? 0) > 0 && p.handshake?.errors === 0, `${id} handshakes`);
      assert.ok(p.peak && p.peak.hwmKb > 0, `${id} peak memory read from /proc`);
      assert.ok(p.peak.anonKb > 0 && p.peak.anonKb < p.peak.rssKb, `${id} private memory is part of the resident set, not all of it`);
      assert.ok(md.includes(`| ${p.label} | 200 | ${p.rate.latency.p50.toFixed(3)} |`), `${id} latency row in the markdown`);
      // Smoke runs two rounds of 100: each round's own p50, and CPU read from /proc for the rows' processes.
      assert.equal(p.rateRoundP50s?.length, report.settings.rounds, `${id} p50 of each fixed-rate round`);
      assert.ok(p.rateRoundP50s.every((v) => v > 0 && v <= p.rate!.latency.max), `${id} round p50s are latencies of this row`);
      assert.ok(md.includes(`${p.label} ${p.rateRoundP50s.map((v) => v.toFixed(3)).join('/')}`), `${id} round p50s in the markdown`);
      // /proc counts in 10 ms ticks: the app alone may not fill one in a smoke round; a proxy does.
      if (id !== 'direct') assert.ok((p.rateCpuUsPerRequest ?? 0) > 0, `${id} CPU per request at the fixed rate`);
      assert.ok(svg.includes(`data-series="${p.label}"`), `${id} line in the chart`);
    }
  });

  it('reports nginx and haproxy as measured when installed and as skipped with the install hint otherwise', () => {
    for (const id of ['nginx', 'haproxy']) {
      const p = report.paths.find((x) => x.id === id)!;
      if (p.skipped) assert.match(p.skipped, new RegExp(`${id} not installed \\(apt-get install ${id}\\)`));
      else assert.equal(p.rate?.errors, 0);
      assert.ok(md.includes(`| ${p.label} |`));
    }
  });

  it('lists the outbound and sidecar-to-sidecar rows, measured or pending with the reason', () => {
    for (const id of ['outbound-plain', 'outbound-cached-token', 'sidecar-to-sidecar']) {
      const p = report.paths.find((x) => x.id === id);
      assert.ok(p, `row ${id} missing`);
      if (p.skipped) assert.ok(md.includes(p.skipped));
      else assert.equal(p.rate?.errors, 0, `${id} requests refused or failed`);
    }
  });

  it('records the sidecar start-up time, the forwarding micro-benchmark and every budget of the issue', () => {
    assert.equal(report.ready[0]?.readyMs.length, 1);
    assert.ok(report.ready[0]!.readyMs[0]! > 0);
    assert.deepEqual(report.micro.map((m) => m.skipped), [null, null, null]);
    for (const m of report.micro) assert.equal((m.saturate?.errors ?? 0) + (m.rate?.errors ?? 0), 0, `${m.label} errors`);
    for (const budget of ['added p50 ≤ 0.25 ms', 'added p99 ≤ 1 ms', 'saturation ≥ 60% of nginx', 'peak RSS ≤ 80 MB', 'ready ≤ 400 ms', 'outbound cached token within 10%']) {
      assert.ok(md.includes(`| ${budget}`), `budget "${budget}" in the report`);
    }
    const floor = report.paths.find((x) => x.id === 'node-floor')!;
    for (const budget of ['added p50 ≤ 0.25 ms', 'added p99 ≤ 1 ms', 'peak RSS ≤ 80 MB']) {
      assert.ok(md.includes(`| ${budget} | ${floor.label} |`), `budget "${budget}" judged on the Node floor too`);
    }
  });
});
