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
import { connect as tlsConnect, rootCertificates, type ConnectionOptions } from 'node:tls';
import { connect as netConnect, isIP, type LookupFunction, type Socket } from 'node:net';
import type { Agent as AgentTypes } from 'undici';
import { Agent } from '../forward/undici.ts';
import type { Config } from '../config/config.ts';
import type { TlsMaterial } from '../identity/material.ts';
import type { PolicySet } from '../policy/types.ts';
import { boundaryCheckedLookup } from '../boundary/classify.ts';
import type { Carriage } from './transport.ts';
import { H2Dispatcher } from '../forward/h2-dispatcher.ts';
import type { Dispatches } from '../forward/upstream.ts';

/** Under one workload certificate: each TLS carriage's agent, and its TLS settings (trust, client certificate). */
interface SecureState { material: TlsMaterial; agents: Map<Carriage, H2Dispatcher>; tls: Map<Carriage, ConnectionOptions> }

export class OutboundAgents {
  readonly #config: Config;
  readonly #tls: () => TlsMaterial;
  readonly #lookup: LookupFunction;
  readonly #plain: Agent;
  readonly #plainH2c: H2Dispatcher;
  #secure: SecureState | null = null;

  constructor(config: Config, tls: () => TlsMaterial, policy: () => PolicySet) {
    this.#config = config;
    this.#tls = tls;
    this.#lookup = boundaryCheckedLookup(policy) as LookupFunction;
    this.#plain = new Agent({ ...this.#base(), connect: { lookup: this.#lookup } });
    this.#plainH2c = new H2Dispatcher({ tls: null, connectTimeoutMs: config.connectTimeoutMs, maxHeaderBytes: config.maxHeaderBytes,
      lookup: this.#lookup, fallback: null });
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
    const secure = this.#current();
    let agent = secure.agents.get(c);
    if (!agent) {
      const tls = this.#tlsOptions(secure, c);
      // HTTP/2 when the destination picks it by ALPN (a peer sidecar does); else HTTP/1.1.
      agent = new H2Dispatcher({ tls, connectTimeoutMs: this.#config.connectTimeoutMs, maxHeaderBytes: this.#config.maxHeaderBytes,
        fallback: new Agent({ ...this.#base(), connect: tls }) });
      secure.agents.set(c, agent);
    }
    return agent;
  }

  /**
   * A connection of its own for an Upgrade handshake (outbound/upgrade.ts), never pooled: after a
   * 101 it belongs to the app for good. Carried as the pools carry requests (the boundary-checked
   * lookup on plaintext; the same trust, client certificate and hostname check on TLS), but
   * offering only http/1.1 by ALPN: Upgrade is HTTP/1.1's, and a peer sidecar, which prefers h2,
   * takes it over HTTP/1.1 then. Not connected within --connect-timeout: destroyed with undici's
   * code for it, so it fails as a request's connect would (504 upstream_timeout).
   */
  upgradeConnection(c: Carriage, host: string, port: number): Socket {
    const socket = c.transport === 'plaintext'
      ? netConnect({ host, port, lookup: this.#lookup })
      : tlsConnect({ ...this.#tlsOptions(this.#current(), c), host, port, ...(isIP(host) === 0 ? { servername: host } : {}), ALPNProtocols: ['http/1.1'] });
    socket.setNoDelay(true);
    const ms = this.#config.connectTimeoutMs;
    const timer = setTimeout(() => socket.destroy(Object.assign(new Error(`connect timeout (${ms} ms)`), { code: 'UND_ERR_CONNECT_TIMEOUT' })), ms);
    const ready = (): void => clearTimeout(timer);
    socket.once(c.transport === 'plaintext' ? 'connect' : 'secureConnect', ready);
    socket.once('close', ready);
    return socket;
  }

  /** The TLS agents and settings of the certificate in force: a rotation replaces them, and closes the old agents once idle. */
  #current(): SecureState {
    const m = this.#tls();
    if (this.#secure?.material.version !== m.version) {
      const old = this.#secure;
      this.#secure = { material: m, agents: new Map(), tls: new Map() };
      if (old) for (const a of old.agents.values()) void a.close();
    }
    return this.#secure!;
  }

  #tlsOptions(secure: SecureState, c: Carriage): ConnectionOptions {
    let tls = secure.tls.get(c);
    if (!tls) {
      const m = secure.material;
      const ca = c.trust === 'bundle' ? m.caPem : c.trust === 'system' ? [...rootCertificates] : [...rootCertificates, m.caPem];
      const client = c.transport === 'mtls' ? { cert: m.certPem, key: m.keyPem } : {};
      tls = { ca, ...client, minVersion: 'TLSv1.2' as const };
      secure.tls.set(c, tls);
    }
    return tls;
  }

  async close(): Promise<void> {
    const s = this.#secure;
    this.#secure = null;
    await Promise.all([this.#plain.close(), this.#plainH2c.close(), ...(s ? [...s.agents.values()].map((a) => a.close()) : [])]);
  }
}
