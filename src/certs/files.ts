// Writing generated material: all outputs of a command appear together or not at all, a key is
// 0600 from the moment it exists, and an existing file is never replaced unless asked to.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { copyFile, link, lstat, mkdir, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export interface OutputFile {
  path: string;
  data: string | Uint8Array;
  /** Private keys and PKCS#12 bundles: written 0600. Everything else 0644. */
  secret: boolean;
}

/** A refusal about files that the CLI reports as a one-line message (exit 1). */
export class OutputExistsError extends Error {
  readonly path: string;
  constructor(path: string) {
    super(`${path} already exists (use --force to replace it)`);
    this.name = 'OutputExistsError';
    this.path = path;
  }
}

async function exists(path: string): Promise<boolean> {
  try { await lstat(path); return true; } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

/** Throws OutputExistsError for the first path that exists (unless force). Cheap pre-check before any key is generated. */
export async function assertWritable(paths: readonly string[], force: boolean): Promise<void> {
  if (force) return;
  for (const p of paths) if (await exists(p)) throw new OutputExistsError(p);
}

/**
 * Write every file or none. Each file is first written in full to a temporary sibling, then
 * moved into place: without `force` by hard link, which fails atomically if the name was taken
 * in the meantime; with `force` by rename. If any step fails, what this call created is removed.
 */
export async function writeOutputs(files: readonly OutputFile[], opts: { force: boolean }): Promise<void> {
  await assertWritable(files.map((f) => f.path), opts.force);
  const temps: string[] = [];
  const placed: string[] = [];
  try {
    for (const f of files) {
      await mkdir(dirname(f.path), { recursive: true });
      const tmp = join(dirname(f.path), `.${basename(f.path)}.${randomBytes(6).toString('hex')}.tmp`);
      const fh = await open(tmp, 'wx', f.secret ? 0o600 : 0o644);
      temps.push(tmp);
      try {
        await fh.writeFile(f.data);
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
    for (const [i, f] of files.entries()) {
      const tmp = temps[i]!;
      if (opts.force) {
        await rename(tmp, f.path);
        temps[i] = '';
      } else {
        await placeExclusive(tmp, f.path);
      }
      placed.push(f.path);
    }
  } catch (e) {
    // Replaced files (--force) cannot be restored; files this call created can be taken back.
    if (!opts.force) await Promise.all(placed.map((p) => unlink(p).catch(() => undefined)));
    throw e;
  } finally {
    await Promise.all(temps.filter(Boolean).map((t) => unlink(t).catch(() => undefined)));
  }
}

async function placeExclusive(tmp: string, path: string): Promise<void> {
  try {
    await link(tmp, path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new OutputExistsError(path);
    // Some filesystems have no hard links; an exclusive copy keeps the no-clobber guarantee.
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EXDEV') throw e;
    try {
      await copyFile(tmp, path, constants.COPYFILE_EXCL);
    } catch (e2) {
      if ((e2 as NodeJS.ErrnoException).code === 'EEXIST') throw new OutputExistsError(path);
      throw e2;
    }
  }
}
