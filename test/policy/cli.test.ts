import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPolicyDir } from '../../src/policy/load.ts';
import { policy, route } from './helpers.ts';

interface Run { code: number; stdout: string; stderr: string }

function authproxy(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/authproxy.js', ...args], (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('authproxy policy check', () => {
  let tmp: string;
  before(async () => { tmp = await mkdtemp(join(tmpdir(), 'authproxy-policy-cli-')); });
  after(async () => { await rm(tmp, { recursive: true, force: true }); });

  it('prints a summary and the digest of a valid set and exits 0', async () => {
    const r = await authproxy('policy', 'check', 'policies');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const digest = (await loadPolicyDir('policies')).digest;
    assert.match(r.stdout, /^policy set in policies is valid: 4 documents in 3 files$/m);
    assert.match(r.stdout, /^ {2}AuthorizationPolicy: 2 \(3 rules\) {2}dev-client, orders$/m);
    assert.match(r.stdout, /^ {2}OutboundRoute: 1 {2}payments$/m);
    assert.match(r.stdout, /^ {2}TrustBoundary: 1 {2}cluster$/m);
    assert.match(r.stdout, /^ {2}policies\/routes\.yaml: OutboundRoute\/payments, TrustBoundary\/cluster$/m);
    assert.ok(r.stdout.trimEnd().endsWith(`digest: ${digest}`));
  });

  it('prints every problem with file, document and field and exits 1', async () => {
    const dir = await mkdtemp(join(tmp, 'bad-'));
    await writeFile(join(dir, 'a.yaml'), policy('orders', '- name: r\n  action: permit'));
    await writeFile(join(dir, 'b.yaml'), route('payments', '{ hosts: [api.example.com], tls: plaintext }'));
    const r = await authproxy('policy', 'check', dir);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /refused \(2 problems\)/);
    assert.ok(r.stderr.includes(`${join(dir, 'a.yaml')}, document 0 (orders), field spec.rules[0].action: must be one of: allow, deny (line 7)`), r.stderr);
    assert.ok(r.stderr.includes(`${join(dir, 'b.yaml')}, document 0 (payments), field spec.tls: must be one of: auto, tls, mtls, none (line 4)`), r.stderr);
  });

  it('prints the set-level problem once the documents themselves are valid', async () => {
    const dir = await mkdtemp(join(tmp, 'plain-'));
    await writeFile(join(dir, 'b.yaml'), route('plain', '{ hosts: [api.example.com], tls: none }'));
    const r = await authproxy('policy', 'check', dir);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /refused \(1 problem\):\n {2}.*b\.yaml, document 0 \(plain\), field spec\.hosts\[0\]: tls: none would send plaintext to 'api\.example\.com'/);
  });

  it('exits 1 for a directory that does not exist', async () => {
    const r = await authproxy('policy', 'check', join(tmp, 'nope'));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /policy directory does not exist/);
  });

  it('reports an empty directory as a valid empty set that allows every caller', async () => {
    const dir = await mkdtemp(join(tmp, 'empty-'));
    const r = await authproxy('policy', 'check', dir);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /0 documents in 0 files/);
    assert.match(r.stdout, /no AuthorizationPolicy: every caller will be allowed/);
    assert.match(r.stdout, /digest: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855/);
  });

  it('exits 2 on usage errors', async () => {
    for (const args of [['policy'], ['policy', 'check'], ['policy', 'check', 'a', 'b'], ['policy', 'check', '--bogus', 'policies'], ['policy', 'frobnicate']]) {
      const r = await authproxy(...args);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, /usage: authproxy policy check DIR/);
    }
  });

  it('answers test and explain without their required arguments with usage and exit 2', async () => {
    for (const sub of ['test', 'explain']) {
      const r = await authproxy('policy', sub, 'policies');
      assert.equal(r.code, 2);
      assert.match(r.stderr, /usage: authproxy policy/);
    }
  });

  it('prints help with exit 0', async () => {
    const r = await authproxy('policy', 'check', '--help');
    assert.equal(r.code, 0);
    assert.match(r.stdout, /usage: authproxy policy check DIR/);
  });
});
