// The benchmark's round orders (bench/run.ts roundOrders): every round visits every path once,
// the same orders in every run, and no path always runs right after the same neighbour.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { roundOrders } from '../../bench/run.ts';

describe('benchmark round orders', () => {
  const orders = roundOrders(9, 4);

  it('visits every path once a round, the first round in the listed order', () => {
    assert.equal(orders.length, 4);
    for (const o of orders) assert.deepEqual([...o].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual(orders[0], [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('gives the same orders in every run', () => {
    assert.deepEqual(roundOrders(9, 4), orders);
  });

  it('does not run any path after the same neighbour in every round, as rotating the list did', () => {
    for (let path = 0; path < 9; path++) {
      const before = new Set(orders.map((o) => o[o.indexOf(path) - 1] ?? -1));
      assert.ok(before.size > 1, `path ${path} always followed ${[...before][0]}`);
    }
  });
});
