// The one stream tally both HTTP/2 connection rules read (src/http/h2-streams.ts), over real h2c
// connections: what it counts, and that a server with both rules pays one listener per stream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type ClientHttp2Session, type Http2Server, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { openStreams, trackStreams } from '../../src/http/h2-streams.ts';
import { closeOnPrematureResets } from '../../src/http/premature-reset.ts';
import { cutIdleConnections } from '../../src/inbound/limits.ts';

type Seen = ServerHttp2Stream;

/** An h2c server that holds each stream open until told. */
async function holdingServer(setup: (server: Http2Server) => void): Promise<{ server: Http2Server; url: string; seen: Seen[] }> {
  const server = createServer();
  setup(server);
  const seen: Seen[] = [];
  server.on('stream', (stream) => { seen.push(stream); });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

async function openStream(client: ClientHttp2Session): Promise<void> {
  const req = client.request({ ':path': '/' });
  req.on('error', () => {});
  req.end();
  // (On a connected session the stream gets its id, and 'ready' is emitted, inside request().)
  if (req.pending) await once(req, 'ready');
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), 'condition not reached within 2 s');
}

test('the tally counts the streams open on each connection, and forgets each one as it closes', async () => {
  const { server, url, seen } = await holdingServer((s) => trackStreams(s));
  const client = connect(url);
  try {
    await openStream(client);
    await openStream(client);
    await openStream(client);
    await until(() => seen.length === 3);
    const session = seen[0]!.session!;
    assert.equal(openStreams(session), 3);
    seen[0]!.respond({ ':status': 204 }, { endStream: true });
    await until(() => openStreams(session) === 2);
    seen[1]!.close();
    await until(() => openStreams(session) === 1);
    // A second connection has its own count.
    const other = connect(url);
    try {
      await openStream(other);
      await until(() => seen.length === 4);
      assert.notEqual(seen[3]!.session, session);
      assert.equal(openStreams(seen[3]!.session!), 1);
      assert.equal(openStreams(session), 1);
    } finally { other.destroy(); }
  } finally {
    client.destroy();
    server.close();
  }
});

test('a server with the idle timeout and the rapid-reset guard adds one close listener per stream, not one per rule', async () => {
  const bare = await holdingServer(() => {});
  const guarded = await holdingServer((s) => {
    cutIdleConnections(s, 60_000);
    closeOnPrematureResets(s, () => {});
  });
  const clients = [connect(bare.url), connect(guarded.url)];
  try {
    await Promise.all(clients.map(openStream));
    await until(() => bare.seen.length === 1 && guarded.seen.length === 1);
    const [b, g] = [bare.seen[0]!, guarded.seen[0]!];
    assert.equal(g.listenerCount('close') - b.listenerCount('close'), 1);
    assert.equal(g.session!.listenerCount('stream') - b.session!.listenerCount('stream'), 1);
    assert.equal(openStreams(g.session!), 1);
  } finally {
    for (const c of clients) c.destroy();
    bare.server.close();
    guarded.server.close();
  }
});

test('a second stream close hook on one server is refused rather than silently replacing the first', () => {
  const server = createServer();
  closeOnPrematureResets(server, () => {});
  assert.throws(() => closeOnPrematureResets(server, () => {}), /already has a stream close hook/);
  trackStreams(server);
});

test('a session of a server that keeps no tally reads as having no open stream', async () => {
  const { server, url, seen } = await holdingServer(() => {});
  const client = connect(url);
  try {
    await openStream(client);
    await until(() => seen.length === 1);
    assert.equal(openStreams(seen[0]!.session!), 0);
  } finally {
    client.destroy();
    server.close();
  }
});
