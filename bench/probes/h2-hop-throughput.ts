// Reproduction: how fast one large HTTP/2 transfer crosses the sidecar → sidecar hop when the hop
// has a round trip, which the benchmark's loopback does not (bench/FINDINGS.md, "Flow-control
// windows"). app (node:http2 client) → sidecar A's outbound h2c → a relay that holds each chunk
// --delay-ms before passing it on, both ways → sidecar B's inbound (mTLS) → an h2c app that
// serves --mib MiB on GET and counts a POST's body. Flow control, not CPU, bounds such a hop when
// the windows are small: at most a window per round trip.
//
// Run: node_modules/.bin/node bench/probes/h2-hop-throughput.ts [--delay-ms 1] [--mib 32] [--rounds 2]
// (--delay-ms 0 pipes the relay straight through. Node's timers make 1 ms at least 1 ms, often
// more, so the round trip is ~2-4 ms.)
import { createServer as createNetServer, connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import { createServer as createH2cServer, connect as h2connect } from 'node:http2';
import { parseArgs } from 'node:util';
import { openProbe } from '../lib/probe.ts';
import { startAuthproxy } from '../lib/targets.ts';
import { policyDir, route } from '../lib/outbound.ts';

const { values } = parseArgs({ options: { 'delay-ms': { type: 'string', default: '1' }, mib: { type: 'string', default: '32' }, rounds: { type: 'string', default: '2' } } });
const delayMs = Number(values['delay-ms']); const mib = Number(values.mib); const rounds = Number(values.rounds);
const MiB = Buffer.alloc(1 << 20, 'x');

const probe = await openProbe('h2-hop');
const { ctx } = probe;
const app = createH2cServer((req, res) => {
  if (req.method === 'GET') {
    let sent = 0;
    const more = (): void => { while (sent < mib) { sent++; if (!res.write(MiB)) { res.once('drain', more); return; } } res.end(); };
    more();
  } else { let got = 0; req.on('data', (d: Buffer) => { got += d.length; }); req.on('end', () => res.end(String(got))); }
});
await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
const b = await startAuthproxy(ctx, { upstream: { url: `h2c://127.0.0.1:${(app.address() as AddressInfo).port}` }, label: 'b' });
const relay = createNetServer({ noDelay: true }, (down: Socket) => {
  const up = netConnect({ host: '127.0.0.1', port: b.inboundPort, noDelay: true });
  const pass = (from: Socket, to: Socket): void => {
    if (delayMs === 0) { from.pipe(to); return; }
    from.on('data', (d: Buffer) => { setTimeout(() => { if (!to.destroyed) to.write(d); }, delayMs); });
  };
  pass(down, up); pass(up, down);
  for (const [s, other] of [[down, up], [up, down]] as const) { s.on('error', () => other.destroy()); s.on('close', () => other.destroy()); }
});
await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
// (route() adds a TrustBoundary for loopback; the route's own `tls: mtls` still decides the hop.)
const routes = await policyDir(ctx, 'h2-hop', route('peers', 'mtls', false));
const a = await startAuthproxy(ctx, { upstream: 'tcp', label: 'a', pair: ctx.pki.peerSidecar, policies: routes });
const session = h2connect(`http://127.0.0.1:${a.outboundPort}`);
session.on('error', () => { /* torn down with the sidecars at the end */ });
const authority = `localhost:${(relay.address() as AddressInfo).port}`;
const transfer = (method: 'GET' | 'POST'): Promise<number> => new Promise((resolve, reject) => {
  const t0 = performance.now();
  // (A path the benchmark policy lets A's identity, billing, GET and POST.)
  const stream = session.request({ ':method': method, ':path': '/orders/big', ':authority': authority }, { endStream: method === 'GET' });
  stream.on('error', reject);
  let status = 0; let bytes = 0; let text = '';
  stream.on('response', (h) => { status = Number(h[':status']); });
  stream.on('data', (d: Buffer) => { bytes += d.length; if (method === 'POST') text += d.toString(); });
  stream.on('end', () => {
    // GET: all of it arrived; POST: the app counted all of it.
    const whole = method === 'GET' ? bytes === mib * MiB.length : Number(text) === mib * MiB.length;
    if (status !== 200 || !whole) { reject(new Error(`${method}: status ${status}, ${method === 'GET' ? `${bytes} bytes` : text}`)); return; }
    resolve(mib / ((performance.now() - t0) / 1000));
  });
  if (method === 'POST') {
    let sent = 0;
    const more = (): void => { while (sent < mib) { sent++; if (!stream.write(MiB)) { stream.once('drain', more); return; } } stream.end(); };
    more();
  }
});
try {
  for (let round = 1; round <= rounds; round++) {
    const down = await transfer('GET'); const up = await transfer('POST');
    console.log(JSON.stringify({ round, delayMs, mib, downloadMiBps: Math.round(down), uploadMiBps: Math.round(up) }));
  }
} finally {
  session.close(); await a.stop(); await b.stop(); relay.close(); app.close();
  await probe.close();
}
