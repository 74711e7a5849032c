// The numbers the report is built from: exact nearest-rank percentiles, and a chart that draws
// one line per path at the values given.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { percentile, summarize, median } from '../../bench/lib/stats.ts';
import { latencyChart } from '../../bench/lib/svg.ts';
import { areaOf } from '../../bench/lib/profile.ts';

describe('benchmark statistics', () => {
  it('takes nearest-rank percentiles, so p99.9 of 1000 samples is the 999th smallest', () => {
    const s = Float64Array.from({ length: 1000 }, (_, i) => 1000 - i); // unsorted: 1000..1
    const r = summarize(s);
    assert.equal(r.p50, 500);
    assert.equal(r.p90, 900);
    assert.equal(r.p99, 990);
    assert.equal(r.p999, 999);
    assert.equal(r.max, 1000);
    assert.equal(r.count, 1000);
    assert.equal(percentile(Float64Array.from([7]), 99.9), 7);
    assert.ok(Number.isNaN(percentile(new Float64Array(0), 50)));
  });

  it('takes the median of an even count as the mean of the middle two', () => {
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.equal(median([5, 1, 3]), 3);
  });

  it('draws one labelled polyline with four points per path, escaping labels', () => {
    const lat = (p50: number) => ({ count: 1, p50, p90: p50 * 2, p99: p50 * 4, p999: p50 * 8, max: p50 * 9, mean: p50 });
    const svg = latencyChart([{ label: 'direct', latency: lat(0.3) }, { label: 'a <b> & c', latency: lat(0.6) }], 'title');
    assert.equal(svg.match(/<polyline /g)?.length, 2);
    assert.equal(svg.match(/<circle /g)?.length, 8);
    assert.ok(svg.includes('data-series="a &lt;b&gt; &amp; c"'));
    assert.ok(!svg.includes('<b>'));
  });

  it('sorts profile frames into the areas the report groups by', () => {
    assert.equal(areaOf({ functionName: '(garbage collector)', url: '', lineNumber: 0 }), 'GC');
    assert.equal(areaOf({ functionName: 'onread', url: 'file:///x/node_modules/undici/lib/dispatcher/client-h1.js', lineNumber: 1 }), 'undici');
    assert.equal(areaOf({ functionName: 'handle', url: 'file:///work/main/src/inbound/handler.ts', lineNumber: 1 }), 'authproxy src/inbound');
    assert.equal(areaOf({ functionName: 'x', url: 'node:_tls_wrap', lineNumber: 1 }), 'node: TLS');
    assert.equal(areaOf({ functionName: 'x', url: 'node:_http_server', lineNumber: 1 }), 'node: HTTP');
  });
});
