// Shared by the token and outbound end-to-end tests: the dev issuer as its own process (so the
// test counts token requests at the issuer, from its log), requests through the outbound
// listener the way HTTP_PROXY clients send them, JIT approvals through the issuer's channel, and a
// drip-feeding issuer for the timeouts.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, request as httpRequest, type Agent as HttpAgent, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BIN, REPO } from '../support/sidecar.ts';
import type { TestPki } from '../support/pki.ts';

export interface IssuerProcess {
  proc: ChildProcess;
  url: string;
  stderr(): string;
  /** Tokens the issuer reports having issued so far. */
  issued(): number;
  /** Resolves once the issuer has issued `n` tokens in all. */
  waitForIssued(n: number, timeoutMs?: number): Promise<void>;
  approve(client: string, role: string, forMs: number, audience?: string): Promise<string>;
  stop(): Promise<void>;
}

/**
 * The dev issuer over HTTPS with a certificate for localhost from the test CA, its clients read
 * from `clients` (a clients.yaml, written into `work`).
 */
export async function startHttpsIssuer(pki: TestPki, work: string, clients: string): Promise<IssuerProcess> {
  const pair = await pki.issue('issuer', { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  await writeFile(join(work, 'clients.yaml'), clients);
  return startIssuerProcess(['--clients', join(work, 'clients.yaml'), '--cert', pair.cert, '--key', pair.key, '--ca', pki.ca], pki.caPair.certPem);
}

/** `caPem`: the CA an HTTPS issuer's certificate chains to (for the approvals channel). */
export async function startIssuerProcess(args: string[], caPem?: string): Promise<IssuerProcess> {
  const proc = spawn(process.execPath, [BIN, 'issuer', '--listen', '127.0.0.1:0', ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = ''; let err = '';
  const waiters: Array<() => void> = [];
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; for (const w of waiters) w(); });
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; for (const w of waiters) w(); });
  const until = (cond: () => boolean, what: string, timeoutMs = 15_000): Promise<void> => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`issuer: no ${what} within ${timeoutMs}ms; stderr:\n${err}\nstdout:\n${out}`)), timeoutMs);
    const check = (): void => { if (cond()) { clearTimeout(timer); resolve(); } };
    waiters.push(check);
    proc.once('exit', () => { if (!cond()) { clearTimeout(timer); reject(new Error(`issuer exited (${proc.exitCode}): ${err}`)); } });
    check();
  });
  await until(() => /authproxy issuer: (\S+)/.test(out), 'start-up banner');
  const url = /authproxy issuer: (\S+)/.exec(out)![1]!;
  const dispatcher = caPem ? new Agent({ connect: { ca: caPem } }) : undefined;
  const issued = (): number => err.split('\n').filter((l) => l.includes('"msg":"issuer: token issued"')).length;
  return {
    proc, url, stderr: () => err, issued,
    waitForIssued: (n, timeoutMs) => until(() => issued() >= n, `${n} issued tokens`, timeoutMs),
    async approve(client, role, forMs, audience) {
      const res = await request(`${url}/admin/approvals`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ client, role, forMs, ...(audience ? { audience } : {}) }),
        ...(dispatcher ? { dispatcher } : {}),
      });
      const body = await res.body.json() as { id: string };
      if (res.statusCode !== 201) throw new Error(`approval refused: ${JSON.stringify(body)}`);
      return body.id;
    },
    async stop() {
      await dispatcher?.close();
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      await once(proc, 'exit');
    },
  };
}

export interface ProxyReply { status: number; headers: IncomingHttpHeaders; body: string }

/**
 * A request through the outbound listener: absolute-form target (`http://host:port/path`), as an
 * HTTP_PROXY-aware client sends it, or origin-form with `Host` when `originForm` is set.
 */
export function viaProxy(proxyPort: number, url: string, opts: { method?: string; headers?: Record<string, string>; body?: string; agent?: HttpAgent; originForm?: boolean } = {}): Promise<ProxyReply> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: '127.0.0.1', port: proxyPort, method: opts.method ?? 'GET',
      path: opts.originForm ? `${u.pathname}${u.search}` : url,
      headers: { host: u.host, ...opts.headers }, agent: opts.agent ?? false,
    }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => { body += d; }).on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Parses the recording app's echo. */
export function echoed(r: ProxyReply): { url: string; headers: Record<string, string> } {
  return JSON.parse(r.body) as { url: string; headers: Record<string, string> };
}

export function bearer(headers: Record<string, string>): string {
  const a = headers.authorization ?? '';
  return a.startsWith('Bearer ') ? a.slice(7) : '';
}

export interface DripServer {
  url: string;
  /** Every request so far: path and form body. */
  requests: Array<{ path: string; form: URLSearchParams }>;
  close(): Promise<void>;
}

/**
 * A slow issuer on a real socket: it answers 200 at once, then sends a space every 500 ms (so an
 * idle timer between chunks never fires) and `body` as JSON after `afterMs` (0: at once;
 * Infinity: never, until closed).
 */
export async function startDripServer(answer: (path: string, form: URLSearchParams, base: string) => { body: unknown; afterMs: number }): Promise<DripServer> {
  const requests: DripServer['requests'] = [];
  let base = '';
  const server = createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8').on('data', (d: string) => { raw += d; }).on('end', () => {
      const form = new URLSearchParams(raw);
      requests.push({ path: req.url ?? '', form });
      const { body, afterMs } = answer(req.url ?? '', form, base);
      res.writeHead(200, { 'content-type': 'application/json' });
      const started = Date.now();
      const drip = (): void => {
        if (Date.now() - started >= afterMs) { res.end(JSON.stringify(body)); return; }
        res.write(' ');
        timer = setTimeout(drip, 500);
      };
      let timer = setTimeout(drip, 0);
      res.on('close', () => clearTimeout(timer));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: base, requests,
    close: () => { server.closeAllConnections(); return new Promise((r) => server.close(() => r())); },
  };
}
