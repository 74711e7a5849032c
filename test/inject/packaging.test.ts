import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { builtinModules } from 'node:module';
import { cp, mkdtemp, readFile, readdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { REPO } from './support/injector.ts';
import { ANNOTATIONS } from '../../src/inject/annotations.ts';

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...await sourceFiles(p));
    else if (/\.(ts|js)$/.test(e.name)) out.push(p);
  }
  return out;
}

test('the runtime code imports only production dependencies, so `npm ci --omit=dev` in the image is enough', async () => {
  const pkg = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  const allowed = new Set(Object.keys(pkg.dependencies));
  const builtins = new Set(builtinModules);
  const offenders: string[] = [];
  for (const file of [...await sourceFiles(join(REPO, 'src')), ...await sourceFiles(join(REPO, 'bin'))]) {
    const text = await readFile(file, 'utf8');
    // Static and dynamic imports, skipping `import type` (erased before the code runs).
    for (const m of text.matchAll(/^\s*(?:import|export)\s+(?!type\s)(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm)) {
      const spec = m[1] ?? m[2]!;
      if (spec.startsWith('.') || spec.startsWith('node:')) continue;
      const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
      if (!allowed.has(name) && !builtins.has(name)) offenders.push(`${file.slice(REPO.length)}: ${spec}`);
    }
  }
  assert.deepEqual(offenders, [], 'imports of packages that are not production dependencies');
});

test('the files the Dockerfile copies, compiled as it compiles them, run authproxy through its ENTRYPOINT name', async () => {
  const dockerfile = await readFile(join(REPO, 'Dockerfile'), 'utf8');
  assert.match(dockerfile, /^ENTRYPOINT \["authproxy"\]$/m);
  assert.match(dockerfile, /^USER [1-9][0-9]*:[1-9][0-9]*$/m, 'numeric non-root user');
  assert.match(dockerfile, /npm", "prune", "--omit=dev"/, 'dev dependencies are dropped after the build');
  assert.match(dockerfile, /RUN \["node_modules\/\.bin\/tsc", "-p", "tsconfig\.build\.json"\]/);
  const copied = [...dockerfile.matchAll(/^COPY (?!--from)(.+)$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/).slice(0, -1));
  assert.deepEqual(copied.sort(), ['package-lock.json', 'package.json', 'policies/', 'src/', 'tsconfig.build.json', 'tsconfig.json']);
  const runtime = [...dockerfile.matchAll(/^COPY --from=build \/app\/(\S+)/gm)].map((m) => m[1]!);
  assert.deepEqual(runtime.sort(), ['bin/', 'dist/', 'node_modules/', 'package.json', 'policies/'], 'the runtime stage carries no sources');
  // The launcher the image writes, with node itself (a minimal base has no shell tools). Exec form
  // must be valid JSON, or Docker silently runs it as a shell string instead.
  const launcherRun = /^RUN (\["node", "-e", .*\])$/m.exec(dockerfile)?.[1];
  assert.ok(launcherRun, 'a RUN writes the launcher');
  const [, , script] = JSON.parse(launcherRun) as [string, string, string];
  assert.ok(script.includes(String.raw`"#!/usr/bin/env node\nimport '../dist/cli/main.js';\n"`), script);

  // The image's /app, rebuilt from exactly those paths and built the same way (dependencies borrowed).
  const app = await mkdtemp(join(tmpdir(), 'authproxy-image-'));
  try {
    for (const p of copied) await cp(join(REPO, p), join(app, p), { recursive: true });
    await symlink(join(REPO, 'node_modules'), join(app, 'node_modules'));
    await new Promise<void>((resolve, reject) => {
      execFile(join(REPO, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.build.json'], { cwd: app }, (e, stdout) => (e ? reject(new Error(stdout)) : resolve()));
    });
    // The launcher written by the Dockerfile's own command, #! line and all.
    await new Promise<void>((resolve, reject) => {
      execFile(process.execPath, ['-e', script], { cwd: app }, (e, _out, stderr) => (e ? reject(new Error(stderr)) : resolve()));
    });
    await rm(join(app, 'src'), { recursive: true });
    const deployment = 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n        - {name: web, image: web, ports: [{containerPort: 8080}]}\n';
    const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      // As the container runtime does: the entrypoint name looked up on PATH, run from another directory.
      const child = spawn('authproxy', ['inject', '-f', '-'], {
        cwd: tmpdir(), env: { ...process.env, PATH: `${join(app, 'bin')}:${dirname(process.execPath)}:${process.env.PATH ?? ''}` },
      });
      let stdout = ''; let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
      child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
      child.stdin.end(deployment);
    });
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /- name: authproxy/);
  } finally {
    await rm(app, { recursive: true, force: true });
  }
});

test('the image, npm start and the benchmark run with the same production Node options', async () => {
  const { PRODUCTION_NODE_OPTIONS, PRODUCTION_ENV } = await import('../../src/runtime/node-options.ts');
  const dockerfile = await readFile(join(REPO, 'Dockerfile'), 'utf8');
  assert.ok(dockerfile.includes(`NODE_OPTIONS="${PRODUCTION_NODE_OPTIONS}"`));
  for (const [name, value] of Object.entries(PRODUCTION_ENV)) assert.match(dockerfile, new RegExp(`^\\s+${name}=${value} \\\\$`, 'm'), `${name} in the image's ENV`);
  const pkg = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  assert.equal(pkg.scripts.start, `node ${PRODUCTION_NODE_OPTIONS} bin/authproxy.js`);
  const bench = await readFile(join(REPO, 'bench/lib/targets.ts'), 'utf8');
  assert.match(bench, /PRODUCTION_NODE_OPTIONS/);
  assert.match(bench, /\.\.\.PRODUCTION_ENV/);
});

test('docs/kubernetes.md documents every per-pod annotation', async () => {
  const doc = await readFile(join(REPO, 'docs/kubernetes.md'), 'utf8');
  for (const name of Object.values(ANNOTATIONS)) assert.ok(doc.includes(`\`${name}\``), `${name} documented`);
});
