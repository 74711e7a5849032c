import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';

const REPO = join(import.meta.dirname, '../..');

function runLauncher(): Promise<string> {
  return new Promise((resolve, reject) => {
    // NODE_DEBUG_NATIVE=COMPILE_CACHE makes Node report each cache lookup on stderr.
    execFile(process.execPath, [join(REPO, 'bin/authproxy.js'), 'help'], { env: { ...process.env, NODE_DEBUG_NATIVE: 'COMPILE_CACHE' } },
      (err, _stdout, stderr) => (err ? reject(err) : resolve(stderr)));
  });
}

test('a second start takes the stripped TypeScript from the checkout\'s compile cache instead of stripping again', async () => {
  await runLauncher();
  const log = await runLauncher();
  const cacheDir = join(REPO, 'node_modules/.cache/authproxy-compile');
  assert.match(log, new RegExp(`reading cache from ${cacheDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/\\S+ for StrippedTypeScript file://\\S+/src/cli/main\\.ts\\.\\.\\.\\[[^\\]]*\\]\\.\\.\\. success`));
  assert.match(log, /retrieving transpile cache for StrippedTypeScript file:\/\/\S+\/src\/cli\/main\.ts\.\.\.success/);
});
