// Runs the real CLI (`bin/authproxy.js`) as a child process, the way users and Kubernetes do,
// and learns its bound ports from the `ready` log line (tests listen on port 0).
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { wholeJsonLines } from './json-lines.ts';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = fileURLToPath(new URL('../../bin/authproxy.js', import.meta.url));

export interface Sidecar {
  proc: ChildProcess;
  inboundPort: number;
  adminPort: number;
  outboundPort: number;
  stdout(): string;
  stderr(): string;
  /** Resolves when stderr (JSON log lines) has a line whose msg matches. */
  waitForLog(msg: string | RegExp, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Resolves with the first match of re in stdout (the dev banner), which may arrive after the `ready` log on stderr. */
  waitForStdout(re: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Waits for the process to exit on its own (no signal sent); resolves with its exit code. */
  exited(timeoutMs?: number): Promise<number | null>;
}

export async function startSidecar(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Sidecar> {
  // Tests run side by side: the outbound listener gets a free port unless the test chose one.
  const all = args.some((a) => a.startsWith('--outbound-listen')) ? args : [...args, '--outbound-listen', '127.0.0.1:0'];
  const proc = spawn(process.execPath, [BIN, ...all], { cwd: opts.cwd ?? REPO, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = ''; let err = '';
  const waiters: Array<() => void> = [];
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; for (const w of waiters) w(); });
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; for (const w of waiters) w(); });

  const logLines = (): Array<Record<string, unknown>> => wholeJsonLines(err);
  const waitForLog = (msg: string | RegExp, timeoutMs = 15_000): Promise<Record<string, unknown>> => new Promise((resolve, reject) => {
    const match = (): Record<string, unknown> | undefined => logLines().find((l) => (typeof msg === 'string' ? l.msg === msg : msg.test(String(l.msg))));
    const timer = setTimeout(() => reject(new Error(`no log '${String(msg)}' within ${timeoutMs}ms; stderr:\n${err}\nstdout:\n${out}`)), timeoutMs);
    const check = (): void => { const m = match(); if (m) { clearTimeout(timer); resolve(m); } };
    waiters.push(check);
    // 'close', not 'exit': the last lines may still be in the pipe when the process has exited.
    proc.once('close', () => { const m = match(); if (!m) { clearTimeout(timer); reject(new Error(`sidecar exited (${proc.exitCode}); stderr:\n${err}\nstdout:\n${out}`)); } });
    check();
  });

  const waitForStdout = (re: RegExp, timeoutMs = 15_000): Promise<RegExpExecArray> => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no stdout matching ${String(re)} within ${timeoutMs}ms; stdout:\n${out}`)), timeoutMs);
    const check = (): void => { const m = re.exec(out); if (m) { clearTimeout(timer); resolve(m); } };
    waiters.push(check);
    check();
  });

  const ready = await waitForLog('ready');
  const port = (s: unknown): number => Number(String(s).split(':').at(-1));
  return {
    proc, inboundPort: port(ready.inbound), adminPort: port(ready.admin), outboundPort: port(ready.outbound),
    stdout: () => out, stderr: () => err, waitForLog, waitForStdout,
    async exited(timeoutMs = 15_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
      const [code] = await once(proc, 'exit') as [number | null];
      clearTimeout(timer);
      return code;
    },
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill(signal);
      const [code] = await once(proc, 'exit') as [number | null];
      return code;
    },
  };
}

/** A process's resident memory now (VmRSS) and at its peak so far (VmHWM), in bytes. */
export async function memoryOf(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)![1]) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}
