// RFC 6902 JSON Patch from two JSON values: what the webhook returns to the API server, and what
// `authproxy inject` replays on the YAML documents. Small on purpose: objects are diffed key by
// key, arrays element by element when the lengths match, pure insertions become `add` at an index,
// anything else replaces the array whole (always correct, just less minimal).

export type PatchOp =
  | { op: 'add'; path: string; value: unknown }
  | { op: 'replace'; path: string; value: unknown }
  | { op: 'remove'; path: string };

/** RFC 6901: `~` and `/` inside a key are escaped. */
export function pointer(tokens: readonly (string | number)[]): string {
  return tokens.map((t) => '/' + String(t).replaceAll('~', '~0').replaceAll('/', '~1')).join('');
}

export function parsePointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new Error(`JSON pointer '${path}' must start with /`);
  return path.slice(1).split('/').map((t) => t.replaceAll('~1', '/').replaceAll('~0', '~'));
}

export function createPatch(before: unknown, after: unknown): PatchOp[] {
  const ops: PatchOp[] = [];
  diff(before, after, [], ops);
  return ops;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (isPlainObject(a) && isPlainObject(b)) {
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k]));
  }
  return false;
}

function diff(a: unknown, b: unknown, at: (string | number)[], ops: PatchOp[]): void {
  if (deepEqual(a, b)) return;
  if (isPlainObject(a) && isPlainObject(b)) {
    for (const k of Object.keys(a)) {
      if (a[k] !== undefined && (!Object.hasOwn(b, k) || b[k] === undefined)) ops.push({ op: 'remove', path: pointer([...at, k]) });
    }
    for (const k of Object.keys(b)) {
      if (b[k] === undefined) continue;
      if (!Object.hasOwn(a, k) || a[k] === undefined) ops.push({ op: 'add', path: pointer([...at, k]), value: b[k] });
      else diff(a[k], b[k], [...at, k], ops);
    }
    return;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length === b.length) {
      a.forEach((x, i) => diff(x, b[i], [...at, i], ops));
      return;
    }
    const inserted = insertions(a, b);
    if (inserted) {
      // Indexes are ascending positions in the final array, so applying in order is exact.
      for (const i of inserted) ops.push({ op: 'add', path: pointer([...at, i]), value: b[i] });
      return;
    }
  }
  ops.push({ op: 'replace', path: pointer(at), value: b });
}

/** If `b` is `a` with elements inserted (order kept), the indexes in `b` of the inserted ones. */
function insertions(a: unknown[], b: unknown[]): number[] | null {
  if (b.length <= a.length) return null;
  const added: number[] = [];
  let i = 0;
  for (let j = 0; j < b.length; j++) {
    if (i < a.length && deepEqual(a[i], b[j])) i++;
    else added.push(j);
  }
  return i === a.length ? added : null;
}
