// Real gRPC for end-to-end tests: a @grpc/grpc-js server (cleartext HTTP/2, as an app behind a
// sidecar listens) with one method per call kind, and promise helpers around a grpc-js client.
// The server counts calls that reached it, so a test can prove a refused call never arrived, and
// echoes the metadata it saw, so a test can see what the sidecar added or replaced.
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as loader from '@grpc/proto-loader';

const PROTO = fileURLToPath(new URL('./grpc/echo.proto', import.meta.url));
// defaults: true so an empty map or a zero count arrives as {} / 0, not undefined.
const definition = loader.loadSync(PROTO, { keepCase: true, longs: String, defaults: true });
const pkg = grpc.loadPackageDefinition(definition) as unknown as { authproxy: { test: { Echo: grpc.ServiceClientConstructor } } };
const Echo = pkg.authproxy.test.Echo;

export interface EchoRequest { text: string; count: number }
export interface EchoReply { text: string; metadata: Record<string, string> }

/** The generated client's methods, typed by hand (proto-loader gives no static types). */
export interface EchoClient extends grpc.Client {
  Unary(req: EchoRequest, md: grpc.Metadata, opts: grpc.CallOptions, cb: grpc.requestCallback<EchoReply>): grpc.ClientUnaryCall;
  ServerStream(req: EchoRequest, md: grpc.Metadata, opts: grpc.CallOptions): grpc.ClientReadableStream<EchoReply>;
  ClientStream(md: grpc.Metadata, opts: grpc.CallOptions, cb: grpc.requestCallback<EchoReply>): grpc.ClientWritableStream<EchoRequest>;
  Bidi(md: grpc.Metadata, opts: grpc.CallOptions): grpc.ClientDuplexStream<EchoRequest, EchoReply>;
}

export interface GrpcServer {
  /** The TCP port (0 when bound to a Unix socket). */
  port: number;
  /** `127.0.0.1:PORT` or `unix:/path`, a grpc-js target; the sidecar's upstream is `h2c://` or `h2c+` + this. */
  address: string;
  /** Calls that reached a handler, of every kind. */
  calls(): number;
  close(): Promise<void>;
}

/** Text metadata only: `-bin` values are Buffers and would not fit the reply's map<string,string>. */
function seenMetadata(md: grpc.Metadata): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(md.getMap())) if (!k.endsWith('-bin') && typeof v === 'string') out[k] = v;
  return out;
}

/** Sent as trailing metadata on every successful call, to prove trailers cross the proxy. */
function trailer(): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set('x-echo-trailer', 'done');
  return md;
}

/**
 * A failure's rich error details, as Google APIs send them: a serialized google.rpc.Status
 * (code 5, message "foo") in binary metadata, base64 on the wire.
 */
export const STATUS_DETAILS = Buffer.from([0x08, 0x05, 0x12, 0x03, 0x66, 0x6f, 0x6f]);

/** The server's method handlers; a test may replace any of them (`startGrpcServer`'s `replace`). */
export interface EchoHandlers {
  Unary(call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, cb: grpc.sendUnaryData<EchoReply>): void;
  ServerStream(call: grpc.ServerWritableStream<EchoRequest, EchoReply>): void;
  ClientStream(call: grpc.ServerReadableStream<EchoRequest, EchoReply>, cb: grpc.sendUnaryData<EchoReply>): void;
  Bidi(call: grpc.ServerDuplexStream<EchoRequest, EchoReply>): void;
}

/**
 * Unary echoes; ServerStream sends `count` replies `text#i`; ClientStream joins the texts with ',';
 * Bidi answers each message, uppercased, as it arrives. A unary request text `sleep:<ms>` answers that late; `fail:<code>` makes
 * the server answer that status with trailing metadata `x-failure: on purpose` and
 * `grpc-status-details-bin` (STATUS_DETAILS, binary) and no message,
 * which grpc-js sends as a trailers-only response (one HEADERS frame with END_STREAM).
 * `replace` swaps in a test's own handlers (a call that never ends, one that records its
 * cancellation); they are counted in calls() like the others. `options` are grpc-js's server
 * options (`grpc.max_concurrent_streams`, …); `credentials` TLS for a server that is not h2c.
 */
export async function startGrpcServer(bind = '127.0.0.1:0', replace: Partial<EchoHandlers> = {},
  { options = {}, credentials = grpc.ServerCredentials.createInsecure() }: { options?: grpc.ServerOptions; credentials?: grpc.ServerCredentials } = {}): Promise<GrpcServer> {
  let calls = 0;
  const server = new grpc.Server(options);
  const echo: EchoHandlers = {
    Unary(call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) {
      const m = /^fail:(\d+)$/.exec(call.request.text);
      if (m) {
        const md = new grpc.Metadata();
        md.set('x-failure', 'on purpose');
        md.set('grpc-status-details-bin', STATUS_DETAILS);
        cb({ code: Number(m[1]), details: 'failed on purpose', metadata: md });
        return;
      }
      const slow = /^sleep:(\d+)$/.exec(call.request.text);
      if (slow) {
        setTimeout(() => cb(null, { text: call.request.text, metadata: seenMetadata(call.metadata) }, trailer()), Number(slow[1]));
        return;
      }
      cb(null, { text: call.request.text, metadata: seenMetadata(call.metadata) }, trailer());
    },
    ServerStream(call: grpc.ServerWritableStream<EchoRequest, EchoReply>) {
      // The metadata rides on the first reply only: once is enough to assert on.
      for (let i = 0; i < call.request.count; i++) call.write({ text: `${call.request.text}#${i}`, metadata: i === 0 ? seenMetadata(call.metadata) : {} });
      call.end(trailer());
    },
    ClientStream(call: grpc.ServerReadableStream<EchoRequest, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) {
      const texts: string[] = [];
      call.on('data', (r: EchoRequest) => texts.push(r.text));
      call.on('end', () => cb(null, { text: texts.join(','), metadata: seenMetadata(call.metadata) }, trailer()));
    },
    Bidi(call: grpc.ServerDuplexStream<EchoRequest, EchoReply>) {
      let first = true;
      call.on('data', (r: EchoRequest) => {
        call.write({ text: r.text.toUpperCase(), metadata: first ? seenMetadata(call.metadata) : {} });
        first = false;
      });
      call.on('end', () => call.end(trailer()));
    },
  };
  const counted: grpc.UntypedServiceImplementation = {};
  for (const [name, handler] of Object.entries({ ...echo, ...replace })) {
    counted[name] = (...args: unknown[]) => { calls++; (handler as (...a: unknown[]) => void)(...args); };
  }
  server.addService(Echo.service, counted);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(bind, credentials, (err, p) => (err ? reject(err) : resolve(p)));
  });
  return {
    port, address: bind.startsWith('unix:') ? bind : `127.0.0.1:${port}`, calls: () => calls,
    // tryShutdown waits for open calls; a call a broken proxy left hanging must not hang after().
    close: () => new Promise<void>((resolve) => { server.tryShutdown(() => resolve()); setTimeout(() => { server.forceShutdown(); resolve(); }, 2000).unref(); }),
  };
}

export interface GrpcClientOptions {
  /** Sent as :authority (e.g. the peer service's name when dialing the sidecar's outbound listener). */
  authority?: string;
  /** TLS with a client certificate; without it the channel is cleartext h2c. */
  tls?: { ca: Buffer; cert: Buffer; key: Buffer; servername?: string };
}

/** A client for `target` (`host:port`). Close it with `client.close()`. */
export function grpcClient(target: string, opts: GrpcClientOptions = {}): EchoClient {
  const creds = opts.tls ? grpc.credentials.createSsl(opts.tls.ca, opts.tls.key, opts.tls.cert) : grpc.credentials.createInsecure();
  const options: grpc.ChannelOptions = {};
  // grpc-js checks the server certificate against the target host (127.0.0.1) unless told otherwise;
  // the override also becomes the SNI and the default :authority.
  if (opts.tls?.servername) options['grpc.ssl_target_name_override'] = opts.tls.servername;
  if (opts.authority) options['grpc.default_authority'] = opts.authority;
  return new Echo(target, creds, options) as unknown as EchoClient;
}

/** Every call has one, so a broken proxy fails a test with DEADLINE_EXCEEDED instead of hanging it. */
const deadline = (): Date => new Date(Date.now() + 10_000);
export type Trailers = Record<string, grpc.MetadataValue>;
export type RequestMetadata = Record<string, string | Buffer>;

function metadataOf(init: RequestMetadata | undefined): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(init ?? {})) md.set(k, v);
  return md;
}

// All helpers reject with the grpc-js ServiceError (`code`, `details`, `metadata`: the trailers).
// They resolve on the 'status' event, which grpc-js emits after the callback / last 'data'.

export function unary(client: EchoClient, text: string, metadata?: RequestMetadata): Promise<{ reply: EchoReply; trailers: Trailers }> {
  return new Promise((resolve, reject) => {
    let reply: EchoReply | undefined;
    const call = client.Unary({ text, count: 0 }, metadataOf(metadata), { deadline: deadline() }, (err, r) => {
      if (err) reject(err); else reply = r;
    });
    call.on('status', (s: grpc.StatusObject) => { if (s.code === grpc.status.OK && reply) resolve({ reply, trailers: s.metadata.getMap() }); });
  });
}

export function serverStream(client: EchoClient, text: string, count: number, metadata?: RequestMetadata): Promise<{ replies: EchoReply[]; trailers: Trailers }> {
  return new Promise((resolve, reject) => {
    const replies: EchoReply[] = [];
    const call = client.ServerStream({ text, count }, metadataOf(metadata), { deadline: deadline() });
    call.on('data', (r: EchoReply) => replies.push(r));
    call.on('error', reject);
    call.on('status', (s: grpc.StatusObject) => { if (s.code === grpc.status.OK) resolve({ replies, trailers: s.metadata.getMap() }); });
  });
}

export function clientStream(client: EchoClient, texts: string[], metadata?: RequestMetadata): Promise<{ reply: EchoReply; trailers: Trailers }> {
  return new Promise((resolve, reject) => {
    let reply: EchoReply | undefined;
    const call = client.ClientStream(metadataOf(metadata), { deadline: deadline() }, (err, r) => {
      if (err) reject(err); else reply = r;
    });
    call.on('status', (s: grpc.StatusObject) => { if (s.code === grpc.status.OK && reply) resolve({ reply, trailers: s.metadata.getMap() }); });
    for (const text of texts) call.write({ text, count: 0 });
    call.end();
  });
}

/**
 * Sends each message only after the reply to the previous one arrived, so it completes only if the
 * path in between is interactive (a proxy that buffers the request until it ends would deadlock
 * it until the deadline).
 */
export function bidiPingPong(client: EchoClient, texts: string[], metadata?: RequestMetadata): Promise<{ replies: string[]; first?: EchoReply; trailers: Trailers }> {
  return new Promise((resolve, reject) => {
    const replies: string[] = [];
    let first: EchoReply | undefined;
    const call = client.Bidi(metadataOf(metadata), { deadline: deadline() });
    let next = 0;
    const send = (): void => { if (next < texts.length) call.write({ text: texts[next++]!, count: 0 }); else call.end(); };
    call.on('data', (r: EchoReply) => { first ??= r; replies.push(r.text); send(); });
    call.on('error', reject);
    call.on('status', (s: grpc.StatusObject) => { if (s.code === grpc.status.OK) resolve({ replies, first, trailers: s.metadata.getMap() }); });
    send();
  });
}

/**
 * One gRPC message frame (length-prefixed, uncompressed) whose message is `{ text }`: field 1,
 * wire type 2, the same bytes for an EchoRequest and an EchoReply. For raw node:http2 peers.
 */
export function echoFrame(text: string): Buffer {
  const bytes = Buffer.from(text);
  const varint: number[] = [];
  for (let n = bytes.length; ; n >>>= 7) { if (n < 0x80) { varint.push(n); break; } varint.push((n & 0x7f) | 0x80); }
  const body = Buffer.concat([Buffer.from([0x0a, ...varint]), bytes]);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

export { grpc };
