import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { LookupAddress } from 'node:dns';
import { policySetFromSources } from '../../src/policy/load.ts';
import { DestinationClassifier, addressesBoundary, boundaryCheckedLookup, OutsideBoundary } from '../../src/boundary/classify.ts';
import type { PolicySet } from '../../src/policy/types.ts';

const boundary = (name: string, cidrs: string[], hosts: string[] = []): string =>
  `apiVersion: authproxy.dev/v1\nkind: TrustBoundary\nmetadata: { name: ${name} }\nspec:\n  cidrs: ${JSON.stringify(cidrs)}\n${hosts.length ? `  hosts: ${JSON.stringify(hosts)}\n` : ''}`;
const setOf = (yaml: string): PolicySet => policySetFromSources([{ name: 'b.yaml', bytes: Buffer.from(yaml) }]);

describe('destination classification', () => {
  const set = setOf(`${boundary('cluster', ['10.0.0.0/8', '127.0.0.1/32'], ['*.svc.cluster.local'])}---\n${boundary('v6', ['::1/128'])}`);

  it('puts a host glob match and an IP literal in a CIDR inside, without DNS', () => {
    const c = new DestinationClassifier(() => set);
    assert.equal(c.peek('payments.svc.cluster.local'), 'cluster');
    assert.equal(c.peek('10.2.3.4'), 'cluster');
    assert.equal(c.peek('192.0.2.1'), null);
    assert.equal(c.peek('example.com'), undefined, 'a name needs DNS before it can be judged');
  });

  it('is inside only when every resolved address is inside some boundary', () => {
    assert.equal(addressesBoundary(set, ['10.1.1.1', '127.0.0.1']), 'cluster');
    assert.equal(addressesBoundary(set, ['127.0.0.1', '::1']), 'cluster');
    assert.equal(addressesBoundary(set, ['10.1.1.1', '203.0.113.9']), null, 'one address outside puts the name outside');
    assert.equal(addressesBoundary(set, []), null);
  });

  it('resolves a name once, then answers from the cache', async () => {
    const c = new DestinationClassifier(() => set);
    assert.equal(await c.classify('localhost'), 'cluster');
    assert.equal(c.peek('localhost'), 'cluster');
  });

  it('treats a name that does not resolve as outside (fail closed)', async () => {
    const c = new DestinationClassifier(() => set);
    assert.equal(await c.classify('no-such-host.invalid'), null);
  });

  it('with no boundary loaded, everything is outside without asking DNS', () => {
    const c = new DestinationClassifier(() => setOf(''));
    assert.equal(c.peek('anything.example'), null);
  });
});

describe('connect-time check for plaintext', () => {
  const lookupWith = (set: PolicySet, host: string): Promise<{ err: Error | null; addresses: LookupAddress[] }> => new Promise((resolve) => {
    boundaryCheckedLookup(() => set)(host, { all: true }, (err, addresses) => resolve({ err, addresses: addresses as LookupAddress[] }));
  });

  it('lets a connection proceed when every address is inside', async () => {
    const r = await lookupWith(setOf(boundary('lo', ['127.0.0.1/32', '::1/128'])), 'localhost');
    assert.equal(r.err, null);
    assert.ok(r.addresses.length >= 1);
  });

  it('refuses the connection when the name now resolves to an address outside every boundary', async () => {
    const r = await lookupWith(setOf(boundary('elsewhere', ['10.0.0.0/8'])), 'localhost');
    assert.ok(r.err instanceof OutsideBoundary, 'loopback is outside a 10/8-only boundary');
    assert.match(r.err.message, /^localhost resolved to .*, outside every trust boundary: plaintext refused$/);
    assert.deepEqual(r.addresses, []);
  });

  it('trusts a name a boundary host glob names, whatever it resolves to', async () => {
    const r = await lookupWith(setOf(boundary('named', ['10.0.0.0/8'], ['localhost'])), 'localhost');
    assert.equal(r.err, null);
  });
});
