// The sidecar as an HTTP/2 client of an h2c app: it keeps to the number of streams the app
// allows at once (SETTINGS_MAX_CONCURRENT_STREAMS), and a stream the app refuses unprocessed
// (RST_STREAM REFUSED_STREAM) is tried again, whatever the method, within the retry budget.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect as h2connect, createServer as createH2Server, constants as h2, type ClientHttp2Session, type Http2Server } from 'node:http2';
import { createServer as createHttp1Server, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { makePki, type TestPki } from '../support/pki.ts';
import { startPolicedSidecar, type PolicedSidecar } from '../support/policed-sidecar.ts';
import { tlsOptions, h2request, type H2Reply } from '../support/clients.ts';
import { SMALL_BODY_BYTES } from '../../src/forward/whole-body.ts';
import { startGrpcServer, grpcClient, grpc, type GrpcServer, type EchoClient, type EchoReply } from '../support/grpc.ts';

/** The most streams the apps below allow open at once. */
const LIMIT = 2;
const CALLS = 10;
/** How long each held request stays open at the app: the calls must queue behind the limit. */
const HOLD_MS = 150;

const listen = async <T extends Http2Server | Server>(server: T): Promise<number> => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
};

describe('the sidecar as an HTTP/2 client of the app', () => {
  let pki: TestPki;
  const closers: Array<() => Promise<void> | void> = [];
  const session = (s: PolicedSidecar): ClientHttp2Session => {
    const c = h2connect(`https://localhost:${s.sidecar.inboundPort}`, { ...tlsOptions(pki.ca, pki.clients.billing), host: '127.0.0.1' });
    closers.push(() => { c.destroy(); });
    return c;
  };
  const sidecarFor = async (upstream: string): Promise<PolicedSidecar> => {
    const s = await startPolicedSidecar(pki, { upstream });
    closers.push(() => s.close());
    return s;
  };

  before(async () => { pki = await makePki(); });
  after(async () => {
    for (const close of closers.reverse()) await close();
    await pki?.cleanup();
  });

  it(`holds requests beyond the app's limit of ${LIMIT} concurrent streams until one ends, and answers all ${CALLS}, with the app never over its limit`, async () => {
    let open = 0; let most = 0; let arrived = 0;
    const app = createH2Server({ settings: { maxConcurrentStreams: LIMIT } });
    app.on('stream', (stream, headers) => {
      arrived++; open++; most = Math.max(most, open);
      stream.on('close', () => { open--; });
      setTimeout(() => { stream.respond({ ':status': 200 }); stream.end(String(headers[':path'])); }, HOLD_MS);
    });
    closers.push(() => new Promise<void>((resolve) => app.close(() => resolve())));
    const s = await sidecarFor(`h2c://127.0.0.1:${await listen(app)}`);
    // All at once on a fresh sidecar: they wait together for its first connection to the app.
    const c = session(s);
    const replies = await Promise.all(Array.from({ length: CALLS }, (_, i) =>
      h2request(c, { ':method': 'POST', ':path': `/held/${i}`, 'content-type': 'text/plain' }, `call ${i}`)));
    assert.deepEqual(replies.map((r) => `${r.status} ${r.body}`), replies.map((_, i) => `200 /held/${i}`));
    assert.equal(arrived, CALLS, 'each call reached the app once: none was refused and tried again');
    assert.ok(most <= LIMIT, `the app had ${most} streams open at once`);
  });

  it(`carries ${CALLS} concurrent gRPC calls to a grpc-js server that allows ${LIMIT} streams at a time`, async () => {
    const server: GrpcServer = await startGrpcServer('127.0.0.1:0', {
      Unary(call, cb) { setTimeout(() => cb(null, { text: call.request.text, metadata: {} }), HOLD_MS); },
    }, { options: { 'grpc.max_concurrent_streams': LIMIT } });
    closers.push(() => server.close());
    const s = await sidecarFor(`h2c://${server.address}`);
    const client: EchoClient = grpcClient(`127.0.0.1:${s.sidecar.inboundPort}`, { tls: { ...tlsOptions(pki.ca, pki.clients.billing) as { ca: Buffer; cert: Buffer; key: Buffer }, servername: 'localhost' } });
    closers.push(() => { client.close(); });
    const results = await Promise.all(Array.from({ length: CALLS }, (_, i) => new Promise<string>((resolve) => {
      client.Unary({ text: `call ${i}`, count: 0 }, new grpc.Metadata(), { deadline: new Date(Date.now() + 10_000) },
        (err: grpc.ServiceError | null, reply?: EchoReply) => resolve(err ? `${grpc.status[err.code]}: ${err.details}` : reply!.text));
    })));
    assert.deepEqual(results, results.map((_, i) => `call ${i}`));
    assert.equal(server.calls(), CALLS);
  });

  // grpc-js and grpc-go servers close a connection at its maximum age with GOAWAY; the streams the
  // sidecar opened while that GOAWAY was on its way are refused, and must be retried, not failed.
  it('loses no gRPC call while the app recycles its connections (grpc.max_connection_age_ms), each answer the call\'s own', async () => {
    const server = await startGrpcServer('127.0.0.1:0', {}, { options: { 'grpc.max_connection_age_ms': 200, 'grpc.max_connection_age_grace_ms': 5000 } });
    closers.push(() => server.close());
    const s = await sidecarFor(`h2c://${server.address}`);
    const client: EchoClient = grpcClient(`127.0.0.1:${s.sidecar.inboundPort}`, { tls: { ...tlsOptions(pki.ca, pki.clients.billing) as { ca: Buffer; cert: Buffer; key: Buffer }, servername: 'localhost' } });
    closers.push(() => { client.close(); });
    const failures: string[] = []; let answered = 0;
    const until = Date.now() + 3000;
    await Promise.all(Array.from({ length: 20 }, async (_, worker) => {
      for (let i = 0; Date.now() < until; i++) {
        const text = `${worker}/${i}`;
        await new Promise<void>((resolve) => client.Unary({ text, count: 0 }, new grpc.Metadata(), { deadline: new Date(Date.now() + 5000) },
          (err: grpc.ServiceError | null, reply?: EchoReply) => {
            if (err) failures.push(`${grpc.status[err.code]}: ${err.details}`);
            else if (reply!.text !== text) failures.push(`${text} answered ${reply!.text}`);
            else answered++;
            resolve();
          }));
      }
    }));
    assert.deepEqual(failures.slice(0, 5), [], `${failures.length} of ${failures.length + answered} calls failed`);
    const metrics = await (await fetch(`http://127.0.0.1:${s.sidecar.adminPort}/metrics`)).text();
    const retried = Number(/authproxy_retries_total\{direction="inbound",result="attempted"\} (\d+)/.exec(metrics)?.[1]);
    // ~15 connections recycled under 20 callers: some calls always cross a GOAWAY.
    assert.ok(retried > 0, 'some calls were refused by a closing connection and tried again');
  });

  describe('a stream the app refuses unprocessed', () => {
    let s: PolicedSidecar;
    const arrivals = new Map<string, number>();
    before(async () => {
      // Refuses the first stream for a path (or every one, for /refuse-always), answers the next.
      const app = createH2Server();
      app.on('stream', (stream, headers) => {
        const path = String(headers[':path']);
        const n = (arrivals.get(path) ?? 0) + 1;
        arrivals.set(path, n);
        stream.on('error', () => { /* the refusal, reported on the app's side too */ });
        const refuse = path.startsWith('/refuse-always') || (path.startsWith('/refuse-once') && n === 1);
        let body = '';
        stream.setEncoding('utf8').on('data', (d: string) => { body += d; });
        // (Refused once the whole body is in: the sidecar's copy of it has ended by then.)
        stream.on('end', () => {
          if (refuse) { stream.close(h2.NGHTTP2_REFUSED_STREAM); return; }
          stream.respond({ ':status': 200 });
          stream.end(`${headers[':method']} ${body.length > 100 ? `${body.length} bytes` : body}`);
        });
      });
      closers.push(() => new Promise<void>((resolve) => app.close(() => resolve())));
      s = await sidecarFor(`h2c://127.0.0.1:${await listen(app)}`);
    });

    // (A body the sidecar reads whole first, as it does one declared at 64 KiB or less, can be sent
    // again; a streamed one cannot, and its refusal is answered 502.)
    it('tries a refused POST again, with its body, and the app answers the second try', async () => {
      const r = await h2request(session(s), { ':method': 'POST', ':path': '/refuse-once/charge', 'content-type': 'text/plain', 'content-length': '8' }, 'amount=5');
      assert.equal(r.status, 200, r.body);
      assert.equal(r.body, 'POST amount=5');
      assert.equal(arrivals.get('/refuse-once/charge'), 2);
    });

    it('tries a refused streamed POST again (no declared length, as gRPC sends), its body kept as it went out', async () => {
      const r = await h2request(session(s), { ':method': 'POST', ':path': '/refuse-once/streamed', 'content-type': 'text/plain' }, 'amount=7');
      assert.equal(r.status, 200, r.body);
      assert.equal(r.body, 'POST amount=7');
      assert.equal(arrivals.get('/refuse-once/streamed'), 2);
    });

    it('answers a refused streamed body over 64 KiB 502 without a second try: it was not kept', async () => {
      const r = await h2request(session(s), { ':method': 'POST', ':path': '/refuse-once/large', 'content-type': 'text/plain' }, 'y'.repeat(SMALL_BODY_BYTES + 1));
      assert.equal(r.status, 502);
      assert.match(r.body, /REFUSED_STREAM/);
      assert.equal(arrivals.get('/refuse-once/large'), 1);
    });

    it('answers 502 upstream_unavailable, saying the app refused the stream, when it refuses every try', async () => {
      const r: H2Reply = await h2request(session(s), { ':method': 'POST', ':path': '/refuse-always/charge', 'content-type': 'text/plain', 'content-length': '8' }, 'amount=5');
      assert.equal(r.status, 502);
      const body = JSON.parse(r.body) as { error: string; message: string };
      assert.equal(body.error, 'upstream_unavailable');
      assert.match(body.message, /refused the request before processing it \(HTTP\/2 REFUSED_STREAM\)/);
      assert.ok((arrivals.get('/refuse-always/charge') ?? 0) > 1, 'it was tried again before giving up');
    });
  });

  it('answers 502 at once, not at a timeout, when an h2c upstream speaks only HTTP/1.1', async () => {
    const app = createHttp1Server((_req, res) => { res.end('http/1.1 only'); });
    closers.push(() => new Promise<void>((resolve) => { app.closeAllConnections(); app.close(() => resolve()); }));
    const s = await sidecarFor(`h2c://127.0.0.1:${await listen(app)}`);
    const started = Date.now();
    const r = await h2request(session(s), { ':method': 'GET', ':path': '/anything' });
    assert.equal(r.status, 502);
    assert.equal((JSON.parse(r.body) as { error: string }).error, 'upstream_unavailable');
    assert.ok(Date.now() - started < 1500, `answered after ${Date.now() - started} ms; the connect timeout is 2 s`);
  });
});
