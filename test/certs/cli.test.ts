import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cli, scratch } from './helpers.ts';

let dir: string; let cleanup: () => Promise<void>;
before(async () => ({ dir, cleanup } = await scratch()));
after(() => cleanup());

test('certs without a subcommand lists the subcommands and exits 2', async () => {
  const r = await cli(dir, ['certs']);
  assert.equal(r.code, 2);
  for (const s of ['init', 'issue', 'csr', 'sign', 'pfx', 'inspect']) assert.match(r.stderr, new RegExp(`^  ${s} `, 'm'));
});

test('certs with an unknown subcommand exits 2 with one line', async () => {
  const r = await cli(dir, ['certs', 'rotate']);
  assert.equal(r.code, 2);
  assert.equal(r.stderr.trim().split('\n').length, 1);
});

test('every certs subcommand prints its usage for --help and exits 0', async () => {
  for (const s of ['init', 'issue', 'csr', 'sign', 'pfx', 'inspect']) {
    const r = await cli(dir, ['certs', s, '--help']);
    assert.equal(r.code, 0, s);
    assert.match(r.stdout, new RegExp(`^usage: authproxy certs ${s}`), s);
  }
});

test('an unknown flag is a one-line usage error', async () => {
  const r = await cli(dir, ['certs', 'init', '--trust-domian', 'example.org']);
  assert.equal(r.code, 2);
  assert.equal(r.stderr, "authproxy certs init: unknown option '--trust-domian' (see 'authproxy certs init --help')\n");
});
