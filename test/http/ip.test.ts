// IP literals in one spelling (src/http/ip.ts): what routes, boundaries and the loop check compare.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalHost, isLoopbackIp } from '../../src/http/ip.ts';

test('every spelling the resolver dials as one address becomes that address', () => {
  const cases: Record<string, string> = {
    '127.1': '127.0.0.1', '0x7f.1': '127.0.0.1', '0177.0.0.1': '127.0.0.1', '2130706433': '127.0.0.1', '010.0.0.1': '8.0.0.1',
    '0:0:0:0:0:0:0:1': '::1', '::1': '::1', 'FE80:0:0:0:0:0:0:1': 'fe80::1', '2001:DB8::0:1': '2001:db8::1',
    // IPv4-mapped IPv6 is dialled as its IPv4 address, in any case and spelling.
    '::ffff:127.0.0.1': '127.0.0.1', '::FFFF:127.0.0.1': '127.0.0.1', '::ffff:a00:5': '10.0.0.5', '0:0:0:0:0:ffff:10.0.0.5': '10.0.0.5',
  };
  for (const [text, canonical] of Object.entries(cases)) assert.equal(canonicalHost(text), canonical, text);
});

test('names and canonical addresses come back as the same string; IP-like text that is no address is null', () => {
  for (const same of ['payments.example.com', 'a.b', '10.1.2.3', 'dead.beef', 'x1', 'svc-1.ns.svc.cluster.local', '::1', 'fd00::7']) {
    assert.equal(canonicalHost(same), same, same);
  }
  for (const bad of ['1.2.3.4.5', 'foo.123', '256.0.0.1', 'a..1', '1::2::3', 'fe80::1%eth0', 'fe80::1%25eth0', 'x@::1', '::1]@a', 'g.0x1']) {
    assert.equal(canonicalHost(bad), null, bad);
  }
});

test('loopback is 127.0.0.0/8 and ::1, mapped forms included', () => {
  for (const ip of ['127.0.0.1', '127.255.0.9', '::1', '::ffff:7f00:1']) assert.ok(isLoopbackIp(ip), ip);
  for (const ip of ['10.0.0.1', '::', '0.0.0.0', 'fe80::1', '::ffff:a00:1']) assert.ok(!isLoopbackIp(ip), ip);
});
