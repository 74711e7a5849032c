// A compiled-JavaScript build of src/ in a temp dir, to measure what a tsc-emitted launch would
// save against running the TypeScript through Node's type stripping (amaro). The project's own
// build is not touched: a throwaway tsconfig extends the real one and emits outside the repo.
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { REPO } from './procs.ts';

const run = promisify(execFile);

/** Compiles src/ into `dir`/out; resolves with the launcher to run in place of bin/authproxy.js. */
export async function compileSidecar(dir: string): Promise<string> {
  const out = join(dir, 'out');
  const tsconfig = join(dir, 'tsconfig.json');
  await mkdir(dir, { recursive: true });
  await writeFile(tsconfig, JSON.stringify({
    extends: join(REPO, 'tsconfig.json'),
    compilerOptions: {
      noEmit: false, outDir: out, rootDir: REPO, declaration: false, sourceMap: false,
      rewriteRelativeImportExtensions: true, typeRoots: [join(REPO, 'node_modules/@types')],
    },
    include: [join(REPO, 'src')],
  }));
  // Type errors elsewhere in the tree must not stop a measurement: tsc emits anyway.
  await run(join(REPO, 'node_modules/.bin/tsc'), ['-p', tsconfig], { maxBuffer: 16 << 20 }).catch((e: { stdout?: string }) => {
    if (!/error TS/.test(e.stdout ?? '')) throw e as Error;
  });
  await writeFile(join(out, 'package.json'), '{"type":"module"}\n');
  await symlink(join(REPO, 'node_modules'), join(out, 'node_modules'));
  await mkdir(join(out, 'bin'), { recursive: true });
  const launcher = join(out, 'bin/authproxy.js');
  await writeFile(launcher, "import '../src/cli/main.js';\n");
  return launcher;
}
