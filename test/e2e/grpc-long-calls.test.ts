// gRPC calls that last longer than the sidecar's timeouts, with a real grpc-js client and server:
// a stream that stays quiet, a client that uploads for a while before the app answers, a bidi
// call whose app speaks only late. --upstream-timeout bounds the wait for an answer once the
// request is all sent (as undici does on the HTTP/1.1 path, and Envoy's per-try timeout), and
// --request-timeout only the wait for the answer to begin: neither cuts a call that is under way.
// The app is told the caller's own deadline (grpc-timeout), never the sidecar's --request-timeout,
// which would make the app end a streaming call the sidecar itself lets run.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { connect as tlsConnect } from 'node:tls';
import { connect as h2connect } from 'node:http2';
import { makePki, type TestPki } from '../support/pki.ts';
import { startSidecar, type Sidecar } from '../support/sidecar.ts';
import { policyDir, LOOPBACK_BOUNDARY, PEER_ROUTES } from '../support/policy-dir.ts';
import { tlsOptions, h2request } from '../support/clients.ts';
import { within } from '../support/wait.ts';
import { PREFACE, Type, frame, frameTypes, literal } from '../support/h2-flood.ts';
import { startGrpcServer, grpcClient, unary, grpc, type GrpcServer, type EchoClient, type EchoReply, type EchoRequest } from '../support/grpc.ts';

const UPSTREAM_TIMEOUT_MS = 1000;
const REQUEST_TIMEOUT_MS = 2000;
/** The shortest the sidecar accepts next to the two above. */
const CLIENT_IDLE_TIMEOUT_MS = 3000;
/** Longer than both: each call below runs about this long. */
const CALL_MS = 3000;
/** The callers' own deadline, far beyond the sidecar's timeouts. */
const CALLER_DEADLINE_MS = 20_000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const deadline = (): Date => new Date(Date.now() + CALLER_DEADLINE_MS);

describe('gRPC calls longer than the sidecar\'s timeouts', () => {
  let pki: TestPki; let app: GrpcServer; let sidecar: Sidecar; let policies: string; let aRoutes: string; let a: Sidecar;
  let client: EchoClient; let outboundClient: EchoClient; let peerClient: EchoClient;
  const timeouts = ['--upstream-timeout', `${UPSTREAM_TIMEOUT_MS}ms`, '--request-timeout', `${REQUEST_TIMEOUT_MS}ms`,
    '--client-idle-timeout', `${CLIENT_IDLE_TIMEOUT_MS}ms`];

  before(async () => {
    pki = await makePki();
    app = await startGrpcServer('127.0.0.1:0', {
      // Answers with the time the app was given: what grpc-js read from grpc-timeout.
      Unary(call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) {
        if (call.request.text === 'hang') return;
        // (A Date or epoch ms; Infinity when no grpc-timeout came.)
        const d = call.getDeadline();
        cb(null, { text: String((d instanceof Date ? d.getTime() : d) - Date.now()), metadata: {} });
      },
      // Quiet for `count` ms (default half of CALL_MS) between its two messages, and half of CALL_MS after them.
      async ServerStream(call: grpc.ServerWritableStream<EchoRequest, EchoReply>) {
        call.write({ text: 'first', metadata: {} });
        await sleep(call.request.count || CALL_MS / 2);
        call.write({ text: 'second', metadata: {} });
        await sleep(CALL_MS / 2);
        call.end();
      },
      // Says nothing until the client's 'answer'.
      Bidi(call: grpc.ServerDuplexStream<EchoRequest, EchoReply>) {
        call.on('data', (r: EchoRequest) => { if (r.text === 'answer') call.write({ text: 'late', metadata: {} }); });
        call.on('end', () => call.end());
      },
    });
    policies = await policyDir({ 'boundary.yaml': LOOPBACK_BOUNDARY });
    sidecar = await startSidecar(['--upstream', `h2c://${app.address}`, '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
      '--policies', policies, '--audit-log', '/dev/null', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', ...timeouts]);
    // Another app's sidecar, calling the sidecar under test over mTLS (HTTP/2), with the same timeouts.
    aRoutes = await policyDir({ 'routes.yaml': PEER_ROUTES });
    a = await startSidecar(['--upstream', 'http://127.0.0.1:9', '--cert', pki.clients.billing.cert, '--key', pki.clients.billing.key, '--ca', pki.ca,
      '--policies', aRoutes, '--audit-log', '/dev/null', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', ...timeouts]);
    const tls = { ca: await readFile(pki.ca), cert: await readFile(pki.clients.billing.cert), key: await readFile(pki.clients.billing.key), servername: 'localhost' };
    client = grpcClient(`127.0.0.1:${sidecar.inboundPort}`, { tls });
    // The app's own calls out, through the outbound listener to the same server (a plaintext hop inside the loopback boundary).
    outboundClient = grpcClient(`127.0.0.1:${sidecar.outboundPort}`, { authority: app.address });
    peerClient = grpcClient(`127.0.0.1:${a.outboundPort}`, { authority: `localhost:${sidecar.inboundPort}` });
  });
  after(async () => {
    client?.close(); outboundClient?.close(); peerClient?.close();
    await a?.stop(); await sidecar?.stop(); await app?.close(); await pki?.cleanup();
    for (const dir of [policies, aRoutes]) if (dir) await rm(dir, { recursive: true, force: true });
  });

  for (const [direction, c] of [['inbound', () => client], ['outbound', () => outboundClient], ['through a peer sidecar', () => peerClient]] as const) {
    it(`tells the app the caller's own deadline in grpc-timeout, not --request-timeout (${direction})`, async () => {
      const left = Number(await new Promise<string>((resolve, reject) => {
        c().Unary({ text: 'deadline', count: 0 }, new grpc.Metadata(), { deadline: deadline() }, (err, r) => (err ? reject(err) : resolve(r!.text)));
      }));
      assert.ok(left > CALLER_DEADLINE_MS - 5000 && left <= CALLER_DEADLINE_MS, `the app was given ${left} ms`);
    });
  }

  for (const [path, c] of [['inbound', () => client], ['through a peer sidecar', () => peerClient]] as const) {
    it(`keeps a server-streaming call open while it is quiet for longer than --upstream-timeout, past --request-timeout, to its end (${path})`, async () => {
      const started = Date.now();
      const { texts, status } = await new Promise<{ texts: string[]; status: grpc.StatusObject }>((resolve) => {
        const texts: string[] = [];
        const call = c().ServerStream({ text: 'watch', count: 0 }, new grpc.Metadata(), { deadline: deadline() });
        call.on('data', (r: EchoReply) => texts.push(r.text));
        call.on('error', () => { /* the status says it */ });
        call.on('status', (status: grpc.StatusObject) => resolve({ texts, status }));
      });
      assert.equal(status.code, grpc.status.OK, status.details);
      assert.deepEqual(texts, ['first', 'second']);
      assert.ok(Date.now() - started >= CALL_MS - 100, 'the call ran its whole length');
    });

    it(`keeps a client-streaming call open while it uploads for longer than both timeouts, and relays the answer sent at its end (${path})`, async () => {
      const reply = await new Promise<EchoReply>((resolve, reject) => {
        const call = c().ClientStream(new grpc.Metadata(), { deadline: deadline() }, (err, r) => (err ? reject(err) : resolve(r!)));
        let i = 0;
        const tick = setInterval(() => {
          call.write({ text: `m${i++}`, count: 0 });
          if (i * 500 >= CALL_MS) { clearInterval(tick); call.end(); }
        }, 500);
      });
      assert.equal(reply.text, 'm0,m1,m2,m3,m4,m5');
    });

    it(`keeps a bidi call open while its app says nothing for longer than --upstream-timeout of the client's messages (${path})`, async () => {
      const { texts, status } = await new Promise<{ texts: string[]; status: grpc.StatusObject }>((resolve) => {
        const texts: string[] = [];
        const call = c().Bidi(new grpc.Metadata(), { deadline: deadline() });
        call.on('data', (r: EchoReply) => { texts.push(r.text); call.end(); });
        call.on('error', () => { /* the status says it */ });
        call.on('status', (status: grpc.StatusObject) => resolve({ texts, status }));
        let i = 0;
        const tick = setInterval(() => {
          i++;
          const last = i * 500 >= CALL_MS;
          call.write({ text: last ? 'answer' : 'ping', count: 0 });
          if (last) clearInterval(tick);
        }, 500);
      });
      assert.equal(status.code, grpc.status.OK, status.details);
      assert.deepEqual(texts, ['late']);
    });
  }

  for (const [path, c] of [['inbound', () => client], ['through a peer sidecar', () => peerClient]] as const) {
    it(`keeps a connection whose call is open while nothing moves on it for longer than --client-idle-timeout (a quiet watch; ${path})`, async () => {
      const quietMs = CLIENT_IDLE_TIMEOUT_MS + 1500;
      const { texts, status } = await new Promise<{ texts: string[]; status: grpc.StatusObject }>((resolve) => {
        const texts: string[] = [];
        const call = c().ServerStream({ text: 'watch', count: quietMs }, new grpc.Metadata(), { deadline: deadline() });
        call.on('data', (r: EchoReply) => texts.push(r.text));
        call.on('error', () => { /* the status says it */ });
        call.on('status', (status: grpc.StatusObject) => resolve({ texts, status }));
      });
      assert.equal(status.code, grpc.status.OK, status.details);
      assert.deepEqual(texts, ['first', 'second']);
    });
  }

  it('closes an HTTP/2 connection with no call open once it has been idle for --client-idle-timeout', async () => {
    const session = h2connect(`https://localhost:${sidecar.inboundPort}`, { ...tlsOptions(pki.ca, pki.clients.billing), host: '127.0.0.1' });
    session.on('error', () => { /* the close is what is checked */ });
    await h2request(session, { ':method': 'POST', ':path': '/authproxy.test.Echo/Unary', 'content-type': 'application/grpc', te: 'trailers' }, '');
    const idleFrom = Date.now();
    await within(new Promise((resolve) => session.once('close', resolve)), CLIENT_IDLE_TIMEOUT_MS + 3000, 'the idle connection closed');
    const took = Date.now() - idleFrom;
    assert.ok(took >= CLIENT_IDLE_TIMEOUT_MS - 200, `closed after ${took} ms`);
  });

  it('closes a connection with an open stream once its peer stops answering the PING sent when it went idle', async () => {
    const socket = tlsConnect({ host: '127.0.0.1', port: sidecar.inboundPort, ALPNProtocols: ['h2'], ...tlsOptions(pki.ca, pki.clients.billing) });
    socket.on('error', () => { /* the close is what is checked */ });
    await new Promise((resolve) => socket.once('secureConnect', resolve));
    const started = Date.now();
    // A gRPC call whose request never ends (no END_STREAM): the app waits for its message, the
    // stream stays open. The client reads what comes and answers nothing, a PING least of all.
    const headers = Buffer.concat([Buffer.from([0x83, 0x87]), literal(':path', '/authproxy.test.Echo/Unary'), literal(':authority', 'localhost'),
      literal('content-type', 'application/grpc'), literal('te', 'trailers')]);
    const received: Buffer[] = [];
    socket.on('data', (d: Buffer) => received.push(d));
    socket.write(Buffer.concat([PREFACE, frame(Type.SETTINGS, 0, 0, Buffer.alloc(0)), frame(Type.SETTINGS, 1, 0, Buffer.alloc(0)),
      frame(Type.HEADERS, 0x4, 1, headers)]));
    await within(new Promise((resolve) => socket.once('close', resolve)), 3 * CLIENT_IDLE_TIMEOUT_MS + 3000, 'the connection closed');
    const took = Date.now() - started;
    // Idle for the timeout, then the PING's own wait (the idle timeout here, 20 s at most).
    assert.ok(took >= 2 * CLIENT_IDLE_TIMEOUT_MS - 200, `closed after ${took} ms`);
    assert.ok(frameTypes(Buffer.concat(received)).includes(Type.PING), 'the sidecar sent a PING before closing');
  });

  it('still answers upstream_timeout when the app does not answer within --upstream-timeout of the request\'s end', async () => {
    const started = Date.now();
    await assert.rejects(unary(client, 'hang'), (e: grpc.ServiceError) => {
      assert.equal(e.code, grpc.status.DEADLINE_EXCEEDED);
      assert.match(e.details, /^upstream_timeout: /);
      return true;
    });
    const took = Date.now() - started;
    assert.ok(took >= UPSTREAM_TIMEOUT_MS - 50 && took < UPSTREAM_TIMEOUT_MS + 1500, `answered after ${took} ms`);
  });
});
