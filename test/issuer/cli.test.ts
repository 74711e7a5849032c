// `authproxy issuer` and `authproxy issuer approve` as real processes: the issuer runs in the
// foreground, approvals are created by a second process over the loopback approvals endpoint.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCA, issueCertificate, type PemPair } from '../../src/certs/pki.ts';
import { clientAssertion, postToken, verifyAccessToken } from './helpers.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const CLI = join(ROOT, 'bin/authproxy.js');
const SECRET = 'this-secret-must-never-be-printed';
const run = promisify(execFile);

let dir: string;
let billing: PemPair;
let proc: ChildProcess;
let output = '';
let url: string;
const issuedTokens: string[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'authproxy-issuer-cli-'));
  const ca = await createCA({ trustDomain: 'example.org' });
  billing = await issueCertificate(ca, { spiffeId: 'spiffe://example.org/ns/billing/sa/billing' });
  await writeFile(join(dir, 'billing.crt'), billing.certPem);
  await writeFile(join(dir, 'clients.yaml'), `
clients:
  billing:
    auth: private_key_jwt
    certificate: billing.crt
    audiences:
      api://orders:
        scopes: [orders.read]
  reporting:
    auth: client_secret_basic
    secret: ${SECRET}
    audiences:
      api://orders: {}
`);
  proc = spawn(process.execPath, [CLI, 'issuer', '--listen', '127.0.0.1:0', '--clients', join(dir, 'clients.yaml'), '--token-ttl', '10m'],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout!.on('data', (d: Buffer) => { output += d.toString(); });
  proc.stderr!.on('data', (d: Buffer) => { output += d.toString(); });
  for (let i = 0; i < 200 && !url; i++) {
    url = /authproxy issuer: (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1] ?? '';
    if (!url) await sleep(50);
  }
  assert.ok(url, `issuer did not print its URL:\n${output}`);
});

after(async () => {
  if (proc.exitCode === null) proc.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

async function approve(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, 'issuer', 'approve', '--issuer', url, ...args], { cwd: ROOT });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

async function billingToken(extra: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await postToken(`${url}/token`, { ...await clientAssertion('billing', billing.keyPem, url), resource: 'api://orders', ...extra });
  if (typeof res.body.access_token === 'string') issuedTokens.push(res.body.access_token);
  return res;
}

test('issuer approve prints an approval id that gets the client a token with the approved role', async () => {
  const approved = await approve('--client', 'billing', '--role', 'Orders.Admin', '--for', '15m', '--audience', 'api://orders');
  assert.equal(approved.code, 0, approved.stderr);
  const id = approved.stdout.trim();
  assert.match(id, /^apv_[A-Za-z0-9_-]+$/);
  assert.match(approved.stderr, /Orders\.Admin/);

  const res = await billingToken({ approval: id });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const claims = await verifyAccessToken(res.body.access_token as string, url, 'api://orders');
  assert.deepEqual(claims.roles, ['Orders.Admin']);
  assert.equal(claims.approval, id);
  assert.ok(claims.exp! - claims.iat! <= 600, 'no longer than --token-ttl');

  const plain = await billingToken({});
  const plainClaims = await verifyAccessToken(plain.body.access_token as string, url, 'api://orders');
  assert.equal(plainClaims.roles, undefined, 'without the approval the role is not granted');
  assert.equal(plainClaims.exp! - plainClaims.iat!, 600);
});

test('an expired approval is refused with invalid_grant', async () => {
  const approved = await approve('--client', 'billing', '--role', 'Orders.Admin', '--for', '1s');
  assert.equal(approved.code, 0, approved.stderr);
  await sleep(1100);
  const res = await billingToken({ approval: approved.stdout.trim() });
  assert.equal(res.status, 400);
  assert.equal(res.body.error, 'invalid_grant');
  assert.match(res.body.error_description as string, /expired/);
});

test('another client\'s approval is refused with invalid_grant', async () => {
  const approved = await approve('--client', 'reporting', '--role', 'Orders.Admin', '--for', '5m');
  assert.equal(approved.code, 0, approved.stderr);
  const res = await billingToken({ approval: approved.stdout.trim() });
  assert.equal(res.status, 400);
  assert.equal(res.body.error, 'invalid_grant');
  assert.equal(res.body.access_token, undefined);
});

test('an unknown approval id is refused with invalid_grant', async () => {
  const res = await billingToken({ approval: 'apv_doesnotexist' });
  assert.equal(res.body.error, 'invalid_grant');
});

test('issuer approve fails with a message for an unknown client, an audience the client lacks, and no issuer', async () => {
  const unknown = await approve('--client', 'nobody', '--role', 'X', '--for', '5m');
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /unknown client 'nobody'/);
  const wrongAud = await approve('--client', 'billing', '--role', 'X', '--for', '5m', '--audience', 'api://payments');
  assert.equal(wrongAud.code, 1);
  assert.match(wrongAud.stderr, /no audience 'api:\/\/payments'/);
  const missing = await approve('--client', 'billing', '--role', 'X');
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--for/);
  const { port } = new URL(url);
  const nowhere = await run(process.execPath, [CLI, 'issuer', 'approve', '--issuer', `http://127.0.0.1:${Number(port) === 1 ? 2 : 1}`, '--client', 'billing', '--role', 'X', '--for', '5m'], { cwd: ROOT })
    .then(() => ({ code: 0, stderr: '' }), (e: { code: number; stderr: string }) => e);
  assert.equal(nowhere.code, 1);
  assert.match(nowhere.stderr, /no answer from/);
});

test('the issuer stops with exit code 0 on SIGTERM and never printed a token or a client secret', async () => {
  const secretRes = await postToken(`${url}/token`, {}, { basic: ['reporting', SECRET] });
  assert.equal(secretRes.status, 200, JSON.stringify(secretRes.body));
  issuedTokens.push(secretRes.body.access_token as string);
  await postToken(`${url}/token`, {}, { basic: ['reporting', 'wrong-secret'] });
  assert.ok(issuedTokens.length >= 3);

  const exited = new Promise<number | null>((done) => proc.once('exit', (code) => done(code)));
  proc.kill('SIGTERM');
  assert.equal(await exited, 0);
  assert.match(output, /token issued/, 'the issuer does log its decisions');
  for (const token of issuedTokens) {
    for (const part of token.split('.')) assert.ok(!output.includes(part), 'a token (or a part of one) appeared in the issuer output');
  }
  assert.ok(!output.includes(SECRET), 'the client secret appeared in the issuer output');
  assert.ok(!output.includes('wrong-secret'), 'a presented secret appeared in the issuer output');
  assert.ok(!output.includes('oidc-provider'), `oidc-provider's own notices are silenced:\n${output}`);
});
