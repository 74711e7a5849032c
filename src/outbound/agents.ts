// Keep-alive connection pools to destinations: one undici Agent per way of carrying the hop
// (plaintext; TLS or mTLS with a given server trust), each keeping one pool per origin. The TLS
// agents carry the workload certificate and trust bundle of the moment; when the certificate
// rotates they are replaced, and the old ones finish their in-flight requests and close. The
// plaintext agent re-checks at connect time that the address it dials is inside a boundary.
import { rootCertificates } from 'node:tls';
import { Agent, type Dispatcher } from 'undici';
import type { Config } from '../config/config.ts';
import type { TlsMaterial } from '../identity/material.ts';
import type { PolicySet } from '../policy/types.ts';
import { boundaryCheckedLookup } from '../boundary/classify.ts';
import type { Carriage } from './transport.ts';

export class OutboundAgents {
  readonly #config: Config;
  readonly #tls: () => TlsMaterial;
  readonly #plain: Agent;
  #secure: { version: string; agents: Map<Carriage, Agent> } | null = null;

  constructor(config: Config, tls: () => TlsMaterial, policy: () => PolicySet) {
    this.#config = config;
    this.#tls = tls;
    this.#plain = new Agent({ ...this.#base(), connect: { lookup: boundaryCheckedLookup(policy) } });
  }

  #base(): Agent.Options {
    const c = this.#config;
    return {
      headersTimeout: c.upstreamTimeoutMs,
      bodyTimeout: c.upstreamTimeoutMs,
      connectTimeout: c.connectTimeoutMs,
      keepAliveTimeout: 30_000,
      maxHeaderSize: c.maxHeaderBytes,
      // HTTP/1.1 on every hop: the peer sidecar's inbound listener speaks it, and header limits
      // (431 for oversized tokens) mean the same thing on both sides.
      allowH2: false,
    };
  }

  for(c: Carriage): Dispatcher {
    if (c.transport === 'plaintext') return this.#plain;
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
      agent = new Agent({ ...this.#base(), connect: { ca, ...client, minVersion: 'TLSv1.2' } });
      this.#secure.agents.set(c, agent);
    }
    return agent;
  }

  async close(): Promise<void> {
    const s = this.#secure;
    this.#secure = null;
    await Promise.all([this.#plain.close(), ...(s ? [...s.agents.values()].map((a) => a.close()) : [])]);
  }
}
