// Real clients for end-to-end tests: Node's https with a client certificate, a raw TLS socket for
// request targets no well-behaved client would send, one request on a node:http2 session, and curl.
import { request, type Agent } from 'node:https';
import type { ClientHttp2Session, IncomingHttpHeaders } from 'node:http2';
import { connect, type TLSSocket } from 'node:tls';
import { readFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import type { ClientFiles } from './pki.ts';

export interface Reply { status: number; headers: Record<string, string | string[] | undefined>; body: string }

export function tlsOptions(ca: string, client: ClientFiles | null): { ca: Buffer; cert?: Buffer; key?: Buffer; servername: string } {
  return { ca: readFileSync(ca), ...(client ? { cert: readFileSync(client.cert), key: readFileSync(client.key) } : {}), servername: 'localhost' };
}

export function httpsGet(port: number, path: string, ca: string, client: ClientFiles | null,
  opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer; agent?: Agent } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers, agent: opts.agent ?? false, ...tlsOptions(ca, client) }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => { body += d; }).on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

export interface H2Reply { status: number; headers: IncomingHttpHeaders; trailers: IncomingHttpHeaders; body: string }

/** One request on an HTTP/2 session; rejects when the stream is reset. */
export function h2request(session: ClientHttp2Session, headers: Record<string, string>, body?: string): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined });
    let status = 0; let resHeaders: IncomingHttpHeaders = {}; let trailers: IncomingHttpHeaders = {}; let text = '';
    stream.on('response', (h) => { status = Number(h[':status']); resHeaders = h; });
    stream.on('trailers', (t) => { trailers = t; });
    stream.setEncoding('utf8').on('data', (d: string) => { text += d; });
    stream.on('end', () => resolve({ status, headers: resHeaders, trailers, body: text }));
    stream.on('error', reject);
    if (body !== undefined) stream.end(body);
  });
}

/** Sends exactly `head` (request line and headers) over mTLS and returns the raw response text. */
export function rawTls(port: number, head: string, ca: string, client: ClientFiles): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, ...tlsOptions(ca, client) }, () => s.write(head));
    let out = '';
    // 'close' as well as 'end': a connection cut without a FIN must not leave the caller waiting.
    s.setEncoding('utf8').on('data', (d: string) => { out += d; }).on('end', () => resolve(out)).on('close', () => resolve(out)).on('error', reject);
  });
}

/** What `socket` receives until `needle` appears (or `timeoutMs` passes); the socket is destroyed then. */
export async function replyUntil(socket: TLSSocket, needle: string, timeoutMs = 5000): Promise<string> {
  let reply = '';
  socket.setEncoding('utf8').on('data', (d: string) => { reply += d; });
  const started = Date.now();
  while (!reply.includes(needle) && Date.now() - started < timeoutMs) await new Promise((r) => setTimeout(r, 20));
  socket.destroy();
  return reply;
}

export function statusOf(raw: string): number { return Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0); }

export function curl(args: string[], cwd?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['--silent', '--show-error', '--max-time', '20', ...args], { cwd, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}
