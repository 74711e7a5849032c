import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Agent, Pool } from '../../src/forward/undici.ts';

test('the forwarding classes loaded from their own modules are the ones undici exports', async () => {
  const undici = await import('undici');
  assert.equal(Pool, undici.Pool);
  assert.equal(Agent, undici.Agent);
});

test('loading the forwarding classes does not load the rest of undici (fetch, WebSocket, mocks)', () => {
  const module = fileURLToPath(new URL('../../src/forward/undici.ts', import.meta.url));
  const script = `import(${JSON.stringify(module)}).then(() => {
    const loaded = Object.keys(require.cache).filter((f) => f.includes('/node_modules/undici/'));
    console.log(JSON.stringify(loaded));
  });`;
  const out = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  assert.equal(out.status, 0, out.stderr);
  const loaded = JSON.parse(out.stdout) as string[];
  assert.ok(loaded.some((f) => f.endsWith('/lib/dispatcher/pool.js')), 'the pool module is loaded');
  for (const part of ['/lib/web/fetch/', '/lib/web/websocket/', '/lib/mock/', '/lib/cache/']) {
    assert.ok(!loaded.some((f) => f.includes(part)), `${part} stays unloaded`);
  }
});
