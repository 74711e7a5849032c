// gRPC calls and HTTP/2 streams that end early, through the sidecar, with real clients and
// servers: inbound (client → sidecar B → app) and sidecar to sidecar (app → A → B → app).
// A caller that cancels, an app that resets, a reader or an app that is slow, a deadline that
// passes, and a drain: each end of the stream must learn of it promptly, and no sidecar may
// hold a stream's bytes for a side that is not reading.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import { connect as h2connect, createServer as createH2Server, constants as h2, type ClientHttp2Session, type ClientHttp2Stream, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { makePki, type TestPki } from '../support/pki.ts';
import { startSidecar, memoryOf, type Sidecar } from '../support/sidecar.ts';
import { startPolicedSidecar, type PolicedSidecar } from '../support/policed-sidecar.ts';
import { policyDir, PEER_ROUTES } from '../support/policy-dir.ts';
import { tlsOptions } from '../support/clients.ts';
import { waitFor, within } from '../support/wait.ts';
import { startGrpcServer, grpcClient, echoFrame, grpc, type GrpcServer, type EchoClient, type EchoReply, type EchoRequest } from '../support/grpc.ts';

/** How soon the far end must learn that a call ended: generous for a loaded 2-core machine, far below any timeout in play. */
const PROMPTLY_MS = 2000;
const KiB = 1024;
const MiB = 1024 * KiB;

/** Something a test resolves later: an app's call held open until the test lets it go on. */
class Gate {
  readonly opened: Promise<void>;
  open!: () => void;
  constructor() { this.opened = new Promise((resolve) => { this.open = resolve; }); }
}

/** What the gRPC app saw of one call, found by its tag. */
interface AppCall {
  /** Replies written (server streaming, bidi) and messages read (client streaming, bidi). */
  sent: number;
  received: number;
  /** Resolves with the time grpc-js reported the call cancelled. */
  cancelled: Promise<number>;
  /** The app handler has finished its side of the call. */
  done: boolean;
  /** Lets a held call go on. */
  release: Gate;
}

/** 64 KiB replies and uploads, numbered in their first 8 characters so order can be checked. */
const BIG_MESSAGE = 64 * KiB;
const FILLER = 'x'.repeat(BIG_MESSAGE - 8);
const bigText = (i: number): string => `${String(i).padStart(8, '0')}${FILLER}`;
const indexOf = (text: string): number => Number(text.slice(0, 8));

/**
 * The gRPC app: request texts are `MODE:TAG`. ServerStream `forever` writes a reply every 10 ms
 * until cancelled, `big` writes `count` 64 KiB replies honouring backpressure, `held` writes one
 * reply, waits for its release, writes another and ends. Unary `hang` never answers; other texts
 * are echoed. Bidi (tag in metadata `x-tag`) answers a message with it uppercased, then, like a
 * live feed, writes a reply every 10 ms until cancelled, whether or not the client half-closes.
 * ClientStream (tag in metadata `x-tag`) reads numbered 64 KiB messages, stops reading after the
 * first 16 until released, then answers `RECEIVED in-order`.
 */
function lifecycleApp(): { calls: Map<string, AppCall>; start(): Promise<GrpcServer> } {
  const calls = new Map<string, AppCall>();
  const track = (tag: string, call: { on(event: 'cancelled', listener: () => void): unknown }): AppCall => {
    let cancelled!: (at: number) => void;
    const c: AppCall = { sent: 0, received: 0, cancelled: new Promise((r) => { cancelled = r; }), done: false, release: new Gate() };
    // grpc-js also reports 'cancelled' after a call that ended normally: only one cut short counts.
    call.on('cancelled', () => { if (!c.done) cancelled(Date.now()); });
    calls.set(tag, c);
    return c;
  };
  const reply = (text: string): EchoReply => ({ text, metadata: {} });
  const start = (): Promise<GrpcServer> => startGrpcServer('127.0.0.1:0', {
    ServerStream(call) {
      const [mode, tag = ''] = call.request.text.split(':');
      const c = track(tag, call);
      if (mode === 'forever') {
        const timer = setInterval(() => { call.write(reply(`#${c.sent}`)); c.sent++; }, 10);
        call.on('cancelled', () => clearInterval(timer));
      } else if (mode === 'big') {
        const pump = (): void => {
          while (c.sent < call.request.count) {
            const more = call.write(reply(bigText(c.sent)));
            c.sent++;
            if (!more) { call.once('drain', pump); return; }
          }
          c.done = true;
          call.end();
        };
        pump();
      } else if (mode === 'held') {
        call.write(reply('first')); c.sent++;
        void c.release.opened.then(() => { call.write(reply('last')); c.sent++; c.done = true; call.end(); });
      }
    },
    Unary(call, cb) {
      const [mode, tag = ''] = call.request.text.split(':');
      if (mode === 'hang') track(tag, call);
      else cb(null, reply(call.request.text));
    },
    Bidi(call) {
      const c = track(String(call.metadata.get('x-tag')[0] ?? ''), call);
      let timer: NodeJS.Timeout | undefined;
      call.on('data', (r: EchoRequest) => {
        c.received++;
        call.write(reply(r.text.toUpperCase())); c.sent++;
        timer ??= setInterval(() => { call.write(reply(`#${c.sent}`)); c.sent++; }, 10);
      });
      call.on('cancelled', () => clearInterval(timer));
    },
    ClientStream(call, cb) {
      const c = track(String(call.metadata.get('x-tag')[0] ?? ''), call);
      let inOrder = true;
      call.on('data', (r: EchoRequest) => {
        if (indexOf(r.text) !== c.received || r.text.length !== BIG_MESSAGE) inOrder = false;
        c.received++;
        if (c.received === 16) { call.pause(); void c.release.opened.then(() => call.resume()); }
      });
      call.on('end', () => { c.done = true; cb(null, reply(`${c.received} ${inOrder ? 'in-order' : 'out-of-order'}`)); });
    },
  });
  return { calls, start };
}

/** What a raw HTTP/2 app saw of one stream, found by its tag. */
interface RawStream { closed: Promise<{ rstCode: number; at: number }>; release: Gate }

/**
 * An app on node:http2 (h2c) for what grpc-js servers do not do on purpose: reset a stream, lose
 * the connection, ignore grpc-timeout. Request header (gRPC metadata) `x-raw` says what to do,
 * `x-tag` names the stream. `reset` and `drop` answer with headers and one gRPC message, wait for
 * their release, then reset the stream (RST_STREAM(INTERNAL_ERROR)) or destroy the connection
 * (as a crash would). `hang` never answers.
 */
async function startRawApp(): Promise<{ port: number; streams: Map<string, RawStream>; close(): Promise<void> }> {
  const streams = new Map<string, RawStream>();
  const server = createH2Server();
  server.on('stream', (stream: ServerHttp2Stream, headers) => {
    const what = String(headers['x-raw'] ?? '');
    // (Not events.once: it rejects on the 'error' a reset stream emits before its 'close'.)
    const closed = new Promise<{ rstCode: number; at: number }>((resolve) => stream.once('close', () => resolve({ rstCode: stream.rstCode ?? -1, at: Date.now() })));
    const s: RawStream = { closed, release: new Gate() };
    streams.set(String(headers['x-tag'] ?? ''), s);
    stream.on('error', () => {});
    stream.resume();
    if (what === 'hang') return;
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
    stream.write(echoFrame('first'));
    void s.release.opened.then(() => {
      // (stream.close(code) would not do: once the request has ended, node:http2 sends it as a
      // clean END_STREAM.)
      if (what === 'reset') stream.destroy(new Error('the app resets the stream'));
      else stream.session?.socket.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port, streams,
    close: () => new Promise<void>((resolve) => { server.close(() => resolve()); for (const s of streams.values()) s.release.open(); }),
  };
}

/** How a node:http2 client stream ended: with END_STREAM ('end'), or reset with `rstCode`; what it carried. */
function streamOutcome(stream: ClientHttp2Stream): Promise<{ ended: boolean; rstCode: number; body: Buffer; trailers: Record<string, unknown> }> {
  return new Promise((resolve) => {
    let ended = false; const body: Buffer[] = []; let trailers: Record<string, unknown> = {};
    stream.on('data', (d: Buffer) => { body.push(d); });
    stream.on('trailers', (t: Record<string, unknown>) => { trailers = t; });
    stream.on('end', () => { ended = true; });
    stream.on('error', () => { /* the rstCode says it */ });
    stream.on('close', () => resolve({ ended, rstCode: stream.rstCode ?? -1, body: Buffer.concat(body), trailers }));
  });
}

/** A call's end as grpc-js reports it (the 'status' event comes on success, error and cancellation). */
function statusOf(call: { on(event: 'status', l: (s: grpc.StatusObject) => void): unknown; on(event: 'error', l: (e: Error) => void): unknown }): Promise<grpc.StatusObject> {
  return new Promise((resolve) => {
    call.on('error', () => { /* reported by 'status' too */ });
    call.on('status', resolve);
  });
}

const metadata = (fields: Record<string, string>): grpc.Metadata => {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(fields)) md.set(k, v);
  return md;
};
const inSeconds = (s: number): { deadline: Date } => ({ deadline: new Date(Date.now() + s * 1000) });

describe('gRPC calls that end early, through the sidecar', () => {
  let pki: TestPki;
  const app = lifecycleApp();
  let grpcApp: GrpcServer;
  let raw: Awaited<ReturnType<typeof startRawApp>>;
  /** B in front of the gRPC app, R in front of the raw app, A the app's outbound sidecar. */
  let b: PolicedSidecar; let r: PolicedSidecar; let a: Sidecar; let aRoutes: string;
  const clients: EchoClient[] = [];
  const sessions: ClientHttp2Session[] = [];
  const client = (target: string, viaA: boolean): EchoClient => {
    const c = viaA ? grpcClient(`127.0.0.1:${a.outboundPort}`, { authority: target })
      : grpcClient(target.replace('localhost', '127.0.0.1'), { tls: { ...tlsOptions(pki.ca, pki.clients.billing) as { ca: Buffer; cert: Buffer; key: Buffer }, servername: 'localhost' } });
    clients.push(c);
    return c;
  };
  /** A node:http2 client of sidecar S's inbound listener, over mTLS. */
  const tlsSession = (s: PolicedSidecar): ClientHttp2Session => {
    const session = h2connect(`https://localhost:${s.sidecar.inboundPort}`, { ...tlsOptions(pki.ca, pki.clients.billing), host: '127.0.0.1' });
    sessions.push(session);
    return session;
  };
  /** The two paths every behaviour is checked on: (name, a tag for it, a gRPC client for sidecar S's app). */
  const paths = (): Array<[string, string, (s: PolicedSidecar) => EchoClient]> => [
    ['client → B → app', 'inbound', (s) => client(`localhost:${s.sidecar.inboundPort}`, false)],
    ['app → A → B → app', 'via-a', (s) => client(`localhost:${s.sidecar.inboundPort}`, true)],
  ];
  /** The same paths for a node:http2 client (frame-level control); its requests name `localhost:<S's port>` in :authority. */
  const rawPaths = (): Array<[string, string, (s: PolicedSidecar) => ClientHttp2Session]> => [
    ['client → B → app', 'inbound', tlsSession],
    ['app → A → B → app', 'via-a', () => {
      const session = h2connect(`http://127.0.0.1:${a.outboundPort}`);
      sessions.push(session);
      return session;
    }],
  ];

  before(async () => {
    pki = await makePki();
    grpcApp = await app.start();
    raw = await startRawApp();
    aRoutes = await policyDir({ 'routes.yaml': PEER_ROUTES });
    // A presents billing's certificate, which B's policy lets call anything.
    [b, r, a] = await Promise.all([
      startPolicedSidecar(pki, { upstream: `h2c://${grpcApp.address}` }),
      startPolicedSidecar(pki, { upstream: `h2c://127.0.0.1:${raw.port}` }),
      startSidecar(['--upstream', 'http://127.0.0.1:9', '--cert', pki.clients.billing.cert, '--key', pki.clients.billing.key, '--ca', pki.ca,
        '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--policies', aRoutes, '--audit-log', '/dev/null']),
    ]);
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const s of sessions) s.destroy();
    await Promise.all([a?.stop(), b?.close(), r?.close()]);
    await grpcApp?.close();
    await raw?.close();
    await pki?.cleanup();
    if (aRoutes) await rm(aRoutes, { recursive: true, force: true });
  });

  describe('a client that cancels', () => {
    for (const [path, pathTag, clientFor] of paths()) {
      // (The app writes on until it learns of the cancellation: only a reset of its stream tells it.)
      it(`reaches the app's server-streaming handler as a cancellation within ${PROMPTLY_MS} ms (${path})`, async () => {
        const tag = `cancel-stream-${pathTag}`;
        const call = clientFor(b).ServerStream({ text: `forever:${tag}`, count: 0 }, new grpc.Metadata(), inSeconds(20));
        const status = statusOf(call);
        await once(call, 'data');
        call.cancel();
        assert.equal((await status).code, grpc.status.CANCELLED);
        await within(app.calls.get(tag)!.cancelled, PROMPTLY_MS, 'the app saw the cancellation');
      });

      it(`reaches the app's unary handler, still working before any answer, as a cancellation within ${PROMPTLY_MS} ms (${path})`, async () => {
        const tag = `cancel-unary-${pathTag}`;
        let status!: grpc.StatusObject;
        const call = clientFor(b).Unary({ text: `hang:${tag}`, count: 0 }, new grpc.Metadata(), inSeconds(20), () => {});
        const ended = new Promise<void>((resolve) => call.on('status', (s: grpc.StatusObject) => { status = s; resolve(); }));
        await waitFor(() => app.calls.has(tag), 'the call reached the app');
        call.cancel();
        await ended;
        assert.equal(status.code, grpc.status.CANCELLED);
        await within(app.calls.get(tag)!.cancelled, PROMPTLY_MS, 'the app saw the cancellation');
      });

      it(`reaches the app's bidi handler as a cancellation within ${PROMPTLY_MS} ms (${path})`, async () => {
        const tag = `cancel-bidi-${pathTag}`;
        const call = clientFor(b).Bidi(metadata({ 'x-tag': tag }), inSeconds(20));
        const status = statusOf(call);
        call.write({ text: 'ping', count: 0 });
        const [first] = await once(call, 'data') as [EchoReply];
        assert.equal(first.text, 'PING');
        call.cancel();
        assert.equal((await status).code, grpc.status.CANCELLED);
        await within(app.calls.get(tag)!.cancelled, PROMPTLY_MS, 'the app saw the cancellation');
      });
    }

    it('passes an HTTP/2 client\'s RST_STREAM(CANCEL) on a streaming response on to the app', async () => {
      const session = tlsSession(b);
      const tag = 'raw-rst';
      const stream = session.request({ ':method': 'POST', ':path': '/authproxy.test.Echo/ServerStream', 'content-type': 'application/grpc', te: 'trailers' });
      stream.end(echoFrame(`forever:${tag}`));
      await once(stream, 'data');
      stream.close(h2.NGHTTP2_CANCEL);
      await within(app.calls.get(tag)!.cancelled, PROMPTLY_MS, 'the app saw the reset as a cancellation');
      // The session carries on: one stream was reset, not the connection.
      assert.equal(session.destroyed, false);
    });
  });

  describe('an app that resets its stream or loses its connection mid-response', () => {
    for (const [path, pathTag, clientFor] of paths()) {
      for (const [how, what] of [['resets the stream', 'reset'], ['loses its connection', 'drop']] as const) {
        it(`ends the gRPC client's call with INTERNAL after its first reply, not OK and not a hang, when the app ${how} (${path})`, async () => {
          const tag = `grpc-${what}-${pathTag}`;
          const call = clientFor(r).ServerStream({ text: 'x', count: 0 }, metadata({ 'x-raw': what, 'x-tag': tag }), inSeconds(20));
          const status = statusOf(call);
          const [first] = await once(call, 'data') as [EchoReply];
          assert.equal(first.text, 'first');
          raw.streams.get(tag)!.release.open();
          const s = await within(status, PROMPTLY_MS, 'the client learnt that the call ended');
          assert.equal(s.code, grpc.status.INTERNAL, `${grpc.status[s.code]}: ${s.details}`);
        });
      }
    }

    // Without gRPC's status to miss, a stream that ends cleanly is a complete answer: a cut one must
    // reach the client as a reset (the body was truncated), never as END_STREAM.
    for (const [path, pathTag, open] of rawPaths()) {
      for (const [how, what] of [['resets the stream', 'reset'], ['loses its connection', 'drop']] as const) {
        it(`resets an HTTP/2 client's stream, never ends it cleanly, when the app ${how} mid-body (${path})`, async () => {
          const session = open(r);
          const tag = `h2-${what}-${pathTag}`;
          const stream = session.request({ ':method': 'GET', ':path': '/download', ':authority': `localhost:${r.sidecar.inboundPort}`, 'x-raw': what, 'x-tag': tag });
          const outcome = streamOutcome(stream);
          await once(stream, 'response');
          await waitFor(() => raw.streams.has(tag), 'the app got the request');
          raw.streams.get(tag)!.release.open();
          const o = await within(outcome, PROMPTLY_MS, 'the client learnt that the stream ended');
          assert.equal(o.ended, false, 'a truncated body must not end with END_STREAM');
          assert.equal(o.rstCode, h2.NGHTTP2_INTERNAL_ERROR);
        });
      }
    }
  });

  describe('a large stream and a side that stops reading', () => {
    const COUNT = 1024;
    const TOTAL = COUNT * BIG_MESSAGE;
    /** Messages read before the reader stops: the stream is well under way. */
    const PAUSE_AT = 16;
    /**
     * How far the writer may get ahead of a reader that stopped: flow-control windows and stream
     * buffers on each hop, a few MiB. A sidecar that kept reading would let it run to the end.
     */
    const MAX_LEAD = TOTAL / 4;
    /** A sidecar that held the stream would grow by its size; buffers and garbage stay well below. */
    const MAX_GROWTH = TOTAL / 2;

    /** Waits until `value` has not changed for half a second (the writer is held back, or done). */
    async function settled(value: () => number, what: string): Promise<number> {
      let last = value(); let since = Date.now();
      await waitFor(() => {
        const v = value();
        if (v !== last) { last = v; since = Date.now(); }
        return Date.now() - since >= 500;
      }, what, 30_000);
      return last;
    }

    const sidecarsOn = (pathTag: string): Sidecar[] => (pathTag === 'via-a' ? [a, b.sidecar] : [b.sidecar]);
    const rssOf = (sidecars: Sidecar[]): Promise<number[]> => Promise.all(sidecars.map(async (s) => (await memoryOf(s.proc.pid!)).rss));

    for (const [path, pathTag, clientFor] of paths()) {
      it(`delivers 64 MiB of server-streamed replies whole and in order to a reader that pauses, holding the app back meanwhile (${path})`, async () => {
        const tag = `big-down-${pathTag}`;
        const sidecars = sidecarsOn(pathTag);
        const before = await rssOf(sidecars);
        const call = clientFor(b).ServerStream({ text: `big:${tag}`, count: COUNT }, new grpc.Metadata(), inSeconds(90));
        const status = statusOf(call);
        let got = 0; let inOrder = true;
        call.on('data', (m: EchoReply) => {
          if (indexOf(m.text) !== got || m.text.length !== BIG_MESSAGE) inOrder = false;
          if (++got === PAUSE_AT) call.pause();
        });
        await waitFor(() => got >= PAUSE_AT, 'the first replies');
        const c = app.calls.get(tag)!;
        const sent = await settled(() => c.sent, 'the app held back by the paused reader');
        const paused = await rssOf(sidecars);
        assert.ok((sent - got) * BIG_MESSAGE < MAX_LEAD, `the app got ${((sent - got) * BIG_MESSAGE) / MiB} MiB ahead of a reader that stopped at ${got * BIG_MESSAGE / MiB} MiB`);
        paused.forEach((rss, i) => assert.ok(rss - before[i]! < MAX_GROWTH, `sidecar ${i} grew by ${(rss - before[i]!) / MiB} MiB while the reader paused`));
        call.resume();
        assert.equal((await status).code, grpc.status.OK);
        assert.equal(got, COUNT);
        assert.ok(inOrder, 'every reply whole and in order');
      });

      it(`delivers a 64 MiB client-streamed upload whole and in order to an app that stops reading, holding the client back meanwhile (${path})`, async () => {
        const tag = `big-up-${pathTag}`;
        const sidecars = sidecarsOn(pathTag);
        const before = await rssOf(sidecars);
        let reply!: Promise<EchoReply>;
        const call = clientFor(b).ClientStream(metadata({ 'x-tag': tag }), inSeconds(90), (err, r) => { reply = err ? Promise.reject(err) : Promise.resolve(r!); });
        const status = statusOf(call);
        let sent = 0;
        const pump = (): void => {
          while (sent < COUNT) {
            const more = call.write({ text: bigText(sent), count: 0 });
            sent++;
            if (!more) { call.once('drain', pump); return; }
          }
          call.end();
        };
        pump();
        await waitFor(() => (app.calls.get(tag)?.received ?? 0) >= 16, 'the app read the first messages');
        const c = app.calls.get(tag)!;
        await settled(() => sent, 'the client held back by the app that stopped reading');
        const paused = await rssOf(sidecars);
        assert.ok((sent - c.received) * BIG_MESSAGE < MAX_LEAD, `the client got ${((sent - c.received) * BIG_MESSAGE) / MiB} MiB ahead of an app that stopped reading`);
        paused.forEach((rss, i) => assert.ok(rss - before[i]! < MAX_GROWTH, `sidecar ${i} grew by ${(rss - before[i]!) / MiB} MiB while the app did not read`));
        c.release.open();
        assert.equal((await status).code, grpc.status.OK);
        assert.equal((await reply).text, `${COUNT} in-order`);
      });
    }
  });

  describe('a client deadline the app outlives', () => {
    const DEADLINE_MS = 800;
    for (const [path, pathTag, clientFor] of paths()) {
      it(`answers a unary call DEADLINE_EXCEEDED and the app sees its call cancelled, not running on (${path})`, async () => {
        const tag = `deadline-unary-${pathTag}`;
        const deadline = Date.now() + DEADLINE_MS;
        const err = await new Promise<grpc.ServiceError | null>((resolve) => {
          clientFor(b).Unary({ text: `hang:${tag}`, count: 0 }, new grpc.Metadata(), { deadline: new Date(deadline) }, (e) => resolve(e));
        });
        assert.equal(err?.code, grpc.status.DEADLINE_EXCEEDED);
        const seen = await within(app.calls.get(tag)!.cancelled, PROMPTLY_MS, 'the app saw its call cancelled');
        assert.ok(seen - deadline < PROMPTLY_MS, `cancelled ${seen - deadline} ms after the deadline`);
      });

      it(`ends a server-streaming call that outlives its deadline with DEADLINE_EXCEEDED, and the app's stream is cancelled (${path})`, async () => {
        const tag = `deadline-stream-${pathTag}`;
        const deadline = Date.now() + DEADLINE_MS;
        const call = clientFor(b).ServerStream({ text: `forever:${tag}`, count: 0 }, new grpc.Metadata(), { deadline: new Date(deadline) });
        let replies = 0;
        call.on('data', () => { replies++; });
        assert.equal((await statusOf(call)).code, grpc.status.DEADLINE_EXCEEDED);
        assert.ok(replies > 0, 'the stream was under way when the deadline passed');
        const seen = await within(app.calls.get(tag)!.cancelled, PROMPTLY_MS, 'the app saw its call cancelled');
        assert.ok(seen - deadline < PROMPTLY_MS, `cancelled ${seen - deadline} ms after the deadline`);
      });
    }

    // A client that does not enforce its own grpc-timeout, and an app that ignores it: only the
    // sidecar's deadline is left to answer the caller and stop the app's work.
    for (const [path, pathTag, open] of rawPaths()) {
      it(`answers DEADLINE_EXCEEDED itself at the caller's grpc-timeout, and resets the app's stream (${path})`, async () => {
        const session = open(r);
        const tag = `sidecar-deadline-${pathTag}`;
        const deadline = Date.now() + DEADLINE_MS;
        const stream = session.request({ ':method': 'POST', ':path': '/authproxy.test.Echo/Unary', ':authority': `localhost:${r.sidecar.inboundPort}`,
          'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': `${DEADLINE_MS}m`, 'x-raw': 'hang', 'x-tag': tag });
        stream.end(echoFrame('anyone there'));
        const outcome = streamOutcome(stream);
        const [headers] = await within(once(stream, 'response'), DEADLINE_MS + PROMPTLY_MS, 'an answer') as [Record<string, string>];
        assert.equal(headers['grpc-status'], String(grpc.status.DEADLINE_EXCEEDED));
        assert.equal(headers['x-authproxy-error'], 'upstream_timeout');
        assert.equal((await outcome).ended, true, 'a status the client can read, not a reset');
        const closed = await within(raw.streams.get(tag)!.closed, PROMPTLY_MS, 'the app\'s stream was closed');
        assert.equal(closed.rstCode, h2.NGHTTP2_CANCEL);
        assert.ok(closed.at - deadline < PROMPTLY_MS, `reset ${closed.at - deadline} ms after the deadline`);
      });
    }
  });

  describe('a drain (SIGTERM) with a call in flight', () => {
    /** Sidecar D, in front of the gRPC app like B, is the one told to stop. */
    const startD = (drainTimeout: string): Promise<PolicedSidecar> => startPolicedSidecar(pki, { upstream: `h2c://${grpcApp.address}` }, ['--drain-timeout', drainTimeout]);

    it('sends GOAWAY on the call\'s connection, refuses new calls with UNAVAILABLE, lets the call finish, then exits 0 (client → D → app)', async () => {
      const d = await startD('20s');
      try {
        const tag = 'drain-inbound';
        const session = tlsSession(d);
        const goaway = new Promise<[number, number]>((resolve) => session.once('goaway', (code: number, last: number) => resolve([code, last])));
        const stream = session.request({ ':method': 'POST', ':path': '/authproxy.test.Echo/ServerStream', 'content-type': 'application/grpc', te: 'trailers' });
        stream.end(echoFrame(`held:${tag}`));
        const outcome = streamOutcome(stream);
        await once(stream, 'data');
        // A client already connected before the drain: its next call must fail fast, not hang.
        const other = client(`localhost:${d.sidecar.inboundPort}`, false);
        await new Promise<void>((resolve, reject) => other.Unary({ text: 'before', count: 0 }, new grpc.Metadata(), inSeconds(10), (e) => (e ? reject(e) : resolve())));

        d.sidecar.proc.kill('SIGTERM');
        const [code, last] = await within(goaway, PROMPTLY_MS, 'GOAWAY on the connection of the call in flight');
        assert.equal(code, h2.NGHTTP2_NO_ERROR);
        assert.ok(last >= stream.id!, `GOAWAY's last stream ${last} covers the call in flight (${stream.id})`);
        const refused = await new Promise<grpc.ServiceError | null>((resolve) => other.Unary({ text: 'after', count: 0 }, new grpc.Metadata(), inSeconds(10), (e) => resolve(e)));
        assert.equal(refused?.code, grpc.status.UNAVAILABLE, `a new call during the drain: ${refused?.details}`);

        app.calls.get(tag)!.release.open();
        const released = Date.now();
        const o = await within(outcome, PROMPTLY_MS, 'the call in flight finished');
        assert.equal(o.ended, true);
        assert.equal(o.trailers['grpc-status'], String(grpc.status.OK));
        assert.ok(o.body.includes('last'), 'the reply sent after the drain began arrived');
        assert.equal(await d.sidecar.exited(), 0);
        assert.ok(Date.now() - released < 5000, `exited ${Date.now() - released} ms after the last call, not at the 20 s drain timeout`);
      } finally { await d.close(); }
    });

    it('lets a call through A finish while D drains, answers new calls through A UNAVAILABLE, and D exits 0 (app → A → D → app)', async () => {
      const d = await startD('20s');
      try {
        const tag = 'drain-via-a';
        const c = client(`localhost:${d.sidecar.inboundPort}`, true);
        const call = c.ServerStream({ text: `held:${tag}`, count: 0 }, new grpc.Metadata(), inSeconds(20));
        const status = statusOf(call);
        const replies: string[] = [];
        call.on('data', (m: EchoReply) => replies.push(m.text));
        await waitFor(() => replies.length > 0, 'the first reply');

        // D sends GOAWAY on all its connections at once; this one shows when it has.
        const watcher = tlsSession(d);
        await once(watcher, 'remoteSettings');
        const goaway = once(watcher, 'goaway');
        d.sidecar.proc.kill('SIGTERM');
        await within(goaway, PROMPTLY_MS, 'GOAWAY from D');
        // A's connection to D got its GOAWAY too: A dials afresh for the next call, and D no longer listens.
        const refused = await new Promise<grpc.ServiceError | null>((resolve) => c.Unary({ text: 'after', count: 0 }, new grpc.Metadata(), inSeconds(10), (e) => resolve(e)));
        assert.equal(refused?.code, grpc.status.UNAVAILABLE, refused?.details);

        app.calls.get(tag)!.release.open();
        const released = Date.now();
        const s = await within(status, PROMPTLY_MS, 'the call in flight finished');
        assert.equal(s.code, grpc.status.OK, `${grpc.status[s.code]}: ${s.details}`);
        assert.deepEqual(replies, ['first', 'last']);
        assert.equal(await d.sidecar.exited(), 0);
        assert.ok(Date.now() - released < 5000, `exited ${Date.now() - released} ms after the last call, not at the 20 s drain timeout`);
      } finally { await d.close(); }
    });

    it('cuts a call still streaming at the drain timeout: the client gets an error status, the app a cancellation, and D exits 0 (client → D → app)', async () => {
      const d = await startD('500ms');
      try {
        const tag = 'drain-cut';
        const call = client(`localhost:${d.sidecar.inboundPort}`, false).ServerStream({ text: `forever:${tag}`, count: 0 }, new grpc.Metadata(), inSeconds(20));
        const status = statusOf(call);
        await once(call, 'data');
        const signalled = Date.now();
        d.sidecar.proc.kill('SIGTERM');
        const s = await within(status, 500 + PROMPTLY_MS, 'the client learnt its call was cut');
        // grpc-js reads a connection closed under a call as UNAVAILABLE ("Connection dropped").
        assert.equal(s.code, grpc.status.UNAVAILABLE, `${grpc.status[s.code]}: ${s.details}`);
        await within(app.calls.get(tag)!.cancelled, PROMPTLY_MS, 'the app saw its call cancelled');
        assert.equal(await within(d.sidecar.exited(), 500 + PROMPTLY_MS, 'D exited'), 0);
        assert.ok(Date.now() - signalled >= 500, 'the call had its drain timeout');
      } finally { await d.close(); }
    });
  });
});
