import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { createCA, issueCertificate, type PemPair } from '../../src/certs/pki.ts';
import { checkPeer, xfcc } from '../../src/identity/peer.ts';
import { parseSpiffeId } from '../../src/identity/spiffe.ts';
import { parseSubjectAltName } from '../../src/identity/san.ts';

describe('peer identity from a verified certificate', () => {
  let ca: PemPair;
  const td = new Set(['example.org']);
  before(async () => { ca = await createCA({ trustDomain: 'example.org' }); });
  const cert = async (o: Parameters<typeof issueCertificate>[1]): Promise<X509Certificate> => new X509Certificate((await issueCertificate(ca, o)).certPem);

  it('takes the SPIFFE ID as principal and precomputes the Envoy XFCC value', async () => {
    const c = await cert({ spiffeId: 'spiffe://example.org/ns/a/sa/b', dnsNames: ['b.a.svc'] });
    const r = checkPeer(c, td);
    assert.ok(r.ok);
    assert.equal(r.identity.principal, 'spiffe://example.org/ns/a/sa/b');
    assert.equal(r.identity.xfcc, `Hash=${r.identity.hash};URI=spiffe://example.org/ns/a/sa/b;Subject="CN=b.a.svc";DNS=b.a.svc`);
    assert.equal(r.identity.hash.length, 64);
  });

  it('falls back to the first DNS SAN, then to the subject CN', async () => {
    const dns = checkPeer(await cert({ dnsNames: ['one.internal', 'two.internal'], commonName: 'cn-name' }), td);
    assert.ok(dns.ok); assert.equal(dns.identity.principal, 'one.internal');
    const cn = checkPeer(await cert({ commonName: 'only-cn' }), td);
    assert.ok(cn.ok); assert.equal(cn.identity.principal, 'only-cn');
  });

  it('refuses a CA certificate as a leaf', async () => {
    const r = checkPeer(await cert({ spiffeId: 'spiffe://example.org/x', isCA: true }), td);
    assert.deepEqual(r.ok ? null : r.kind, 'ca_as_leaf');
  });

  it('refuses an SVID with a second URI SAN, even a non-SPIFFE one', async () => {
    const r = checkPeer(await cert({ spiffeId: 'spiffe://example.org/x', uris: ['https://example.org/other'] }), td);
    assert.deepEqual(r.ok ? null : r.kind, 'uri_san_count');
  });

  it('refuses a SPIFFE ID outside the accepted trust domains, and accepts any when none is configured', async () => {
    const c = await cert({ spiffeId: 'spiffe://other.org/x' });
    const r = checkPeer(c, td);
    assert.deepEqual(r.ok ? null : r.kind, 'trust_domain');
    assert.ok(checkPeer(c, new Set()).ok);
  });

  it('refuses a malformed SPIFFE ID', async () => {
    const r = checkPeer(await cert({ spiffeId: 'spiffe://Example.org/a/../b' }), td);
    assert.deepEqual(r.ok ? null : r.kind, 'bad_spiffe_id');
  });

  describe('names given as text never pass for a SPIFFE ID', () => {
    const verdict = async (o: Parameters<typeof issueCertificate>[1]): Promise<string> => {
      const r = checkPeer(await cert(o), td);
      return r.ok ? `accepted as ${r.identity.principal}` : `refused (${r.kind}): ${r.reason}`;
    };
    const ADMIN = 'spiffe://example.org/ns/ops/sa/admin';

    it('refuses a certificate without a URI SAN whose CN is spelled like a SPIFFE ID of an accepted trust domain', async () => {
      assert.equal(await verdict({ commonName: ADMIN }),
        `refused (lookalike_name): subject CN "${ADMIN}" passes for a SPIFFE ID, which is only taken from a URI SAN`);
      // Next to a SPIFFE ID the CN is never the principal: any CN will do there.
      assert.equal(await verdict({ spiffeId: 'spiffe://example.org/ns/a/sa/b', commonName: ADMIN }), 'accepted as spiffe://example.org/ns/a/sa/b');
    });

    it('refuses a CN spelled like a SPIFFE ID of a trust domain that is not accepted, and one in upper case', async () => {
      assert.match(await verdict({ commonName: 'spiffe://evil.org/ns/ops/sa/admin' }), /^refused \(lookalike_name\)/);
      assert.match(await verdict({ commonName: 'SPIFFE://example.org/ns/ops/sa/admin' }), /^refused \(lookalike_name\)/);
    });

    it('refuses a CN spelled like a SPIFFE ID even when a DNS SAN would be the principal', async () => {
      assert.match(await verdict({ commonName: ADMIN, dnsNames: ['legacy.internal'] }), /^refused \(lookalike_name\)/);
    });

    it("refuses a CN spelled like a plaintext caller's boundary principal, not every CN with a colon", async () => {
      assert.equal(await verdict({ commonName: 'boundary:cluster' }),
        'refused (lookalike_name): subject CN "boundary:cluster" passes for a trust boundary\'s principal, which only plaintext callers get');
      assert.equal(await verdict({ commonName: 'system:node:worker-1' }), 'accepted as system:node:worker-1');
    });

    it('refuses a DNS SAN spelled like a SPIFFE ID', async () => {
      assert.equal(await verdict({ dnsNames: [ADMIN], commonName: 'x' }),
        `refused (lookalike_name): DNS SAN "${ADMIN}" passes for a SPIFFE ID, which is only taken from a URI SAN`);
    });

    it('refuses a DNS SAN that is not a DNS name, with or without a SPIFFE ID, and takes DNS names and wildcards', async () => {
      assert.equal(await verdict({ dnsNames: [`legacy.internal;URI=${ADMIN}`], commonName: 'legacy' }),
        `refused (bad_dns_san): DNS SAN "legacy.internal;URI=${ADMIN}" is not a DNS name (letters, digits, '-', '_' and '.', optionally under a leading '*.')`);
      for (const bad of ['a..b', '-a.internal', 'a b', 'x.*.internal', 'a,b.internal', 'a=b.internal', 'a"b.internal']) {
        assert.match(await verdict({ spiffeId: 'spiffe://example.org/ns/a/sa/b', dnsNames: ['ok.internal', bad] }), /^refused \(bad_dns_san\)/, bad);
      }
      assert.equal(await verdict({ dnsNames: ['*.legacy.internal', 'Legacy-1.internal'] }), 'accepted as *.legacy.internal');
      // As Go's crypto/x509 does, for the internal CAs that issue such names.
      assert.equal(await verdict({ dnsNames: ['host_1.corp.internal'] }), 'accepted as host_1.corp.internal');
    });
  });
});

describe('SPIFFE ID syntax', () => {
  it('accepts well-formed IDs and splits the trust domain', () => {
    assert.deepEqual(parseSpiffeId('spiffe://example.org/ns/a/sa/b'), { trustDomain: 'example.org', path: '/ns/a/sa/b' });
    assert.deepEqual(parseSpiffeId('spiffe://example.org'), { trustDomain: 'example.org', path: '' });
  });
  for (const bad of ['spiffe://EXAMPLE.org/a', 'spiffe://example.org/a/', 'spiffe://example.org//a', 'spiffe://example.org/./a',
    'spiffe://example.org:8080/a', 'spiffe://user@example.org/a', 'spiffe://example.org/a?q', 'spiffe://example.org/a#f', 'https://example.org/a']) {
    it(`rejects ${bad}`, () => assert.equal(parseSpiffeId(bad), null));
  }
});

describe('subjectAltName rendering', () => {
  it('splits entries by type', () => {
    assert.deepEqual(parseSubjectAltName('DNS:a.b, URI:spiffe://x/y, IP Address:127.0.0.1'), { dnsNames: ['a.b'], uris: ['spiffe://x/y'], ips: ['127.0.0.1'] });
  });
  it('keeps a quoted value containing a separator as one entry, so a crafted SAN cannot add a second URI', () => {
    assert.deepEqual(parseSubjectAltName('URI:"spiffe://x/a, URI:spiffe://x/admin"').uris, ['spiffe://x/a, URI:spiffe://x/admin']);
  });
});

describe('x-forwarded-client-cert formatting', () => {
  it('escapes quotes in the subject', () => {
    assert.equal(xfcc('ab', null, 'CN=a"b', []), 'Hash=ab;Subject="CN=a\\"b"');
  });

  it('quotes a DNS value holding a separator, so it cannot add a URI the certificate does not have', () => {
    assert.equal(xfcc('ab', null, 'CN=x', ['legacy.internal;URI=spiffe://example.org/ns/ops/sa/admin']),
      'Hash=ab;Subject="CN=x";DNS="legacy.internal;URI=spiffe://example.org/ns/ops/sa/admin"');
  });

  it('quotes URI and DNS values holding a comma, a semicolon, an equals sign or a double quote, escaping quote and backslash, and only those', () => {
    assert.equal(xfcc('ab', 'spiffe://x/a,By=b', 'CN=x', ['a"b\\c', 'k=v', 'b.a.svc', '*.a.svc']),
      'Hash=ab;URI="spiffe://x/a,By=b";Subject="CN=x";DNS="a\\"b\\\\c";DNS="k=v";DNS=b.a.svc;DNS=*.a.svc');
  });
});
