// The connection an outbound Upgrade's handshake goes on (OutboundAgents.upgradeConnection), with
// real sockets: carried as the pools carry requests (the boundary-checked lookup on plaintext; the
// workload certificate of the moment and the trust bundle on mTLS), and offering only http/1.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { createServer as createNetServer, type AddressInfo, type Server } from 'node:net';
import { once } from 'node:events';
import { makePki, SERVER_ID, BILLING_ID } from '../support/pki.ts';
import { loadTlsMaterial } from '../../src/identity/material.ts';
import { buildConfig } from '../../src/config/config.ts';
import { emptyPolicySet } from '../../src/policy/set.ts';
import { createCA, issueCertificate } from '../../src/certs/pki.ts';
import { OutboundAgents } from '../../src/outbound/agents.ts';
import { carriageFor } from '../../src/outbound/transport.ts';
import { classifyUpstreamError } from '../../src/forward/errors.ts';

async function listening(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

test('a plaintext upgrade connection to a name that resolves outside every boundary is refused at connect time, as boundary_violation', async () => {
  const server = createNetServer((s) => s.destroy());
  const port = await listening(server);
  const pki = await makePki();
  try {
    const m = await loadTlsMaterial({ cert: pki.server.cert, key: pki.server.key, ca: [pki.ca] });
    // No TrustBoundary at all: whatever localhost resolves to is outside.
    const agents = new OutboundAgents(buildConfig([{ upstream: 'http://127.0.0.1:1' }], '/tmp'), () => m, emptyPolicySet);
    const socket = agents.upgradeConnection(carriageFor('none', null, null), 'localhost', port);
    const [err] = await once(socket, 'error') as [Error];
    assert.equal(classifyUpstreamError(err).code, 'boundary_violation', err.message);
    await agents.close();
  } finally {
    server.close();
    await pki.cleanup();
  }
});

test('an mTLS upgrade connection presents the workload certificate of the moment, verifies the destination by the bundle, and offers only http/1.1', async () => {
  const pki = await makePki();
  const pair = await issueCertificate(pki.caPair, { ipAddresses: ['127.0.0.1'] });
  const seen: Array<{ san: string | undefined; alpn: string | false }> = [];
  const server = createTlsServer({ cert: pair.certPem, key: pair.keyPem, ca: pki.caPair.certPem, requestCert: true, rejectUnauthorized: true, ALPNProtocols: ['h2', 'http/1.1'] },
    (s: TLSSocket) => { seen.push({ san: s.getPeerCertificate().subjectaltname, alpn: s.alpnProtocol ?? false }); s.end(); });
  const port = await listening(server);
  try {
    let m = await loadTlsMaterial({ cert: pki.server.cert, key: pki.server.key, ca: [pki.ca] });
    const agents = new OutboundAgents(buildConfig([{ upstream: 'http://127.0.0.1:1' }], '/tmp'), () => m, emptyPolicySet);
    const mtls = carriageFor('mtls', null, null);
    const connectOnce = async (): Promise<void> => {
      const socket = agents.upgradeConnection(mtls, '127.0.0.1', port) as TLSSocket;
      await once(socket, 'secureConnect');
      assert.equal(socket.alpnProtocol, 'http/1.1');
      // Its last handshake flight (the client certificate, under TLS 1.3) goes out before the close.
      socket.end();
      await once(socket, 'close');
    };
    await connectOnce();
    m = await loadTlsMaterial({ cert: pki.clients.billing.cert, key: pki.clients.billing.key, ca: [pki.ca] });
    await connectOnce();
    const deadline = Date.now() + 2000;
    while (seen.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(seen.map((s) => s.alpn), ['http/1.1', 'http/1.1']);
    assert.match(String(seen[0]?.san), new RegExp(`URI:${SERVER_ID}`));
    assert.match(String(seen[1]?.san), new RegExp(`URI:${BILLING_ID}`), 'the rotated certificate, without a restart');

    const stranger = await issueCertificate(await createCA({ commonName: 'not in the bundle' }), { ipAddresses: ['127.0.0.1'] });
    const untrusted = createTlsServer({ cert: stranger.certPem, key: stranger.keyPem }, (s) => s.end());
    const untrustedPort = await listening(untrusted);
    try {
      const [err] = await once(agents.upgradeConnection(mtls, '127.0.0.1', untrustedPort), 'error') as [NodeJS.ErrnoException];
      assert.equal(classifyUpstreamError(err).code, 'upstream_unavailable', err.message);
      assert.match(String(err.code), /UNABLE_TO_VERIFY|SELF_SIGNED/);
    } finally { untrusted.close(); }
    await agents.close();
  } finally {
    server.close();
    await pki.cleanup();
  }
});
