// HTTP/2 flow-control windows (src/http/h2.ts): every session the sidecar accepts or opens lets
// its peer send 1 MiB per stream and 4 MiB per connection before the sidecar has read it, not
// nghttp2's 64 KiB. One connection carries every call between two sidecars. With 64 KiB windows,
// a hop with a 2 ms round trip carried 15 MiB/s. The windows are read here as the peer sees them: the
// SETTINGS value, and the connection window after the sidecar's WINDOW_UPDATE.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { connect as h2connect, createServer as createH2cServer, type ClientHttp2Session, type Http2Server, type Http2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { makePki, type TestPki } from '../support/pki.ts';
import { startSidecar, type Sidecar } from '../support/sidecar.ts';
import { policyDir, LOOPBACK_BOUNDARY } from '../support/policy-dir.ts';
import { tlsOptions, h2request } from '../support/clients.ts';
import { waitFor } from '../support/wait.ts';
import { H2_CONNECTION_WINDOW_BYTES, H2_STREAM_WINDOW_BYTES } from '../../src/http/h2.ts';

describe('HTTP/2 flow-control windows', () => {
  let pki: TestPki; let app: Http2Server; let sidecar: Sidecar; let policies: string; let plaintextPort: number;
  /** The windows the app saw the sidecar's client session grant, per request. */
  const granted: Array<{ stream: number | undefined; connection: number | undefined }> = [];
  const sessions: ClientHttp2Session[] = [];

  /** The stream window a peer was given (SETTINGS) and, once the WINDOW_UPDATE came, the connection window. */
  const windowsGivenTo = async (session: Http2Session): Promise<{ stream: number | undefined; connection: number | undefined }> => {
    if (!session.remoteSettings.initialWindowSize) await new Promise((resolve) => session.once('remoteSettings', resolve));
    await waitFor(() => (session.state.remoteWindowSize ?? 0) > 65_535, 'the connection window update');
    return { stream: session.remoteSettings.initialWindowSize, connection: session.state.remoteWindowSize };
  };
  const connect = (url: string, opts = {}): ClientHttp2Session => {
    const s = h2connect(url, opts);
    s.on('error', () => { /* a failed assertion says what went wrong */ });
    sessions.push(s);
    return s;
  };

  before(async () => {
    pki = await makePki();
    // An h2c app that answers with what the sidecar's session let it send.
    app = createH2cServer((req, res) => {
      req.resume();
      const s = req.stream.session!;
      granted.push({ stream: s.remoteSettings.initialWindowSize, connection: s.state.remoteWindowSize });
      res.end('ok');
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    policies = await policyDir({ 'boundary.yaml': LOOPBACK_BOUNDARY });
    sidecar = await startSidecar(['--upstream', `h2c://127.0.0.1:${(app.address() as AddressInfo).port}`, '--cert', pki.server.cert, '--key', pki.server.key,
      '--ca', pki.ca, '--policies', policies, '--audit-log', '/dev/null', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0',
      '--plaintext-listen', '127.0.0.1:0']);
    plaintextPort = Number(String((await sidecar.waitForLog('ready')).plaintext).split(':').at(-1));
  });
  after(async () => {
    for (const s of sessions) s.destroy();
    await sidecar?.stop();
    app?.close();
    await pki?.cleanup();
    if (policies) await rm(policies, { recursive: true, force: true });
  });

  const expected = { stream: H2_STREAM_WINDOW_BYTES, connection: H2_CONNECTION_WINDOW_BYTES };

  it('gives a peer on the mTLS listener a 1 MiB stream window and a 4 MiB connection window', async () => {
    const s = connect(`https://localhost:${sidecar.inboundPort}`, { ...tlsOptions(pki.ca, pki.clients.billing), host: '127.0.0.1' });
    assert.deepEqual(await windowsGivenTo(s), expected);
  });

  it('gives a caller on the plaintext listener\'s h2c the same windows', async () => {
    assert.deepEqual(await windowsGivenTo(connect(`http://127.0.0.1:${plaintextPort}`)), expected);
  });

  it('gives the app on the outbound listener\'s h2c the same windows', async () => {
    assert.deepEqual(await windowsGivenTo(connect(`http://127.0.0.1:${sidecar.outboundPort}`)), expected);
  });

  it('gives an h2c app it connects to the same windows', async () => {
    const s = connect(`https://localhost:${sidecar.inboundPort}`, { ...tlsOptions(pki.ca, pki.clients.billing), host: '127.0.0.1' });
    assert.equal((await h2request(s, { ':method': 'GET', ':path': '/orders/1' })).status, 200);
    assert.deepEqual(granted.at(-1), expected);
  });
});
