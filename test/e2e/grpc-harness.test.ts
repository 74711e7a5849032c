// The gRPC test harness and the byte relay, checked directly (no sidecar): the end-to-end gRPC
// tests trust that what they see through the proxy is what the server does on its own.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect as h2connect, constants as h2 } from 'node:http2';
import { startGrpcServer, grpcClient, unary, serverStream, clientStream, bidiPingPong, echoFrame, grpc, type GrpcServer, type EchoClient } from '../support/grpc.ts';
import { startByteRelay } from '../../bench/lib/relay.ts';

describe('gRPC test harness', () => {
  let server: GrpcServer; let client: EchoClient;

  before(async () => {
    server = await startGrpcServer();
    client = grpcClient(server.address);
  });
  after(async () => {
    client?.close();
    await server?.close();
  });

  it('echoes a unary call with the text metadata the server saw and an x-echo-trailer trailer', async () => {
    const { reply, trailers } = await unary(client, 'hello', { 'x-authproxy-principal': 'spiffe://example.org/ns/a/sa/b', 'x-blob-bin': Buffer.from([1, 2]) });
    assert.equal(reply.text, 'hello');
    assert.equal(reply.metadata['x-authproxy-principal'], 'spiffe://example.org/ns/a/sa/b');
    assert.equal(reply.metadata['x-blob-bin'], undefined, 'binary metadata is not echoed');
    assert.equal(trailers['x-echo-trailer'], 'done');
  });

  it('streams count replies numbered text#i, then the trailer', async () => {
    const { replies, trailers } = await serverStream(client, 'item', 3, { 'x-seen': 'yes' });
    assert.deepEqual(replies.map((r) => r.text), ['item#0', 'item#1', 'item#2']);
    assert.equal(replies[0]?.metadata['x-seen'], 'yes');
    assert.equal(trailers['x-echo-trailer'], 'done');
  });

  it('joins a client stream\'s texts with commas', async () => {
    const { reply, trailers } = await clientStream(client, ['a', 'b', 'c'], { 'x-seen': 'yes' });
    assert.equal(reply.text, 'a,b,c');
    assert.equal(reply.metadata['x-seen'], 'yes');
    assert.equal(trailers['x-echo-trailer'], 'done');
  });

  it('answers each bidi message, uppercased, before the next one is sent', async () => {
    const { replies, first, trailers } = await bidiPingPong(client, ['one', 'two', 'three'], { 'x-seen': 'yes' });
    assert.deepEqual(replies, ['ONE', 'TWO', 'THREE']);
    assert.equal(first?.metadata['x-seen'], 'yes');
    assert.equal(trailers['x-echo-trailer'], 'done');
  });

  it('fails a unary call whose text is fail:<code> with that status and its trailing metadata', async () => {
    await assert.rejects(unary(client, `fail:${grpc.status.PERMISSION_DENIED}`), (e: grpc.ServiceError) => {
      assert.equal(e.code, grpc.status.PERMISSION_DENIED);
      assert.equal(e.details, 'failed on purpose');
      assert.equal(e.metadata.get('x-failure')[0], 'on purpose');
      assert.deepEqual(e.metadata.get('x-echo-trailer'), [], 'the success trailer is not sent on failure');
      return true;
    });
  });

  it('sends a fail:<code> answer as a trailers-only response (one HEADERS frame ending the stream)', async () => {
    const session = h2connect(`http://${server.address}`);
    try {
      const { headers, flags, trailers } = await new Promise<{ headers: Record<string, unknown>; flags: number; trailers: boolean }>((resolve, reject) => {
        const req = session.request({ ':method': 'POST', ':path': '/authproxy.test.Echo/Unary', 'content-type': 'application/grpc', te: 'trailers' });
        let trailers = false;
        req.on('trailers', () => { trailers = true; });
        req.on('response', (h, f) => { req.resume(); req.on('end', () => resolve({ headers: h, flags: f, trailers })); });
        req.on('error', reject);
        req.end(echoFrame('fail:7'));
      });
      assert.ok(flags & h2.NGHTTP2_FLAG_END_STREAM, 'the response headers end the stream');
      assert.equal(trailers, false);
      assert.equal(headers[':status'], 200);
      assert.equal(headers['grpc-status'], '7');
      assert.equal(headers['x-failure'], 'on purpose');
    } finally { session.close(); }
  });

  it('counts every call that reached the server, of every kind', async () => {
    const before = server.calls();
    await unary(client, 'u');
    await serverStream(client, 's', 1);
    await clientStream(client, ['c']);
    await bidiPingPong(client, ['b']);
    await assert.rejects(unary(client, 'fail:5'));
    assert.equal(server.calls(), before + 5);
  });
});

describe('byte relay', () => {
  it('carries a gRPC call over one connection and counts bytes both ways', async () => {
    const server = await startGrpcServer();
    const relay = await startByteRelay({ host: '127.0.0.1', port: server.port });
    const client = grpcClient(`127.0.0.1:${relay.port}`);
    try {
      assert.equal((await unary(client, 'through the relay')).reply.text, 'through the relay');
      assert.ok(relay.bytesUp() > 0, `up ${relay.bytesUp()}`);
      assert.ok(relay.bytesDown() > 0, `down ${relay.bytesDown()}`);
      assert.equal(relay.connections(), 1);
      const up = relay.bytesUp();
      await unary(client, 'again');
      assert.ok(relay.bytesUp() > up, 'a second call is counted too');
      assert.equal(relay.connections(), 1, 'the client reused its connection');
      // The client still holds its connection open: close() resolves only because it destroys it.
      await relay.close();
    } finally {
      client.close();
      await relay.close().catch(() => undefined);
      await server.close();
    }
  });
});
