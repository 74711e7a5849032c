// Noticing that files changed. fs.watch is fast but lossy (editors write-and-rename, Kubernetes
// swaps a `..data` symlink, some filesystems send nothing), so each watched parent directory is
// also polled: a change in size, mtime or inode of any watched path fires the same callback.
// Callbacks are debounced so a rotation that rewrites cert and key fires once.
import { watch, statSync, type FSWatcher } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';

export interface Watch { close(): void }

export function watchPaths(paths: readonly string[], intervalMs: number, onChange: () => void, debounceMs = 150): Watch {
  let timer: NodeJS.Timeout | null = null;
  const fire = (): void => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => { timer = null; onChange(); }, debounceMs);
  };

  const watchers: FSWatcher[] = [];
  // Files are watched through their parent directory (a rename-over or a Kubernetes `..data`
  // swap replaces the file itself); a directory is watched itself, never its parent, where
  // unrelated writes (a log file next to the policies) would fire reloads for nothing.
  const targets = new Set<string>();
  for (const p of paths) { targets.add(p); if (!isDirectorySync(p)) targets.add(dirname(p)); }
  for (const dir of targets) {
    try {
      const w = watch(dir, { persistent: false }, fire);
      w.on('error', () => { /* the directory may vanish mid-rotation; polling still covers it */ });
      watchers.push(w);
    } catch { /* not watchable (missing, or a file whose parent we already watch): polling covers it */ }
  }

  let last = '';
  let polling = false;
  const signature = async (): Promise<string> => {
    const one = async (p: string): Promise<string> => {
      try {
        const s = await stat(p);
        // A directory (the policies dir) changes when any file in it changes, not only its own mtime.
        if (s.isDirectory()) return (await Promise.all((await readdir(p)).sort().map((e) => one(join(p, e))))).join(',');
        return `${p}:${s.ino}:${s.size}:${s.mtimeMs}`;
      } catch { return `${p}:missing`; }
    };
    return (await Promise.all(paths.map(one))).join('|');
  };
  void signature().then((s) => { last = s; });
  const poll = setInterval(() => {
    if (polling) return;
    polling = true;
    signature().then((s) => { if (s !== last) { last = s; fire(); } }, () => {}).finally(() => { polling = false; });
  }, intervalMs);
  poll.unref();

  return {
    close(): void {
      clearInterval(poll);
      if (timer) clearTimeout(timer);
      for (const w of watchers) w.close();
    },
  };
}

/** Start-up only (once per watched path), never on the request path. */
function isDirectorySync(p: string): boolean {
  try { return statSync(p).isDirectory(); } catch { return false; }
}
