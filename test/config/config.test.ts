import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig, readConfigFile } from '../../src/config/config.ts';
import { parseRunFlags } from '../../src/config/flags.ts';
import { parseListen, parseUpstream } from '../../src/config/address.ts';
import { ConfigError } from '../../src/errors.ts';

describe('configuration', () => {
  it('refuses a byte size over 1 TiB as a config error naming the flag (node:http threw a RangeError mid-start for 99999999999g)', () => {
    assert.throws(() => buildConfig([{ upstream: 'http://127.0.0.1:3000', maxHeaderBytes: '99999999999g' }]),
      (e: ConfigError) => e instanceof ConfigError && e.field === 'maxHeaderBytes' && /larger than the largest size accepted.*--max-header-bytes/.test(e.message));
    assert.throws(() => buildConfig([{ upstream: 'http://127.0.0.1:3000', maxBodyBytes: '1025g' }]), (e: ConfigError) => e.field === 'maxBodyBytes');
    assert.equal(buildConfig([{ upstream: 'http://127.0.0.1:3000', maxBodyBytes: '1024g' }]).maxBodyBytes, 1024 ** 4);
  });

  it('uses the documented listener defaults', () => {
    const c = buildConfig([{ upstream: 'http://127.0.0.1:3000', cert: 'a', key: 'b', ca: ['c'] }], '/srv');
    assert.deepEqual(c.listen, { host: '0.0.0.0', port: 15443 });
    assert.deepEqual(c.outboundListen, { host: '127.0.0.1', port: 15001 });
    assert.deepEqual(c.adminListen, { host: '127.0.0.1', port: 15000 });
    assert.equal(c.plaintextListen, null);
    assert.equal(c.maxHeaderBytes, 65536);
    assert.equal(c.dev, false);
    assert.equal(c.cert, '/srv/a');
    assert.ok(Object.isFrozen(c));
  });

  it('enters dev mode with no certificates given, binding the inbound listener to loopback', () => {
    const c = buildConfig([{ upstream: 'http://127.0.0.1:3000' }], '/srv');
    assert.equal(c.dev, true);
    assert.equal(c.cert, '/srv/certs/workload.crt');
    assert.deepEqual(c.ca, ['/srv/certs/ca.crt']);
    assert.equal(c.listen.host, '127.0.0.1');
  });

  it('lets flags override the config file, and resolves file paths relative to the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'authproxy-cfg-'));
    try {
      const file = join(dir, 'authproxy.yaml');
      await writeFile(file, 'upstream: http://127.0.0.1:3000\ncert: tls/tls.crt\nkey: tls/tls.key\nca: [tls/ca.crt]\nmaxHeaderBytes: 128k\nlisten: 0.0.0.0:8443\n');
      const flags = parseRunFlags(['--listen', '127.0.0.1:9443', '--ca', 'x.crt', '--ca', 'y.crt']);
      const c = buildConfig([await readConfigFile(file), flags.raw], '/cwd');
      assert.equal(c.cert, join(dir, 'tls/tls.crt'));
      assert.deepEqual(c.ca, ['/cwd/x.crt', '/cwd/y.crt']);
      assert.equal(c.maxHeaderBytes, 128 * 1024);
      assert.deepEqual(c.listen, { host: '127.0.0.1', port: 9443 });
    } finally { await rm(dir, { recursive: true, force: true }); }
  });

  it('refuses a duration without its unit in the config file as the flag does (5000 was read as seconds), except 0', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'authproxy-cfg-'));
    try {
      await writeFile(join(dir, 'c.yaml'), 'upstream: http://127.0.0.1:1\ndrainTimeout: 5000\n');
      assert.throws(() => buildConfig([{ upstream: 'http://127.0.0.1:1', drainTimeout: 5000 }], '/cwd'), (e: ConfigError) => e.field === 'drainTimeout' && /a number needs its unit/.test(e.message));
      const fromFile = await readConfigFile(join(dir, 'c.yaml'));
      assert.throws(() => buildConfig([fromFile], dir), (e: ConfigError) => e.field === 'drainTimeout');
      assert.throws(() => buildConfig([parseRunFlags(['--upstream', 'http://127.0.0.1:1', '--drain-timeout', '5000']).raw], '/cwd'), /a number needs its unit/);
      assert.equal(buildConfig([{ upstream: 'http://127.0.0.1:1', drainTimeout: 0 }], '/cwd').drainTimeoutMs, 0);
      assert.equal(buildConfig([{ upstream: 'http://127.0.0.1:1', drainTimeout: '5s' }], '/cwd').drainTimeoutMs, 5000);
    } finally { await rm(dir, { recursive: true, force: true }); }
  });

  it('refuses an unknown config-file key, naming it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'authproxy-cfg-'));
    try {
      await writeFile(join(dir, 'c.yaml'), 'upstream: http://127.0.0.1:1\nlisten_port: 1\n');
      await assert.rejects(readConfigFile(join(dir, 'c.yaml')), (e: ConfigError) => e.field === 'listen_port' && /unknown setting/.test(e.message));
    } finally { await rm(dir, { recursive: true, force: true }); }
  });

  it('refuses a missing upstream, partial certificates, and a bad client auth, naming the field', () => {
    assert.throws(() => buildConfig([{}]), (e: ConfigError) => e.field === 'upstream');
    assert.throws(() => buildConfig([{ upstream: 'http://127.0.0.1:1', cert: 'a' }]), (e: ConfigError) => e.field === 'key');
    assert.throws(() => buildConfig([{ upstream: 'http://127.0.0.1:1', clientAuth: 'password' }]), (e: ConfigError) => e.field === 'clientAuth');
  });

  it('reads --upgrade-protocols as lower-case names (websocket by default, * for any) and refuses h2c, HTTP and non-tokens', () => {
    const base = { upstream: 'http://127.0.0.1:3000' };
    assert.deepEqual([...buildConfig([base]).upgradeProtocols!], ['websocket']);
    assert.deepEqual([...buildConfig([{ ...base, upgradeProtocols: 'WebSocket, spdy' }]).upgradeProtocols!], ['websocket', 'spdy']);
    assert.deepEqual([...buildConfig([{ ...base, upgradeProtocols: ['websocket', 'spdy'] }]).upgradeProtocols!], ['websocket', 'spdy']);
    assert.equal(buildConfig([{ ...base, upgradeProtocols: '*' }]).upgradeProtocols, null);
    for (const bad of ['h2c', 'websocket,h2', 'HTTP', '', 'web socket', '*,websocket']) {
      assert.throws(() => buildConfig([{ ...base, upgradeProtocols: bad }]), (e: ConfigError) => e.field === 'upgradeProtocols', bad);
    }
  });

  it('refuses an unknown flag', () => {
    assert.throws(() => parseRunFlags(['--upstrem', 'x']), ConfigError);
  });

  it('parses listen addresses and upstream targets', () => {
    assert.deepEqual(parseListen(':8080', 'listen'), { host: '0.0.0.0', port: 8080 });
    assert.deepEqual(parseListen('[::1]:15443', 'listen'), { host: '::1', port: 15443 });
    assert.throws(() => parseListen('localhost', 'listen'), ConfigError);
    assert.throws(() => parseListen('a:70000', 'listen'), ConfigError);
    assert.deepEqual(parseUpstream('unix:/run/app.sock'), { kind: 'unix', socketPath: '/run/app.sock', display: 'unix:/run/app.sock', h2c: false });
    assert.deepEqual(parseUpstream('h2c+unix:/run/grpc.sock'), { kind: 'unix', socketPath: '/run/grpc.sock', display: 'h2c+unix:/run/grpc.sock', h2c: true });
    assert.throws(() => parseUpstream('h2c+unix:grpc.sock'), ConfigError);
    assert.equal(parseUpstream('http://127.0.0.1:3000').kind, 'tcp');
    assert.throws(() => parseUpstream('https://app:443'), ConfigError);
    assert.throws(() => parseUpstream('http://app:3000/base'), ConfigError);
    assert.throws(() => parseUpstream('unix:relative.sock'), ConfigError);
  });
});

describe('URLs with credentials', () => {
  it('are refused without quoting the credentials: issuer, token endpoint, JWKS and upstream', () => {
    const base = { upstream: 'http://127.0.0.1:3000', cert: 'a', key: 'b', ca: ['c'] };
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ issuer: 'https://user:s3cret@idp.example/' }, 'issuer'],
      [{ issuer: 'https://:s3cret@idp.example/' }, 'issuer'],
      [{ issuer: 'https://user:pa#s3cret@idp.example/' }, 'issuer'],
      [{ tokenEndpoint: 'https://user:s3cret@idp.example/token' }, 'tokenEndpoint'],
      [{ jwksUri: 'https://user:s3cret@idp.example/jwks' }, 'jwksUri'],
      [{ upstream: 'http://user:s3cret@127.0.0.1:3000' }, 'upstream'],
      // Only a password: URL.username is empty, and this one used to be accepted.
      [{ upstream: 'http://:s3cret@127.0.0.1:3000' }, 'upstream'],
    ];
    for (const [raw, field] of cases) {
      assert.throws(() => buildConfig([{ ...base, ...raw }], '/srv'), (e: ConfigError) => {
        assert.equal(e.field, field, e.message);
        assert.doesNotMatch(e.message, /s3cret/);
        return true;
      }, JSON.stringify(raw));
    }
  });
});
