// Shared by the certs tests: run the real CLI and the real openssl, in a throwaway directory.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const REPO = resolve(import.meta.dirname, '../..');
const BIN = join(REPO, 'bin/authproxy.js');

export interface Run { code: number; stdout: string; stderr: string }

function run(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<Run> {
  return new Promise((done) => {
    execFile(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, encoding: 'utf8', maxBuffer: 1 << 24 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      done({ code, stdout, stderr });
    });
  });
}

/** `authproxy <args>` as a user runs it, from `cwd`. The test environment never carries a PFX password. */
export function cli(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const base = { ...process.env };
  delete base.AUTHPROXY_PFX_PASSWORD;
  return run(process.execPath, [BIN, ...args], { cwd, env: { ...base, ...env } });
}

export function openssl(cwd: string, args: string[]): Promise<Run> {
  return run('openssl', args, { cwd });
}

/** A fresh directory under the OS temp dir and its removal. */
export async function scratch(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'authproxy-certs-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
