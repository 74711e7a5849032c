// Waiting on events in end-to-end tests: the machine is shared and loaded, so tests wait for what
// they expect with generous limits instead of sleeping a fixed time.
import assert from 'node:assert/strict';

/** Resolves once cond() holds; fails the test naming `what` after `timeoutMs`. */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `p`'s value, or a failure naming `what` when it takes longer than `ms`. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`not within ${ms} ms: ${what}`)), ms); });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
