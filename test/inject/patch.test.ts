import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPatch, pointer, parsePointer } from '../../src/inject/patch.ts';
import { applyPatch } from './support/json-patch.ts';

test('applying the patch to the original gives the target, for objects, arrays and scalars', () => {
  const pairs: Array<[unknown, unknown]> = [
    [{ a: 1, b: { c: [1, 2] } }, { a: 2, b: { c: [1, 2, 3] }, d: 'x' }],
    [{ list: [{ n: 'a' }, { n: 'b' }] }, { list: [{ n: 'x' }, { n: 'a' }, { n: 'b' }] }],
    [{ list: [{ n: 'a' }, { n: 'b' }] }, { list: [{ n: 'a', v: 1 }, { n: 'b' }] }],
    [{ list: [1, 2, 3] }, { list: [3, 2] }],
    [{ list: [1, 2, 3] }, { list: [4, 1, 5, 2, 3, 6] }],
    [{ gone: true, kept: null }, { kept: null }],
    [{ x: { y: 1 } }, { x: [1] }],
    [{ 'a/b': { '~c': 1 } }, { 'a/b': { '~c': 2 } }],
  ];
  for (const [a, b] of pairs) assert.deepEqual(applyPatch(a, createPatch(a, b)), b, JSON.stringify([a, b]));
});

test('inserting at the front of a list is one add at index 0, not a rewrite of the list', () => {
  const before = { spec: { initContainers: [{ name: 'migrate' }] } };
  const after = { spec: { initContainers: [{ name: 'authproxy' }, { name: 'migrate' }] } };
  assert.deepEqual(createPatch(before, after), [{ op: 'add', path: '/spec/initContainers/0', value: { name: 'authproxy' } }]);
});

test('equal documents give an empty patch', () => {
  assert.deepEqual(createPatch({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] }), []);
});

test('random documents round-trip through createPatch and an independent applier', () => {
  let seed = 42;
  const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n; };
  const gen = (depth: number): unknown => {
    const k = rnd(depth > 2 ? 3 : 5);
    if (k === 0) return rnd(5);
    if (k === 1) return ['a', 'b', 'c/d', 'e~f'][rnd(4)];
    if (k === 2) return null;
    if (k === 3) return Array.from({ length: rnd(4) }, () => gen(depth + 1));
    return Object.fromEntries(Array.from({ length: rnd(4) }, (_, i) => [['k', 'l', 'm/n', 'o~p'][i]!, gen(depth + 1)]));
  };
  for (let i = 0; i < 300; i++) {
    const a = { root: gen(0) }; const b = { root: gen(0) };
    assert.deepEqual(applyPatch(a, createPatch(a, b)), b);
  }
});

test('JSON pointers escape ~ and / and parse back', () => {
  assert.equal(pointer(['metadata', 'annotations', 'authproxy.dev/injected', 'a~b']), '/metadata/annotations/authproxy.dev~1injected/a~0b');
  assert.deepEqual(parsePointer('/metadata/annotations/authproxy.dev~1injected/a~0b'), ['metadata', 'annotations', 'authproxy.dev/injected', 'a~b']);
});
