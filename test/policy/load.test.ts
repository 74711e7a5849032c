import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ConfigError } from '../../src/errors.ts';
import { loadPolicyDir, policySetFromSources, PolicySetError } from '../../src/policy/load.ts';
import { emptyPolicySet } from '../../src/policy/types.ts';
import { boundary, loadSet, policy, refusedSet, route } from './helpers.ts';
import { RouteTable } from '../../src/outbound/routes.ts';

const EMPTY_DIGEST = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const ALLOW_BILLING = policy('orders', `- name: billing-reads
  action: allow
  from: [{ principals: ["spiffe://example.org/ns/billing/sa/*"] }]
  to: [{ methods: [GET], paths: ["/orders", "/orders/*"] }]`);

describe('policy loading and validation', () => {
  let tmp: string;
  before(async () => { tmp = await mkdtemp(join(tmpdir(), 'authproxy-policy-load-')); });
  after(async () => { await rm(tmp, { recursive: true, force: true }); });

  async function dirWith(files: Record<string, string>): Promise<string> {
    const dir = await mkdtemp(join(tmp, 'd-'));
    for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
    return dir;
  }

  it('loads the example documents shipped in policies/', async () => {
    const set = await loadPolicyDir('policies');
    assert.deepEqual(set.files, ['policies/dev.yaml', 'policies/orders.yaml', 'policies/routes.yaml']);
    assert.deepEqual(set.documents.map((d) => `${d.file}#${d.index} ${d.kind}/${d.name}`), [
      'policies/dev.yaml#0 AuthorizationPolicy/dev-client',
      'policies/orders.yaml#0 AuthorizationPolicy/orders',
      'policies/routes.yaml#0 OutboundRoute/payments',
      'policies/routes.yaml#1 TrustBoundary/cluster',
    ]);
    assert.equal(set.authorizationPolicies, 2);
    assert.equal(set.rules, 3);
    assert.equal(set.requiresToken, true);
    assert.match(set.digest, /^[0-9a-f]{64}$/);
    assert.deepEqual(set.routes, [{
      name: 'payments', hosts: ['payments.example.com', 'payments.prod.svc.cluster.local'],
      token: { audience: 'api://payments', scopes: ['payments.charge'], header: 'authorization', scheme: 'Bearer' }, tls: 'auto', trust: 'auto',
    }]);
    assert.deepEqual(set.boundaries, [{ name: 'cluster', cidrs: ['10.0.0.0/8'], hosts: ['*.svc.cluster.local'] }]);
  });

  it('freezes the loaded set, down to route hosts', () => {
    const set = loadSet({ 'r.yaml': `${ALLOW_BILLING}---\n${route('payments', '{ hosts: [payments.example.com] }')}` });
    assert.ok(Object.isFrozen(set));
    assert.ok(Object.isFrozen(set.routes) && Object.isFrozen(set.routes[0]) && Object.isFrozen(set.routes[0]!.hosts));
    assert.ok(Object.isFrozen(set.documents[0]));
    assert.throws(() => { (set.routes[0]!.hosts as string[]).push('evil.example.com'); }, TypeError);
  });

  it('names file, document index and name, field path and line in a schema error', () => {
    const err = refusedSet({ 'orders.yaml': ALLOW_BILLING.replace('action: allow', 'action: alow') });
    assert.ok(err instanceof ConfigError);
    assert.equal(err.file, 'policies/orders.yaml');
    assert.equal(err.document, '0 (orders)');
    assert.equal(err.field, 'spec.rules[0].action');
    assert.equal(err.message, 'policies/orders.yaml, document 0 (orders), field spec.rules[0].action: must be one of: allow, deny (line 7)');
  });

  it('refuses a misspelt field instead of ignoring it, listing the known fields', () => {
    const err = refusedSet({ 'orders.yaml': ALLOW_BILLING.replace('paths:', 'path:') });
    assert.equal(err.field, 'spec.rules[0].to[0].path');
    assert.match(err.message, /is not a known field \(expected one of: methods, paths\)/);
  });

  it('refuses a missing required field, naming it', () => {
    const err = refusedSet({ 'orders.yaml': ALLOW_BILLING.replace(/^ *action: allow\n/m, '') });
    assert.equal(err.field, 'spec.rules[0].action');
    assert.match(err.message, /is required/);
  });

  it('refuses a wrong apiVersion, an unknown kind and a non-mapping document', () => {
    assert.match(refusedSet({ 'a.yaml': ALLOW_BILLING.replace('authproxy.dev/v1', 'authproxy.dev/v2') }).message, /field apiVersion: must be authproxy.dev\/v1/);
    assert.match(refusedSet({ 'a.yaml': ALLOW_BILLING.replace('AuthorizationPolicy', 'RBACPolicy') }).message,
      /document 0 \(orders\), field kind: must be one of: AuthorizationPolicy, OutboundRoute, TrustBoundary/);
    assert.match(refusedSet({ 'a.yaml': '- just\n- a list\n' }).message, /document 0 \(unnamed\): must be a mapping/);
  });

  it('refuses lowercase methods, since methods match exactly', () => {
    const err = refusedSet({ 'orders.yaml': ALLOW_BILLING.replace('[GET]', '[get]') });
    assert.equal(err.field, 'spec.rules[0].to[0].methods[0]');
    assert.match(err.message, /uppercase HTTP method/);
  });

  it('refuses empty lists, which would otherwise silently match nothing', () => {
    assert.equal(refusedSet({ 'a.yaml': ALLOW_BILLING.replace('paths: ["/orders", "/orders/*"]', 'paths: []') }).field, 'spec.rules[0].to[0].paths');
    assert.equal(refusedSet({ 'a.yaml': policy('p', '- name: r\n  action: allow\n  from: []') }).field, 'spec.rules[0].from');
    assert.equal(refusedSet({ 'a.yaml': policy('p', '[]').replace('rules:\n    []', 'rules: []') }).field, 'spec.rules');
  });

  it('refuses YAML syntax errors and duplicate keys with the line', () => {
    assert.match(refusedSet({ 'a.yaml': 'key: [unclosed\n' }).message, /^policies\/a\.yaml, document 0: YAML error: .* \(line \d+\)$/);
    const dup = refusedSet({ 'a.yaml': ALLOW_BILLING.replace(/^( *)action: allow\n/m, '$1action: allow\n$1action: deny\n') });
    assert.match(dup.message, /YAML error: Map keys must be unique \(line 8\)/);
  });

  it('refuses a document that expands aliases without bound', () => {
    const bomb = 'a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n'
      + 'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n';
    assert.match(refusedSet({ 'a.yaml': bomb }).message, /YAML error: .*alias/i);
  });

  it('refuses a file that is not UTF-8', () => {
    assert.throws(() => policySetFromSources([{ name: 'a.yaml', bytes: Buffer.from([0x6b, 0x3a, 0x20, 0xff, 0xfe, 0x0a]) }], 'policies'),
      (e: unknown) => e instanceof PolicySetError && e.message === 'policies/a.yaml: is not valid UTF-8');
  });

  it('reports every problem of a bad set in one error, each with its own location', () => {
    const err = refusedSet({
      'a.yaml': ALLOW_BILLING.replace('action: allow', 'action: maybe'),
      'b.yaml': `${route('Bad', '{ hosts: [x.example.com] }')}---\n${boundary('edge', '{ cidrs: ["10.0.0.1/8"] }')}`,
    });
    assert.equal(err.problems.length, 3);
    assert.deepEqual(err.problems.map((p) => [p.file, p.document, p.field]), [
      ['policies/a.yaml', '0 (orders)', 'spec.rules[0].action'],
      ['policies/b.yaml', '0 (Bad)', 'metadata.name'],
      ['policies/b.yaml', '1 (edge)', 'spec.cidrs[0]'],
    ]);
    assert.match(err.message, /^policy set refused, 3 problems:\n {2}- policies\/a\.yaml, document 0 \(orders\)/);
    assert.match(err.message, /network address is 10\.0\.0\.0/);
  });

  it('refuses duplicate document names within a kind, across files, but allows the same name in another kind', () => {
    const err = refusedSet({ 'a.yaml': ALLOW_BILLING, 'b.yaml': ALLOW_BILLING });
    assert.equal(err.file, 'policies/b.yaml');
    assert.equal(err.field, 'metadata.name');
    assert.match(err.message, /duplicate AuthorizationPolicy name 'orders' \(also policies\/a\.yaml, document 0\)/);
    const set = loadSet({ 'a.yaml': ALLOW_BILLING, 'b.yaml': route('orders', '{ hosts: [orders.example.com] }') });
    assert.equal(set.documents.length, 2);
  });

  it('refuses duplicate rule names within a policy', () => {
    const rules = `- name: same\n  action: allow\n  to: [{ paths: ["/a"] }]\n- name: same\n  action: deny\n  to: [{ paths: ["/b"] }]`;
    const err = refusedSet({ 'a.yaml': policy('p', rules) });
    assert.equal(err.field, 'spec.rules[1].name');
    assert.match(err.message, /duplicate rule name 'same' \(also rules\[0\]\)/);
  });

  it('accepts durations like 30s, 15m and 1h and refuses others', () => {
    const jit = (maxAge: string) => policy('p', `- name: r\n  action: allow\n  from: [{ token: { jit: { maxAge: ${maxAge} } } }]`);
    for (const ok of ['30s', '15m', '1h']) assert.equal(loadSet({ 'a.yaml': jit(ok) }).rules, 1);
    for (const bad of ['15', '15x', '1.5h', '"15 m"', '-1m', '1d']) {
      assert.equal(refusedSet({ 'a.yaml': jit(bad) }).field, 'spec.rules[0].from[0].token.jit.maxAge', bad);
    }
    assert.match(refusedSet({ 'a.yaml': jit('0m') }).message, /greater than zero/);
  });

  it('refuses path patterns that could never match a normalized path', () => {
    const withPath = (p: string) => ({ 'a.yaml': policy('p', `- name: r\n  action: deny\n  to: [{ paths: ["${p}"] }]`) });
    for (const ok of ['/', '/orders', '/orders/*', '/admin/**', '/**', '/files/*.json', '/caf%C3%A9']) assert.equal(loadSet(withPath(ok)).rules, 1, ok);
    const cases: Record<string, RegExp> = {
      '/admin/': /requests are matched as '\/admin'/,
      '//admin': /requests are matched as '\/admin'/,
      '/a/../admin': /requests are matched as '\/admin'/,
      '/%61dmin': /requests are matched as '\/admin'/,
      '/caf%c3%a9': /requests are matched as '\/caf%C3%A9'/,
      '/admin;x': /path parameters are removed/,
      '/admin?x=1': /query/,
      '/admin%2Fx': /not a valid path: .*%2F/,
      '/admin**': /whole segment/,
      'admin': /starting with \//,
    };
    for (const [p, message] of Object.entries(cases)) {
      const err = refusedSet(withPath(p));
      assert.equal(err.field, 'spec.rules[0].to[0].paths[0]', p);
      assert.match(err.message, message, p);
    }
  });

  it("refuses '*' as a principal, which would not match SPIFFE IDs, and ** mixed into a segment", () => {
    const withPrincipal = (p: string) => ({ 'a.yaml': policy('p', `- name: r\n  action: deny\n  from: [{ principals: ["${p}"] }]`) });
    assert.match(refusedSet(withPrincipal('*')).message, /field spec\.rules\[0\]\.from\[0\]\.principals\[0\]: '\*' matches only principals without '\/'/);
    assert.match(refusedSet(withPrincipal('spiffe://example.org/ns**')).message, /whole segment/);
    assert.equal(loadSet(withPrincipal('**')).rules, 1);
    assert.equal(loadSet(withPrincipal('boundary:cluster')).rules, 1);
  });

  it('refuses a token requirement on a deny rule, which a caller could dodge by sending no token', () => {
    const err = refusedSet({ 'a.yaml': policy('p', '- name: r\n  action: deny\n  from: [{ principals: ["**"], token: { roles: [Suspended] } }]') });
    assert.equal(err.field, 'spec.rules[0].from[0].token');
    assert.match(err.message, /deny rule cannot require a token/);
  });

  it('validates CIDR syntax for IPv4 and IPv6', () => {
    for (const ok of ['10.0.0.0/8', '192.168.1.7/32', '0.0.0.0/0', 'fd00::/8', '2001:db8::/32', '::1/128', '::ffff:10.0.0.0/104']) {
      assert.equal(loadSet({ 'b.yaml': boundary('b', `{ cidrs: ["${ok}"] }`) }).boundaries[0]!.cidrs[0], ok);
    }
    const cases: Record<string, RegExp> = {
      '10.0.0.0/33': /prefix length must be 0 to 32/,
      'fd00::/129': /prefix length must be 0 to 128/,
      '10.0.0.0/08': /prefix length/,
      '10.0.0.0': /must be a CIDR/,
      '10.0.0.256/32': /'10\.0\.0\.256' is not an IPv4 or IPv6 address/,
      '010.0.0.0/8': /not an IPv4 or IPv6 address/,
      '10.1.0.0/8': /host bits set after the \/8 prefix \(the network address is 10\.0\.0\.0\)/,
      'fd00::1/64': /host bits set .*fd00::\)/,
      'fd00:::/8': /not an IPv4 or IPv6 address/,
    };
    for (const [cidr, message] of Object.entries(cases)) {
      const err = refusedSet({ 'b.yaml': boundary('b', `{ cidrs: ["${cidr}"] }`) });
      assert.equal(err.field, 'spec.cidrs[0]', cidr);
      assert.match(err.message, message, cidr);
    }
  });

  it('validates host patterns of boundaries and routes', () => {
    assert.equal(loadSet({ 'b.yaml': boundary('b', '{ hosts: ["*.svc.cluster.local", "**.internal", "db-1.corp"] }') }).boundaries.length, 1);
    for (const bad of ['a..b', '.a', 'A.example.com', 'a**.b', '[::1]', 'a b']) {
      const err = refusedSet({ 'b.yaml': boundary('b', `{ hosts: ["${bad}"] }`) });
      assert.equal(err.field, 'spec.hosts[0]', bad);
    }
    assert.match(refusedSet({ 'r.yaml': route('r', '{ hosts: [a.example.com, a.example.com] }') }).message, /spec\.hosts\[1\]: duplicate host/);
  });

  it('fills route defaults and lowercases a custom token header', () => {
    const set = loadSet({ 'r.yaml': route('r', '{ hosts: [api.example.com, "10.1.2.3"], token: { audience: aud, header: X-Api-Token, scheme: "" }, tls: mtls }') });
    assert.deepEqual(set.routes[0], { name: 'r', hosts: ['api.example.com', '10.1.2.3'], token: { audience: 'aud', scopes: [], header: 'x-api-token', scheme: '' }, tls: 'mtls', trust: 'auto' });
    assert.equal(loadSet({ 'r.yaml': route('r', '{ hosts: [api.example.com] }') }).routes[0]!.token, null);
    for (const header of ['Host', 'content-length', 'x-authproxy-principal', 'cookie']) {
      const err = refusedSet({ 'r.yaml': route('r', `{ hosts: [a.example.com], token: { audience: x, header: ${header} } }`) });
      assert.equal(err.field, 'spec.token.header', header);
    }
  });

  it('keeps IP literals of routes and boundaries in canonical form, so any spelling meets the canonical destination', () => {
    const set = loadSet({
      'b.yaml': boundary('b', '{ cidrs: ["10.0.0.0/8"], hosts: ["0:0:0:0:0:0:0:1", "*.svc"] }'),
      'r.yaml': route('r', '{ hosts: ["127.1", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1", "::ffff:10.0.0.5", "0x0a.1", a.example] }'),
    });
    assert.deepEqual(set.routes[0]!.hosts, ['127.0.0.1', '::1', '10.0.0.5', '10.0.0.1', 'a.example'], 'two spellings of 127.0.0.1 are one host');
    assert.deepEqual(set.boundaries[0]!.hosts, ['::1', '*.svc']);
    const table = new RouteTable(set.routes, null);
    for (const host of ['127.0.0.1', '::1', '10.0.0.5', '10.0.0.1']) assert.equal(table.lookup(host)?.name, 'r', host);
    assert.equal(set.boundaryOf('::1'), 'b');
    // tls: none is checked against the canonical address: ::ffff:10.0.0.5 is inside 10.0.0.0/8.
    assert.equal(loadSet({ 'b.yaml': boundary('b', '{ cidrs: ["10.0.0.0/8"] }'), 'r.yaml': route('p', '{ hosts: ["::ffff:10.0.0.5", "10.1"], tls: none }') })
      .routes[0]!.tls, 'none');
    // One address under two spellings in two routes is routed twice, and refused as such.
    const err = refusedSet({ 'r.yaml': `${route('one', '{ hosts: ["10.0.0.5"] }')}---\n${route('two', '{ hosts: ["::ffff:10.0.0.5"] }')}` });
    assert.match(err.message, /host '10\.0\.0\.5' is already routed by OutboundRoute 'one'/);
    for (const bad of ['1.2.3.4.5', 'foo.123', '256.0.0.1', '1::2::3']) {
      assert.equal(refusedSet({ 'r.yaml': route('r', `{ hosts: ["${bad}"] }`) }).field, 'spec.hosts[0]', bad);
    }
  });

  it('refuses a host routed by two OutboundRoutes', () => {
    const err = refusedSet({ 'r.yaml': `${route('one', '{ hosts: [a.example.com] }')}---\n${route('two', '{ hosts: [b.example.com, a.example.com] }')}` });
    assert.equal(err.document, '1 (two)');
    assert.equal(err.field, 'spec.hosts[1]');
    assert.match(err.message, /already routed by OutboundRoute 'one'/);
  });

  describe('tls: none', () => {
    const cluster = boundary('cluster', '{ cidrs: ["10.0.0.0/8", "fd00::/8"], hosts: ["*.svc.cluster.local"] }');
    const plain = (hosts: string) => route('plain', `{ hosts: [${hosts}], tls: none }`);

    it('refuses a set that would send plaintext to a host no TrustBoundary contains, naming the route and host', () => {
      const err = refusedSet({ 'b.yaml': cluster, 'r.yaml': plain('orders.svc.cluster.local, api.example.com') });
      assert.equal(err.file, 'policies/r.yaml');
      assert.equal(err.document, '0 (plain)');
      assert.equal(err.field, 'spec.hosts[1]');
      assert.match(err.message, /tls: none would send plaintext to 'api\.example\.com', which no TrustBoundary contains/);
    });

    it('refuses it when no TrustBoundary exists at all', () => {
      assert.match(refusedSet({ 'r.yaml': plain('orders.svc.cluster.local') }).message, /no TrustBoundary contains/);
    });

    it('accepts hosts matched by a boundary glob and IP literals inside a boundary CIDR', () => {
      const set = loadSet({ 'b.yaml': cluster, 'r.yaml': plain('orders.svc.cluster.local, "10.20.30.40", "fd00::7", "*.svc.cluster.local"') });
      assert.equal(set.routes[0]!.tls, 'none');
    });

    it('refuses IP literals outside every CIDR and host globs wider than the boundary', () => {
      for (const host of ['"11.0.0.1"', '"fe80::1"', '"**.svc.cluster.local"', '"*.cluster.local"', 'svc.cluster.local']) {
        const err = refusedSet({ 'b.yaml': cluster, 'r.yaml': plain(host) });
        assert.equal(err.field, 'spec.hosts[0]', host);
      }
    });

    it('counts a Kubernetes service name of any depth as inside a leading *. boundary host', () => {
      for (const host of ['a.orders.svc.cluster.local', '"*.orders.svc.cluster.local"', '"*.svc.cluster.local"']) {
        assert.equal(loadSet({ 'b.yaml': cluster, 'r.yaml': plain(host) }).routes.length, 1, host);
      }
    });

    it('allows any host when TLS is used', () => {
      assert.equal(loadSet({ 'r.yaml': route('r', '{ hosts: [api.example.com], tls: tls }') }).routes.length, 1);
    });
  });

  describe('directories', () => {
    it('refuses a directory that does not exist, and a path that is a file', async () => {
      await assert.rejects(loadPolicyDir(join(tmp, 'missing')), (e: unknown) => e instanceof ConfigError && /does not exist/.test(e.message));
      const dir = await dirWith({ 'a.yaml': ALLOW_BILLING });
      await assert.rejects(loadPolicyDir(join(dir, 'a.yaml')), /not a directory/);
    });

    it('loads an empty directory as an empty set that allows everyone', async () => {
      const set = await loadPolicyDir(await dirWith({}));
      assert.equal(set.documents.length, 0);
      assert.equal(set.digest, EMPTY_DIGEST);
      assert.equal(set.authorize({ principal: 'x', method: 'GET', matchPath: '/', token: undefined, nowSeconds: 0 }).allow, true);
      assert.equal(emptyPolicySet().digest, EMPTY_DIGEST);
    });

    it('reads only *.yaml and *.yml directly in the directory, in name order, skipping dotfiles', async () => {
      const dir = await dirWith({
        'b.yml': route('b', '{ hosts: [b.example.com] }'),
        'a.yaml': ALLOW_BILLING,
        'notes.txt': 'not yaml',
        'c.YAML': 'ignored: true',
        '.hidden.yaml': 'broken: [',
        'd.yaml.bak': 'broken: [',
      });
      await mkdir(join(dir, 'sub'));
      await writeFile(join(dir, 'sub', 'x.yaml'), 'broken: [');
      await mkdir(join(dir, 'dir.yaml'));
      const set = await loadPolicyDir(dir);
      assert.deepEqual(set.files, [join(dir, 'a.yaml'), join(dir, 'b.yml')]);
    });

    it('follows symlinks, as in a Kubernetes ConfigMap volume', async () => {
      const dir = await dirWith({});
      await mkdir(join(dir, '..data'));
      await writeFile(join(dir, '..data', 'orders.yaml'), ALLOW_BILLING);
      await symlink('..data/orders.yaml', join(dir, 'orders.yaml'));
      const set = await loadPolicyDir(dir);
      assert.deepEqual(set.documents.map((d) => d.name), ['orders']);
    });

    it('skips empty documents but still counts them in document indexes', async () => {
      const dir = await dirWith({ 'a.yaml': `---\n${ALLOW_BILLING}---\n# nothing here\n---\n${route('bad', '{ hosts: [] }')}---\n` });
      const err = await loadPolicyDir(dir).then(() => assert.fail('accepted'), (e: unknown) => e as PolicySetError);
      assert.equal(err.document, '2 (bad)');
    });
  });

  describe('digest', () => {
    it('is the same for identical content in another directory, and for the same set loaded twice', async () => {
      const files = { 'a.yaml': ALLOW_BILLING, 'b.yaml': route('b', '{ hosts: [b.example.com] }') };
      const one = await loadPolicyDir(await dirWith(files));
      const two = await loadPolicyDir(await dirWith(files));
      assert.equal(one.digest, two.digest);
      assert.equal((await loadPolicyDir(await dirWith(files))).digest, one.digest);
    });

    it('changes when any byte or any file name changes, comments included', async () => {
      const base = (await loadPolicyDir(await dirWith({ 'a.yaml': ALLOW_BILLING }))).digest;
      const comment = (await loadPolicyDir(await dirWith({ 'a.yaml': `${ALLOW_BILLING}# reviewed\n` }))).digest;
      const renamed = (await loadPolicyDir(await dirWith({ 'b.yaml': ALLOW_BILLING }))).digest;
      assert.equal(new Set([base, comment, renamed]).size, 3);
    });

    it('is reproducible with sha256sum, without authproxy', async () => {
      const dir = await dirWith({ 'orders.yaml': ALLOW_BILLING, 'routes.yml': route('r', '{ hosts: [r.example.com] }'), 'README.md': '#' });
      const { stdout } = await promisify(execFile)('sh', ['-c', "ls | grep -E '\\.ya?ml$' | LC_ALL=C sort | xargs sha256sum | sha256sum"], { cwd: dir });
      assert.equal(stdout.split(' ')[0], (await loadPolicyDir(dir)).digest);
    });

    it('is carried by every decision', () => {
      const set = loadSet({ 'a.yaml': ALLOW_BILLING });
      assert.equal(set.authorize({ principal: 'x', method: 'GET', matchPath: '/', token: undefined, nowSeconds: 0 }).policyDigest, set.digest);
    });
  });
});
