// Header bytes on the wire for the sidecar → sidecar hop: what a large token costs per request
// once the connection is warm. A byte-counting TCP relay sits between sidecar A's outbound hop
// and sidecar B's inbound listener; the dev issuer pads tokens to 16 KB; requests are sent one
// after another on one keep-alive connection from the load side, so A reuses one connection to B.
// Per request = bytes A → B over the measured requests / requests (TLS records and HTTP/2 frames
// included, the 1 KB body too). A token sent literally costs its full size on every request; a
// token the HPACK table references costs a few bytes.
import { Pool } from 'undici';
import { stopProcess } from './procs.ts';
import { startAuthproxy, type Context } from './targets.ts';
import { startIssuerProcess, policyDir, AUDIENCE, CLIENT_ID } from './outbound.ts';
import { startByteRelay } from './relay.ts';

export interface WireResult {
  header: string;
  tokenBytes: number;
  requests: number;
  /** Connections A opened to B during the measured requests (0: the warm-up's was reused). */
  newConnections: number;
  bytesPerRequest: number;
  bodyBytes: number;
}

const TOKEN_PAD = 16 * 1024;
const BODY = Buffer.alloc(1024, 'x');
const VARIANTS: ReadonlyArray<{ header: string; scheme: string }> = [
  { header: 'authorization', scheme: 'Bearer' },
  // Same token under a header name HPACK encoders do not treat as sensitive.
  { header: 'x-mesh-token', scheme: '' },
];

function route(header: string, scheme: string): string {
  return `apiVersion: authproxy.dev/v1
kind: OutboundRoute
metadata: { name: peer }
spec:
  hosts: ["localhost"]
  tls: mtls
  token: { audience: "${AUDIENCE}", header: "${header}", scheme: "${scheme}" }
`;
}

export async function measureWireBytes(ctx: Context, requests: number): Promise<WireResult[]> {
  const issuer = await startIssuerProcess(ctx, ['--pad-tokens', String(TOKEN_PAD)]);
  const b = await startAuthproxy(ctx, { upstream: 'tcp', label: 'wire-inbound' });
  const relay = await startByteRelay({ host: '127.0.0.1', port: b.inboundPort });
  const results: WireResult[] = [];
  try {
    for (const v of VARIANTS) {
      const a = await startAuthproxy(ctx, {
        upstream: 'tcp', label: `wire-outbound-${v.header}`, pair: ctx.pki.peerSidecar,
        policies: await policyDir(ctx, `wire-${v.header}`, route(v.header, v.scheme)),
        extraArgs: ['--issuer', issuer.url, '--client-id', CLIENT_ID, '--client-auth', 'private_key_jwt'],
      });
      const pool = new Pool(`http://127.0.0.1:${a.outboundPort}`, { connections: 1 });
      const send = async (): Promise<void> => {
        const r = await pool.request({ path: '/orders/123', method: 'POST', headers: { host: `localhost:${relay.port}`, 'content-type': 'application/octet-stream' }, body: BODY });
        const text = await r.body.text();
        if (r.statusCode !== 200) throw new Error(`sidecar → sidecar answered ${r.statusCode}: ${text.slice(0, 300)}`);
      };
      try {
        // The first requests fetch the token and open A's connection to B.
        for (let i = 0; i < 5; i++) await send();
        const [up0, conn0] = [relay.bytesUp(), relay.connections()];
        for (let i = 0; i < requests; i++) await send();
        results.push({
          header: v.header, tokenBytes: TOKEN_PAD, requests, newConnections: relay.connections() - conn0,
          bytesPerRequest: (relay.bytesUp() - up0) / requests, bodyBytes: BODY.length,
        });
      } finally { await pool.close(); await a.stop(); }
    }
  } finally {
    await relay.close();
    await b.stop();
    await stopProcess(issuer.proc);
  }
  return results;
}
