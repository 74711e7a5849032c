// Just enough WebSocket (RFC 6455) to prove an exchange end to end without a library: the
// handshake's accept value, short text frames both ways, and a connection reader that waits for
// an HTTP answer head, a frame, or the close. Frames are unfragmented, under 126 bytes.
import { createHash, randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export function newKey(): string { return randomBytes(16).toString('base64'); }

export function acceptFor(key: string): string { return createHash('sha1').update(key + WS_GUID).digest('base64'); }

/** A text frame; a client's is masked (RFC 6455 §5.3), a server's is not. */
export function textFrame(text: string, masked: boolean): Buffer {
  const payload = Buffer.from(text);
  if (payload.length > 125) throw new Error('short frames only');
  const head = Buffer.from([0x81, (masked ? 0x80 : 0) | payload.length]);
  if (!masked) return Buffer.concat([head, payload]);
  const key = randomBytes(4);
  return Buffer.concat([head, key, Buffer.from(payload.map((b, i) => b ^ key[i % 4]!))]);
}

/** The first whole frame in `buf` as text, and what follows it; null while incomplete. */
export function readTextFrame(buf: Buffer): { text: string; rest: Buffer } | null {
  if (buf.length < 2) return null;
  const masked = (buf[1]! & 0x80) !== 0;
  const length = buf[1]! & 0x7f;
  const start = masked ? 6 : 2;
  if (buf.length < start + length) return null;
  let payload = buf.subarray(start, start + length);
  if (masked) { const key = buf.subarray(2, 6); payload = Buffer.from(payload.map((b, i) => b ^ key[i % 4]!)); }
  return { text: payload.toString(), rest: buf.subarray(start + length) };
}

export interface AnswerHead { status: number; headers: Record<string, string>; raw: string }

/** What a connection receives, read as the test asks: an HTTP answer head, frames, the rest until close. */
export class Received {
  readonly socket: Duplex;
  buf: Buffer = Buffer.alloc(0);
  closed = false;

  constructor(socket: Duplex) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => { this.buf = Buffer.concat([this.buf, d]); });
    socket.once('close', () => { this.closed = true; });
    socket.on('error', () => {});
  }

  /** Polls until `done` holds or the connection closes; false after `timeoutMs`. */
  async until(done: () => boolean, timeoutMs = 5000): Promise<boolean> {
    const started = Date.now();
    while (!done()) {
      if (this.closed || Date.now() - started > timeoutMs) return done();
      await new Promise((r) => setTimeout(r, 10));
    }
    return true;
  }

  /** The status line and header fields of an HTTP/1.1 answer, consumed from the buffer. */
  async head(): Promise<AnswerHead> {
    await this.until(() => this.buf.includes('\r\n\r\n'));
    const end = this.buf.indexOf('\r\n\r\n');
    if (end === -1) throw new Error(`no answer head; received: ${JSON.stringify(this.buf.toString('latin1'))}`);
    const raw = this.buf.subarray(0, end).toString('latin1');
    this.buf = this.buf.subarray(end + 4);
    const [line = '', ...fields] = raw.split('\r\n');
    const headers: Record<string, string> = {};
    for (const f of fields) { const c = f.indexOf(':'); headers[f.slice(0, c).toLowerCase()] = f.slice(c + 1).trim(); }
    return { status: Number(line.split(' ')[1]), headers, raw };
  }

  async frame(): Promise<string> {
    await this.until(() => readTextFrame(this.buf) !== null);
    const f = readTextFrame(this.buf);
    if (!f) throw new Error(`no frame; received: ${JSON.stringify(this.buf.toString('latin1'))}, closed: ${this.closed}`);
    this.buf = f.rest;
    return f.text;
  }

  /** Everything left, once the far side has closed (or `timeoutMs` passed: see `closed`). */
  async rest(timeoutMs = 5000): Promise<string> {
    await this.until(() => this.closed, timeoutMs);
    return this.buf.toString('latin1');
  }
}
