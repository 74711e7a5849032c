// Preload (--import) for request-way-in.ts: times each request inside the proxy, from the server's
// 'request' event to the moment undici's Pool takes it for the app, and how long the 'request'
// listeners ran before returning. Written to $REQUEST_WAY_IN_OUT when the process exits.
// Works for the sidecar and for the Node floor, which both forward with undici's Pool.
import tls from 'node:tls';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const out = process.env.REQUEST_WAY_IN_OUT;
const MAX = 200_000;
const toDispatch = new Float64Array(MAX);
const inHandler = new Float64Array(MAX);
let n = 0;
let requestAt = 0;
let handlerMs = 0;

type Emit = (this: tls.Server, event: string | symbol, ...args: unknown[]) => boolean;
const emit = tls.Server.prototype.emit as Emit;
(tls.Server.prototype as { emit: Emit }).emit = function timedEmit(event, ...args) {
  if (event !== 'request') return emit.call(this, event, ...args);
  const at = performance.now();
  const result = emit.call(this, event, ...args);
  requestAt = at;
  handlerMs = performance.now() - at;
  return result;
};

// The very module the sidecar loads (src/forward/undici.ts) and undici's index re-exports.
const Pool = createRequire(import.meta.url)('undici/lib/dispatcher/pool.js') as { prototype: { dispatch(...a: unknown[]): boolean } };
const dispatch = Pool.prototype.dispatch;
Pool.prototype.dispatch = function timedDispatch(...args: unknown[]) {
  // One request at a time at a moderate rate: the last 'request' event is this request's.
  if (requestAt !== 0 && n < MAX) { toDispatch[n] = performance.now() - requestAt; inHandler[n] = handlerMs; n++; }
  requestAt = 0;
  return dispatch.apply(this, args);
};

process.on('exit', () => {
  if (out) writeFileSync(out, JSON.stringify({ toDispatch: Array.from(toDispatch.subarray(0, n)), inHandler: Array.from(inHandler.subarray(0, n)) }));
});
