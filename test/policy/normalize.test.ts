import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RequestRefused } from '../../src/errors.ts';
import { normalizeTarget } from '../../src/policy/normalize.ts';

function refused(target: string, message?: RegExp): void {
  assert.throws(() => normalizeTarget(target), (e: unknown) => {
    assert.ok(e instanceof RequestRefused, `expected RequestRefused for ${JSON.stringify(target)}`);
    assert.equal(e.code, 'bad_path');
    assert.equal(e.status, 400);
    if (message) assert.match(e.message, message);
    return true;
  });
}

function judged(target: string): string {
  return normalizeTarget(target).matchPath;
}

describe('request-target normalization', () => {
  it('passes an ordinary origin-form target through, with the query split off', () => {
    assert.deepEqual(normalizeTarget('/orders/42?expand=items&x=%2F'), { path: '/orders/42', query: '?expand=items&x=%2F', matchPath: '/orders/42' });
    assert.deepEqual(normalizeTarget('/'), { path: '/', query: '', matchPath: '/' });
    assert.deepEqual(normalizeTarget('/a?'), { path: '/a', query: '?', matchPath: '/a' });
  });

  it('refuses an encoded slash, so /orders/..%2Fadmin cannot smuggle a traversal', () => {
    refused('/orders/..%2Fadmin', /%2F/);
    refused('/orders/..%2fadmin', /%2F/);
  });

  it('decodes encoded dots before resolving, so /orders/%2e%2e/admin is judged as /admin', () => {
    assert.deepEqual(normalizeTarget('/orders/%2e%2e/admin'), { path: '/admin', query: '', matchPath: '/admin' });
    assert.equal(judged('/orders/.%2E/admin'), '/admin');
    assert.equal(judged('/orders/%2E./admin'), '/admin');
  });

  it('keeps case, so /ORDERS is a different path from /orders', () => {
    assert.equal(judged('/ORDERS'), '/ORDERS');
    assert.equal(judged('/Admin'), '/Admin');
  });

  it('judges /admin;x=y as /admin while the app still receives the parameters', () => {
    assert.deepEqual(normalizeTarget('/admin;x=y'), { path: '/admin;x=y', query: '', matchPath: '/admin' });
    assert.equal(judged('/admin;jsessionid=1/users;v=2/'), '/admin/users');
    assert.equal(judged('/admin;'), '/admin');
  });

  it('refuses a segment that is empty or a dot-segment once its parameters are removed (the ..;/ bypass)', () => {
    refused('/orders/..;/admin', /parameters/);
    refused('/orders/.;x/admin', /parameters/);
    refused('/;x/admin', /parameters/);
  });

  it('decodes unreserved characters, so /%61dmin is /admin for both the rule and the app', () => {
    assert.deepEqual(normalizeTarget('/%61dmin'), { path: '/admin', query: '', matchPath: '/admin' });
    assert.equal(judged('/%7e%2D%5f%2E%30'), '/~-_.0');
  });

  it('keeps other escapes encoded with uppercase hex', () => {
    assert.equal(normalizeTarget('/caf%c3%a9/a%20b').path, '/caf%C3%A9/a%20b');
    assert.equal(judged('/a%3fb'), '/a%3Fb', 'an encoded ? stays part of the path');
    assert.equal(judged('/100%25'), '/100%25');
  });

  it('percent-encodes printable characters that are not allowed raw in a path', () => {
    assert.equal(normalizeTarget('/a{b}|c"d<e>^`[f]').path, '/a%7Bb%7D%7Cc%22d%3Ce%3E%5E%60%5Bf%5D');
    assert.equal(judged('/a{b}'), judged('/a%7bb%7d'));
  });

  it('judges a trailing slash or /. like the path without it, and the app receives the RFC form', () => {
    assert.deepEqual(normalizeTarget('/admin/'), { path: '/admin/', query: '', matchPath: '/admin' });
    assert.deepEqual(normalizeTarget('/admin/.'), { path: '/admin/', query: '', matchPath: '/admin' });
    assert.deepEqual(normalizeTarget('/admin/x/..'), { path: '/admin/', query: '', matchPath: '/admin' });
    assert.deepEqual(normalizeTarget('/admin/..'), { path: '/', query: '', matchPath: '/' });
  });

  it('merges repeated slashes, so //admin and /admin//users are judged and forwarded merged', () => {
    assert.deepEqual(normalizeTarget('//admin'), { path: '/admin', query: '', matchPath: '/admin' });
    assert.equal(normalizeTarget('/admin//users///').path, '/admin/users/');
    assert.equal(judged('///'), '/');
    assert.equal(judged('/a//../b'), '/b', 'slashes are merged before dot-segments are resolved');
  });

  it('resolves ./ segments, so /./admin is /admin', () => {
    assert.equal(normalizeTarget('/./admin').path, '/admin');
    assert.equal(judged('/orders/./../admin/./x'), '/admin/x');
  });

  it('refuses a .. that would climb above the root', () => {
    refused('/a/../../etc', /above the root/);
    refused('/..', /above the root/);
    refused('/%2e%2e/etc', /above the root/);
  });

  it('takes the path of an absolute-form target', () => {
    assert.deepEqual(normalizeTarget('http://orders.svc/a/./b?x=1'), { path: '/a/b', query: '?x=1', matchPath: '/a/b' });
    assert.deepEqual(normalizeTarget('HTTPS://orders.svc:8443/admin;x'), { path: '/admin;x', query: '', matchPath: '/admin' });
    assert.deepEqual(normalizeTarget('http://orders.svc'), { path: '/', query: '', matchPath: '/' });
    assert.deepEqual(normalizeTarget('http://orders.svc?q'), { path: '/', query: '?q', matchPath: '/' });
    assert.equal(judged('http://[::1]:80/%61dmin'), '/admin');
  });

  it('refuses asterisk-form, authority-form, relative and other-scheme targets', () => {
    refused('*');
    refused('orders.svc:443');
    refused('admin');
    refused('');
    refused('ftp://host/a');
    refused('http:///admin', /authority/);
    refused('http://user@host/admin', /authority/);
    refused('http://host\\@evil/admin', /authority/);
    refused('http://host#frag/admin');
  });

  it('refuses malformed percent-escapes', () => {
    refused('/%zz', /malformed/);
    refused('/a%2', /malformed/);
    refused('/a%', /malformed/);
    refused('/a%g0', /malformed/);
  });

  it('refuses NUL and control characters, raw or (for NUL) encoded', () => {
    refused('/a%00b', /NUL/);
    refused('/a\u0000b', /control/);
    refused('/a\u0001b', /control/);
    refused('/a\tb', /control/);
    refused('/a\u007fb', /control/);
    refused('/a?x=\u0000', /query/);
    refused('/a?x=\r\n', /query/);
  });

  it('refuses a backslash, raw or encoded', () => {
    refused('/orders\\..\\admin', /backslash/);
    refused('/orders/%5c../admin', /backslash/);
    refused('/orders/%5C', /backslash/);
  });

  it('refuses an encoded semicolon, a fragment and raw non-ASCII', () => {
    refused('/admin%3bx', /%3B/);
    refused('/public#/../admin', /#/);
    refused('/café', /non-ASCII/);
  });

  it('keeps a query untouched, even when it looks like a path trick', () => {
    assert.deepEqual(normalizeTarget('/a?next=/../admin%2F'), { path: '/a', query: '?next=/../admin%2F', matchPath: '/a' });
  });

  it('produces a fixed point: every accepted target yields a path that normalizes to itself and a clean matchPath', () => {
    const pieces = ['/', 'a', 'B', '.', '..', '%2e', '%2E', '%61', '%2f', '%5c', ';', ';x=1', '%3b', '%', '%zz', '%c3%a9', '//', '\\', '{', '?', '%00', '~'];
    let state = 7;
    const next = () => (state = (state * 1103515245 + 12345) % 2147483648);
    let accepted = 0;
    for (let n = 0; n < 20000; n++) {
      let target = '/';
      const len = 1 + (next() % 8);
      for (let i = 0; i < len; i++) target += pieces[next() % pieces.length];
      let result;
      try {
        result = normalizeTarget(target);
      } catch (e) {
        assert.ok(e instanceof RequestRefused && e.code === 'bad_path', `unexpected ${String(e)} for ${JSON.stringify(target)}`);
        continue;
      }
      accepted++;
      const again = normalizeTarget(result.path);
      assert.equal(again.path, result.path, `path of ${JSON.stringify(target)} is not a fixed point`);
      assert.equal(again.matchPath, result.matchPath);
      const m = result.matchPath;
      assert.ok(m.startsWith('/'), m);
      assert.ok(!m.includes('//') && !m.includes(';') && !m.includes('\\'), m);
      assert.ok(m === '/' || !m.endsWith('/'), m);
      assert.ok(!m.split('/').some((seg) => seg === '.' || seg === '..'), m);
      assert.ok(!/%(2F|5C|00|3B)/i.test(m), `forbidden escape in ${m}`);
      assert.ok(!/%([a-f][0-9a-fA-F]|[0-9A-F][a-f])/.test(m), `lowercase hex in ${m}`);
    }
    assert.ok(accepted > 1000, `only ${accepted} accepted`);
  });
});
