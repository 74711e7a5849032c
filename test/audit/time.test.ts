import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isoTime } from '../../src/audit/time.ts';

describe('audit timestamps', () => {
  it('formats every millisecond exactly as Date#toISOString does, across second, minute, day and year rollovers', () => {
    const starts = [
      Date.UTC(2026, 10, 24, 3, 59, 59, 990), // into a new hour
      Date.UTC(2026, 11, 31, 23, 59, 59, 995), // into a new year
      Date.UTC(2028, 1, 28, 23, 59, 59, 998), // leap day
      0, // the epoch
      Date.UTC(9999, 11, 31, 23, 59, 59, 999), // into year 10000, where the year grows a sign
    ];
    for (const start of starts) {
      for (let t = start - 1500; t <= start + 1500; t++) assert.equal(isoTime(t), new Date(t).toISOString(), `at ${t}`);
    }
  });

  it('gives the right time when calls go back and forth between seconds', () => {
    const a = Date.UTC(2026, 10, 24, 1, 2, 3, 4);
    const b = a + 61_000;
    for (const t of [a, b, a + 1, b + 7, a + 999, a + 1000]) assert.equal(isoTime(t), new Date(t).toISOString());
  });
});
