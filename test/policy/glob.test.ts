import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compileGlob, compileHostGlob, GlobSyntaxError } from '../../src/policy/glob.ts';

function matches(pattern: string, input: string, sep = '/'): boolean {
  return compileGlob(pattern, sep).matches(input);
}

/**
 * Reference semantics as a RegExp, for cross-checking the hand-written matcher on small inputs:
 * with every input segment prefixed by the separator, a plain segment is `S<body>` and `**` is
 * any number of `S<segment>`.
 */
function reference(pattern: string, sep: string): (input: string) => boolean {
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
  const S = esc(sep);
  const body = pattern.split(sep).map((seg) =>
    seg === '**' ? `(?:${S}[^${S}]*)*` : `${S}${seg.split('*').map(esc).join(`[^${S}]*`)}`).join('');
  const re = new RegExp(`^${body}$`);
  return (input) => re.test(sep + input);
}

describe('segment globs', () => {
  it('matches literal patterns exactly and case-sensitively', () => {
    assert.equal(matches('/orders', '/orders'), true);
    assert.equal(matches('/orders', '/ORDERS'), false);
    assert.equal(matches('/orders', '/orders/1'), false);
    assert.equal(matches('/orders', '/order'), false);
  });

  it('lets * match within one segment only', () => {
    assert.equal(matches('/orders/*', '/orders/42'), true);
    assert.equal(matches('/orders/*', '/orders/42/items'), false);
    assert.equal(matches('/orders/*', '/orders'), false);
    assert.equal(matches('spiffe://example.org/ns/billing/sa/*', 'spiffe://example.org/ns/billing/sa/api'), true);
    assert.equal(matches('spiffe://example.org/ns/billing/sa/*', 'spiffe://example.org/ns/billing/sa/api/x'), false);
    assert.equal(matches('spiffe://example.org/ns/billing/sa/*', 'spiffe://example.org/ns/billing2/sa/api'), false);
  });

  it('lets * appear several times inside a segment, next to literal text', () => {
    assert.equal(matches('/files/*.json', '/files/a.json'), true);
    assert.equal(matches('/files/*.json', '/files/a.jsonx'), false);
    assert.equal(matches('/v*/api-*-x', '/v2/api-foo-x'), true);
    assert.equal(matches('/v*/api-*-x', '/v2/api-x'), false);
    assert.equal(matches('/a*b*c', '/abc'), true);
    assert.equal(matches('/ab*ba', '/aba'), false, 'head and tail must not overlap');
    assert.equal(matches('/ab*ba', '/abba'), true);
  });

  it('lets ** match any number of segments, including zero', () => {
    assert.equal(matches('/admin/**', '/admin'), true);
    assert.equal(matches('/admin/**', '/admin/x'), true);
    assert.equal(matches('/admin/**', '/admin/x/y/z'), true);
    assert.equal(matches('/admin/**', '/administrator'), false);
    assert.equal(matches('/admin/**', '/other/admin'), false);
    assert.equal(matches('/a/**/b', '/a/b'), true);
    assert.equal(matches('/a/**/b', '/a/x/y/b'), true);
    assert.equal(matches('/a/**/b', '/a/x/y/c'), false);
    assert.equal(matches('/**', '/'), true);
    assert.equal(matches('/**', '/anything/at/all'), true);
    assert.equal(matches('spiffe://example.org/ns/ops/**', 'spiffe://example.org/ns/ops/sa/deploy'), true);
    assert.equal(matches('spiffe://example.org/ns/ops/**', 'spiffe://example.org/ns/opsx/sa/deploy'), false);
  });

  it('backtracks ** correctly when a later literal appears several times', () => {
    assert.equal(matches('/**/a/b', '/a/a/a/b'), true);
    assert.equal(matches('/**/a/**/b/*', '/x/a/y/b/a/b/z'), true);
    assert.equal(matches('/**/a/**/b/*', '/x/a/y/b/a/c/z'), false);
  });

  it('uses the given separator, so host globs split on dots', () => {
    assert.equal(matches('*.svc.cluster.local', 'payments.svc.cluster.local', '.'), true);
    assert.equal(matches('*.svc.cluster.local', 'a.payments.svc.cluster.local', '.'), false);
    assert.equal(matches('**.example.com', 'a.b.example.com', '.'), true);
    assert.equal(matches('**.example.com', 'example.com', '.'), true);
    assert.equal(matches('*.example.com', 'a/b.example.com', '.'), true, "'/' is an ordinary character with '.' as separator");
  });

  it('refuses ** mixed into a segment and empty patterns', () => {
    assert.throws(() => compileGlob('/admin**', '/'), GlobSyntaxError);
    assert.throws(() => compileGlob('/a/**b/c', '/'), /whole segment/);
    assert.throws(() => compileGlob('', '/'), GlobSyntaxError);
  });

  it('agrees with a reference regular expression on every small pattern and input', () => {
    const alphabet = ['a', 'b', '/'];
    const inputs: string[] = [''];
    for (let len = 1; len <= 6; len++) {
      for (const prefix of inputs.filter((s) => s.length === len - 1)) for (const c of alphabet) inputs.push(prefix + c);
    }
    const segmentForms = ['a', 'b', '*', 'a*', '*b', 'a*b', '**', ''];
    const patterns = new Set<string>();
    for (const x of segmentForms) for (const y of segmentForms) {
      patterns.add(`${x}/${y}`);
      for (const z of segmentForms) patterns.add(`${x}/${y}/${z}`);
    }
    let checked = 0;
    for (const pattern of patterns) {
      if (pattern === '' || pattern.split('/').every((s) => s === '')) continue;
      const glob = compileGlob(pattern, '/');
      const re = reference(pattern, '/');
      for (const input of inputs) {
        assert.equal(glob.matches(input), re(input), `pattern ${JSON.stringify(pattern)} on ${JSON.stringify(input)}`);
        checked++;
      }
    }
    assert.ok(checked > 100_000);
  });

  it('is a precompiled matcher that keeps its pattern and separator', () => {
    const g = compileGlob('/orders/*', '/');
    assert.equal(g.pattern, '/orders/*');
    assert.equal(g.separator, '/');
    assert.equal(g.matches('/orders/1'), true);
    assert.equal(g.matches('/orders/2'), true);
  });
});

it('a leading * label in a host pattern matches one or more labels, never the bare suffix', () => {
  const g = compileHostGlob('*.svc.cluster.local');
  assert.ok(g.matches('payments.svc.cluster.local'));
  assert.ok(g.matches('payments.prod.svc.cluster.local'), 'Kubernetes service names have several labels');
  assert.equal(g.matches('svc.cluster.local'), false);
  assert.equal(g.matches('payments.svc.cluster.local.evil.com'), false);
  const inner = compileHostGlob('api.*.example.com');
  assert.ok(inner.matches('api.eu.example.com'));
  assert.equal(inner.matches('api.eu.west.example.com'), false, 'a * label elsewhere is exactly one label');
});
