// The benchmark's flame graph: the profile's busy samples as a call tree (idle left out, one box
// per function under a caller, tiny frames dropped), drawn with each box as wide as its time.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { summarizeProfile, type FlameNode } from '../../bench/lib/profile.ts';
import { flameGraph } from '../../bench/lib/flame.ts';

const frame = (functionName: string, url: string) => ({ functionName, url, lineNumber: 0 });
// root → handle (twice, from two call sites) → read / writev; an idle node; a frame sampled for 1 µs.
const PROFILE = {
  nodes: [
    { id: 1, callFrame: frame('(root)', ''), children: [2, 5, 7, 8] },
    { id: 2, callFrame: frame('handle', 'file:///repo/src/inbound/handler.ts'), children: [3] },
    { id: 3, callFrame: frame('read', 'node:internal/streams/readable'), children: [] },
    { id: 5, callFrame: frame('handle', 'file:///repo/src/inbound/handler.ts'), children: [6] },
    { id: 6, callFrame: frame('writev', ''), children: [] },
    { id: 7, callFrame: frame('(idle)', ''), children: [] },
    { id: 8, callFrame: frame('blip', 'node:internal/timers'), children: [] },
  ],
  samples: [2, 2, 3, 3, 3, 5, 6, 6, 7, 7, 8],
  timeDeltas: [1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1],
  startTime: 0, endTime: 11_000,
};

async function flameOf(profile: unknown): Promise<FlameNode> {
  const dir = await mkdtemp(join(tmpdir(), 'authproxy-flame-'));
  try {
    await writeFile(join(dir, 'p.cpuprofile'), JSON.stringify(profile));
    const s = await summarizeProfile(join(dir, 'p.cpuprofile'));
    assert.ok(s.flame);
    return s.flame;
  } finally { await rm(dir, { recursive: true, force: true }); }
}

const shape = (n: FlameNode): unknown => ({ name: n.name.split(' ')[0], ms: Math.round(n.ms * 1000) / 1000, children: n.children.map(shape) });

it('builds the flame tree from busy samples: one box per function under a caller, idle and sub-0.2% frames left out', async () => {
  const flame = await flameOf(PROFILE);
  assert.deepEqual(shape(flame), {
    // The root counts every busy sample, the dropped 1 µs one too; its box is simply not drawn.
    name: 'all', ms: 8.001, children: [
      { name: 'handle', ms: 8, children: [{ name: 'read', ms: 3, children: [] }, { name: 'writev', ms: 2, children: [] }] },
    ],
  });
  assert.equal(flame.children[0]!.area, 'authproxy src/inbound');
});

it('draws each box as wide as its share of the busy time, with the figures in its tooltip', async () => {
  const svg = flameGraph(await flameOf(PROFILE), 'test <profile>');
  const box = (name: string): { title: string; width: number } => {
    const m = new RegExp(`<title>(${name} [^<]*)</title><rect [^>]*width="([\\d.]+)"`).exec(svg);
    assert.ok(m, `a box for ${name}`);
    return { title: m[1]!, width: Number(m[2]) };
  };
  const all = box('all \\(busy\\)').width;
  const near = (name: string, share: number): void => {
    const w = box(name).width;
    assert.ok(Math.abs(w - all * share) < 0.02, `${name}: ${w} against ${all * share}`);
  };
  near('handle', 8 / 8.001);
  near('read', 3 / 8.001);
  near('writev', 2 / 8.001);
  assert.match(box('read').title, /read node:internal\/streams\/readable:1 \(node: streams\): 3\.0 ms, 37\.5% of busy/);
  assert.doesNotMatch(svg, /blip|idle/);
  assert.match(svg, /test &lt;profile&gt;/, 'the title is escaped');
});
