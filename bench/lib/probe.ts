// What every probe in bench/probes/ starts with: a scratch dir, the benchmark's PKI and the app on
// the targets' core, as bench/run.ts sets them up, so a probe measures the same paths the run does.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBenchPki } from './pki.ts';
import { BENCH_DIR, cpuPlan, firstJsonLine, spawnOn, stopProcess } from './procs.ts';
import type { Context } from './targets.ts';

export interface Probe {
  ctx: Context;
  /** Stops the app and removes the scratch dir and the PKI; the probe stops its own targets first. */
  close(): Promise<void>;
}

export async function openProbe(name: string): Promise<Probe> {
  const cpu = cpuPlan();
  const work = await mkdtemp(join(tmpdir(), `authproxy-${name}-`));
  const pki = await makeBenchPki();
  const appProc = spawnOn(cpu.targetCpu, process.execPath, [join(BENCH_DIR, 'app.ts'), join(work, 'app.sock')], { stdio: ['ignore', 'pipe', 'pipe'] });
  const close = async (): Promise<void> => {
    await stopProcess(appProc);
    await pki.cleanup();
    await rm(work, { recursive: true, force: true });
  };
  try {
    const app = await firstJsonLine<{ port: number; socketPath: string }>(appProc);
    return { ctx: { pki, app: { ...app, pid: appProc.pid! }, cpu, work }, close };
  } catch (e) { await close(); throw e; }
}
