import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OutputExistsError, writeOutputs } from '../../src/certs/files.ts';
import { scratch } from './helpers.ts';

test('writeOutputs writes nothing, and leaves no temporary file, when any target exists', async () => {
  const { dir, cleanup } = await scratch();
  try {
    await writeFile(join(dir, 'b.key'), 'old');
    await assert.rejects(writeOutputs([
      { path: join(dir, 'a.crt'), data: 'cert', secret: false },
      { path: join(dir, 'b.key'), data: 'key', secret: true },
    ], { force: false }), OutputExistsError);
    assert.deepEqual(await readdir(dir), ['b.key']);
    assert.equal(await readFile(join(dir, 'b.key'), 'utf8'), 'old');
  } finally { await cleanup(); }
});

test('writeOutputs with force replaces a world-readable key with a 0600 one', async () => {
  const { dir, cleanup } = await scratch();
  try {
    await writeFile(join(dir, 'k.key'), 'old');
    await chmod(join(dir, 'k.key'), 0o644);
    await writeOutputs([{ path: join(dir, 'k.key'), data: 'new', secret: true }], { force: true });
    assert.equal(await readFile(join(dir, 'k.key'), 'utf8'), 'new');
    assert.equal((await stat(join(dir, 'k.key'))).mode & 0o777, 0o600);
    assert.deepEqual(await readdir(dir), ['k.key']);
  } finally { await cleanup(); }
});

test('writeOutputs creates missing parent directories', async () => {
  const { dir, cleanup } = await scratch();
  try {
    await writeOutputs([{ path: join(dir, 'x/y/z.crt'), data: 'c', secret: false }], { force: false });
    assert.equal(await readFile(join(dir, 'x/y/z.crt'), 'utf8'), 'c');
  } finally { await cleanup(); }
});
