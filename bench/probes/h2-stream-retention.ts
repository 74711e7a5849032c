// Reproduction, for node:http2 upstream: a finished HTTP/2 client stream survives every
// young-generation GC, with everything its listeners hold and about one copy of its request header
// block, until the next full GC. That promotes a proxy's per-request garbage, and the full GCs it
// forces are the sidecar → sidecar p99 (bench/FINDINGS.md, "What the GC had to collect").
//
// The header block's copy is kept by AsyncResource.prototype.bind (lib/async_hooks.js), which
// ClientHttp2Session.request calls on every request: it defines the deprecated `asyncResource`
// accessor on the bound function with a getter and setter made for that call, and V8 keeps such an
// accessor pair in the function's map, which lives in the old generation. The getter's context
// holds the bound requestOnConnect and so the request's header list, which a scavenge must then
// treat as live. The last line replaces bind with one that defines a data property instead.
//
// Run: node_modules/.bin/node --expose-gc bench/probes/h2-stream-retention.ts
// Prints the old generation's growth per finished exchange after forced scavenges, for requests
// without and with a 16 KB header, with the listeners left on and taken off. On Node 24.21:
// 13 / 4.5 KB with small headers and 29 / 20.6 KB with the 16 KB one (listeners on / off; client
// and server share this process, so both sides' streams count), and 3.5 KB for the 16 KB header
// with bind replaced. A young object that died with its request would add nothing.
import { connect, createServer } from 'node:http2';
import { getHeapSpaceStatistics } from 'node:v8';
import { once } from 'node:events';
import { AsyncResource } from 'node:async_hooks';
import type { AddressInfo } from 'node:net';

const gc = (globalThis as { gc?: (o?: { type: 'minor' | 'major' }) => void }).gc;
if (!gc) { process.stderr.write('run with --expose-gc\n'); process.exit(2); }

const server = createServer();
server.on('stream', (s) => { s.resume(); s.on('end', () => { s.respond({ ':status': 200 }); s.end('ok'); }); });
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const session = connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
const TOKEN = 'x'.repeat(16_384);

const oldBytes = (): number => getHeapSpaceStatistics()
  .filter((s) => s.space_name === 'old_space' || s.space_name === 'large_object_space')
  .reduce((n, s) => n + s.space_used_size, 0);

function exchange(bigHeader: boolean, unhook: boolean): Promise<void> {
  return new Promise((resolve) => {
    const stream = session.request({ ':method': 'POST', ':path': '/', ...(bigHeader ? { 'x-token': TOKEN } : {}) });
    const held = { payload: new Array<number>(1000).fill(1) }; // what a proxy's listeners hold (~8 KB)
    const onData = (): void => { held.payload[0]!++; };
    const onEnd = (): void => { if (unhook) stream.off('data', onData).off('end', onEnd); resolve(); };
    stream.on('data', onData).on('end', onEnd);
    stream.end(Buffer.alloc(100));
  });
}

// bind as Node defines it, less the per-call accessor: `asyncResource` as a data property.
function bindWithDataProperty(this: AsyncResource, fn: (...a: unknown[]) => unknown): (...a: unknown[]) => unknown {
  const resource: AsyncResource = this; // eslint-disable-line @typescript-eslint/no-this-alias -- the bound function has a this of its own
  const bound = function (this: unknown, ...args: unknown[]): unknown { return resource.runInAsyncScope(fn, this, ...args); };
  return Object.defineProperty(bound, 'asyncResource', { value: resource, enumerable: true, configurable: true });
}

for (const [bigHeader, unhook, patched] of [[false, false, false], [false, true, false], [true, false, false], [true, true, false], [true, true, true]] as const) {
  if (patched) (AsyncResource.prototype as unknown as { bind: unknown }).bind = bindWithDataProperty;
  for (let i = 0; i < 20; i++) await exchange(bigHeader, unhook);
  gc({ type: 'major' });
  gc({ type: 'minor' }); gc({ type: 'minor' });
  const before = oldBytes();
  for (let i = 0; i < 100; i++) await exchange(bigHeader, unhook);
  await new Promise((r) => setTimeout(r, 100));
  gc({ type: 'minor' }); gc({ type: 'minor' });
  const perExchange = (oldBytes() - before) / 100 / 1024;
  process.stdout.write(`${bigHeader ? '16 KB header' : 'small headers'}, listeners ${unhook ? 'taken off' : 'left on'}${patched ? ', AsyncResource bind without the accessor' : ''}: ${perExchange.toFixed(1)} KB promoted per finished exchange\n`);
}
session.close();
server.close();
