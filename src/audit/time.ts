// Audit timestamps: ISO 8601 in UTC with milliseconds, exactly as Date#toISOString writes them.
//
// Formatting a Date for every record took a median 7.6–7.9 µs of the 66–81 the inbound handler
// spends before a request can go to the app (timed in the process at 500 req/s, the app on the
// same core, so every request starts on cold caches; bench/FINDINGS.md, "The request's way in").
// Within one second only the milliseconds change, so the rest is formatted once a second.
let cachedSecond = Number.NaN;
let cachedPrefix = '';

/** `YYYY-MM-DDTHH:MM:SS.mmmZ` for an epoch time in whole milliseconds (Date.now()). */
export function isoTime(epochMs: number): string {
  const second = Math.floor(epochMs / 1000);
  if (second !== cachedSecond) {
    const whole = new Date(second * 1000).toISOString();
    // Drop '000Z'; what is left ends with the '.' before the milliseconds (also past year 9999).
    cachedPrefix = whole.slice(0, -4);
    cachedSecond = second;
  }
  const ms = epochMs - second * 1000;
  return cachedPrefix + (ms < 10 ? '00' : ms < 100 ? '0' : '') + ms + 'Z';
}
