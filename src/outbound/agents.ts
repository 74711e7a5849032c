// Keep-alive connection pools to destinations: one undici Agent per way of carrying the hop
// (plaintext; TLS or mTLS with a given server trust), each keeping one pool per origin. The TLS
// agents carry the workload certificate and trust bundle of the moment; when the certificate
// rotates they are replaced, and the old ones finish their in-flight requests and close. The
// plaintext agent re-checks at connect time that the address it dials is inside a boundary.
//
// HTTP versions: TLS hops offer h2 and http/1.1 by ALPN, so a peer sidecar (whose inbound
// listener prefers h2) is reached over one multiplexed HTTP/2 connection, and any other HTTPS
// destination over whichever it picks. A plaintext hop keeps the app's version: HTTP/1.1 stays
// HTTP/1.1, and an app that spoke HTTP/2 (h2c, as gRPC clients do) is carried over h2c.
import { rootCertificates } from 'node:tls';
import type { Agent as AgentTypes } from 'undici';
import { Agent } from '../forward/undici.ts';
import type { Config } from '../config/config.ts';
import type { TlsMaterial } from '../identity/material.ts';
import type { PolicySet } from '../policy/types.ts';
import { boundaryCheckedLookup } from '../boundary/classify.ts';
import type { Carriage } from './transport.ts';
import { H2Dispatcher } from '../forward/h2-dispatcher.ts';
import type { Dispatches } from '../forward/upstream.ts';
export class OutboundAgents {
  readonly #config: Config;
  readonly #tls: () => TlsMaterial;
  readonly #plain: Agent;
  readonly #plainH2c: H2Dispatcher;
  #secure: { version: string; agents: Map<Carriage, H2Dispatcher> } | null = null;

  constructor(config: Config, tls: () => TlsMaterial, policy: () => PolicySet) {
    this.#config = config;
    this.#tls = tls;
    this.#plain = new Agent({ ...this.#base(), connect: { lookup: boundaryCheckedLookup(policy) } });
    this.#plainH2c = new H2Dispatcher({ tls: null, connectTimeoutMs: config.connectTimeoutMs, maxHeaderBytes: config.maxHeaderBytes,
      lookup: boundaryCheckedLookup(policy) as never, fallback: null });
  }

  #base(): AgentTypes.Options {
    const c = this.#config;
    return {
      headersTimeout: c.upstreamTimeoutMs,
      bodyTimeout: c.upstreamTimeoutMs,
      connectTimeout: c.connectTimeoutMs,
      keepAliveTimeout: 30_000,
      maxHeaderSize: c.maxHeaderBytes,
    };
  }

  /** `h2`: the app's request was HTTP/2, which a plaintext hop keeps. */
  for(c: Carriage, h2 = false): Dispatches {
    if (c.transport === 'plaintext') return h2 ? this.#plainH2c : this.#plain;
    const m = this.#tls();
    if (this.#secure?.version !== m.version) {
      const old = this.#secure;
      this.#secure = { version: m.version, agents: new Map() };
      if (old) for (const a of old.agents.values()) void a.close();
    }
    let agent = this.#secure.agents.get(c);
    if (!agent) {
      const ca = c.trust === 'bundle' ? m.caPem : c.trust === 'system' ? [...rootCertificates] : [...rootCertificates, m.caPem];
      const client = c.transport === 'mtls' ? { cert: m.certPem, key: m.keyPem } : {};
      const tls = { ca, ...client, minVersion: 'TLSv1.2' as const };
      // HTTP/2 when the destination picks it by ALPN (a peer sidecar does); else HTTP/1.1.
      agent = new H2Dispatcher({ tls, connectTimeoutMs: this.#config.connectTimeoutMs, maxHeaderBytes: this.#config.maxHeaderBytes,
        fallback: new Agent({ ...this.#base(), connect: tls }) });
      this.#secure.agents.set(c, agent);
    }
    return agent;
  }

  async close(): Promise<void> {
    const s = this.#secure;
    this.#secure = null;
    await Promise.all([this.#plain.close(), this.#plainH2c.close(), ...(s ? [...s.agents.values()].map((a) => a.close()) : [])]);
  }
}
