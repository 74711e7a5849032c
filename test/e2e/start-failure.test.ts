// A start that fails part-way (a port in use, a size node:http refuses) must leave nothing open:
// before, the listeners already bound kept the process alive, serving traffic, with SIGTERM and
// SIGINT swallowed by the stop listener, so Kubernetes saw a live pod it could only SIGKILL.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, connect, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { makePki, type TestPki } from '../support/pki.ts';
import { startSidecar, BIN, REPO } from '../support/sidecar.ts';
import { buildConfig } from '../../src/config/config.ts';
import { start } from '../../src/runtime/start.ts';

async function holdPort(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

/** A port free at the time of asking (listen on 0, close). */
async function freePort(): Promise<number> {
  const { server, port } = await holdPort();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(false); });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

/** Runs the CLI until it exits by itself; SIGKILLs it (and reports that) after timeoutMs. */
function runUntilExit(args: string[], timeoutMs = 8_000, cwd = REPO): Promise<{ code: number | null; stderr: string; ms: number; killed: boolean }> {
  const t0 = Date.now();
  const p = spawn(process.execPath, [BIN, ...args], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  p.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  let killed = false;
  const timer = setTimeout(() => { killed = true; p.kill('SIGKILL'); }, timeoutMs);
  return new Promise((resolve) => p.on('close', (code) => { clearTimeout(timer); resolve({ code, stderr, ms: Date.now() - t0, killed }); }));
}

function pkiArgs(pki: TestPki): string[] {
  return ['--upstream', 'http://127.0.0.1:9', '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca, '--audit-log', '/dev/null'];
}

describe('a start that fails part-way', () => {
  it('with --outbound-listen on a port in use: exits 1 at once naming the address, and the inbound and admin ports are free', async () => {
    const pki = await makePki(); const held = await holdPort();
    try {
      const inPort = await freePort(); const adminPort = await freePort();
      const r = await runUntilExit([...pkiArgs(pki), '--listen', `127.0.0.1:${inPort}`, '--admin-listen', `127.0.0.1:${adminPort}`,
        '--outbound-listen', `127.0.0.1:${held.port}`]);
      assert.equal(r.killed, false, `still running after 8 s (a failed start must exit); stderr:\n${r.stderr}`);
      assert.equal(r.code, 1, r.stderr);
      assert.ok(r.ms < 5_000, `exited after ${r.ms} ms`);
      assert.match(r.stderr, new RegExp(`authproxy: listen EADDRINUSE.*127\\.0\\.0\\.1:${held.port}`));
      assert.doesNotMatch(r.stderr, /"msg":"ready"/);
      assert.ok(await refused(inPort), 'inbound port refuses connections');
      assert.ok(await refused(adminPort), 'admin port refuses connections');
    } finally { held.server.close(); await pki.cleanup(); }
  });

  it('with --listen on a port in use: exits 1 at once naming the address, and the admin port is free', async () => {
    const pki = await makePki(); const held = await holdPort();
    try {
      const adminPort = await freePort();
      const r = await runUntilExit([...pkiArgs(pki), '--listen', `127.0.0.1:${held.port}`, '--admin-listen', `127.0.0.1:${adminPort}`,
        '--outbound-listen', '127.0.0.1:0']);
      assert.equal(r.killed, false, `still running after 8 s (a failed start must exit); stderr:\n${r.stderr}`);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`authproxy: listen EADDRINUSE.*127\\.0\\.0\\.1:${held.port}`));
      assert.ok(await refused(adminPort), 'admin port refuses connections');
    } finally { held.server.close(); await pki.cleanup(); }
  });

  it('in process: start() rejects and has already closed the listeners it opened', async () => {
    const pki = await makePki(); const held = await holdPort();
    try {
      const inPort = await freePort(); const adminPort = await freePort();
      const config = buildConfig([{ upstream: 'http://127.0.0.1:9', cert: pki.server.cert, key: pki.server.key, ca: [pki.ca], auditLog: '/dev/null',
        listen: `127.0.0.1:${inPort}`, adminListen: `127.0.0.1:${adminPort}`, outboundListen: `127.0.0.1:${held.port}` }]);
      await assert.rejects(start(config), /EADDRINUSE/);
      // No wait: by the time start() rejects, the ports are closed.
      assert.ok(await refused(inPort), 'inbound port refuses connections');
      assert.ok(await refused(adminPort), 'admin port refuses connections');
    } finally { held.server.close(); await pki.cleanup(); }
  });

  it('--max-header-bytes too large for node:http is a config error (exit 2) naming the flag, before anything starts', async () => {
    const r = await runUntilExit(['--upstream', 'http://127.0.0.1:9', '--max-header-bytes', '99999999999g', '--listen', '127.0.0.1:0',
      '--admin-listen', '127.0.0.1:0', '--outbound-listen', '127.0.0.1:0']);
    assert.equal(r.killed, false, `still running after 8 s; stderr:\n${r.stderr}`);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /authproxy: field maxHeaderBytes: '99999999999g' is larger than the largest size accepted.*--max-header-bytes/);
  });
});

describe('the outbound listener off loopback', () => {
  it('warns at start that anyone who can reach it can use the workload\'s tokens; on loopback it does not', async () => {
    const pki = await makePki();
    try {
      const open = await startSidecar([...pkiArgs(pki), '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--outbound-listen', '0.0.0.0:0']);
      try {
        const warning = await open.waitForLog(/outbound listener is not on loopback/);
        assert.equal(warning.level, 'warn');
        assert.match(String(warning.msg), /anyone who can reach this address .* bearer tokens/);
      } finally { await open.stop(); }
      const local = await startSidecar([...pkiArgs(pki), '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--outbound-listen', '127.0.0.1:0']);
      try { assert.doesNotMatch(local.stderr(), /not on loopback/); } finally { await local.stop(); }
    } finally { await pki.cleanup(); }
  });
});

