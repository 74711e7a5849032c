// A minimal RFC 6902 applier, written independently of src/inject/patch.ts (which only produces
// patches), so applying the webhook's patch in tests checks it rather than echoing it.
export interface Op { op: string; path: string; value?: unknown; from?: string }

function tokens(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new Error(`invalid pointer ${path}`);
  return path.slice(1).split('/').map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function arrayIndex(arr: unknown[], token: string, forAdd: boolean): number {
  if (forAdd && token === '-') return arr.length;
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new Error(`invalid array index ${token}`);
  const i = Number(token);
  if (i > arr.length || (!forAdd && i === arr.length)) throw new Error(`index ${i} out of bounds (length ${arr.length})`);
  return i;
}

function parentOf(doc: unknown, path: string): { parent: unknown; key: string } {
  const t = tokens(path);
  const key = t.pop();
  if (key === undefined) throw new Error('root operations are not used here');
  let node = doc;
  for (const k of t) {
    if (Array.isArray(node)) node = node[arrayIndex(node, k, false)];
    else if (node !== null && typeof node === 'object' && Object.hasOwn(node, k)) node = (node as Record<string, unknown>)[k];
    else throw new Error(`path ${path}: ${k} does not exist`);
  }
  if (node === null || typeof node !== 'object') throw new Error(`path ${path}: parent is not a container`);
  return { parent: node, key };
}

export function applyPatch<T>(doc: T, ops: Op[]): T {
  const out = structuredClone(doc);
  for (const op of ops) {
    const { parent, key } = parentOf(out, op.path);
    const arr = Array.isArray(parent) ? parent : null;
    const obj = parent as Record<string, unknown>;
    switch (op.op) {
      case 'add':
        if (arr) arr.splice(arrayIndex(arr, key, true), 0, structuredClone(op.value));
        else obj[key] = structuredClone(op.value);
        break;
      case 'remove':
        if (arr) arr.splice(arrayIndex(arr, key, false), 1);
        else if (Object.hasOwn(obj, key)) delete obj[key];
        else throw new Error(`remove ${op.path}: no such member`);
        break;
      case 'replace':
        if (arr) arr[arrayIndex(arr, key, false)] = structuredClone(op.value);
        else if (Object.hasOwn(obj, key)) obj[key] = structuredClone(op.value);
        else throw new Error(`replace ${op.path}: no such member`);
        break;
      default:
        throw new Error(`operation ${op.op} not supported by this test applier`);
    }
  }
  return out;
}
