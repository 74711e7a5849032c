// Durations in config are written the way operators write them in Kubernetes: 500ms, 30s, 15m, 1h.
import { ConfigError } from '../errors.ts';
import { flagName } from './flag-name.ts';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function parseDuration(value: string | number, field: string): number {
  // A bare number has no unit to read it by: `drainTimeout: 5000` was taken as seconds (83 minutes)
  // by the config file while the flag refused it. Only 0 means the same in every unit.
  if (value === 0 || value === '0') return 0;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(String(value).trim());
  if (!m) {
    const bare = typeof value === 'number' || /^\d+(?:\.\d+)?$/.test(String(value).trim());
    throw new ConfigError(`'${String(value)}' is not a duration like 500ms, 30s, 15m, 1h${bare ? ' (a number needs its unit)' : ''}`, { field });
  }
  return Math.round(Number(m[1]) * UNIT_MS[m[2]!]!);
}

/**
 * The largest size accepted: 1 TiB. Past it a size is a typo, not a limit. It must also stay well
 * under 2^53 - 1, the largest maxHeaderSize node:http accepts (and the largest integer a number
 * holds exactly): '99999999999g' used to pass here and make node:http throw a RangeError in the
 * middle of start-up, after the admin and inbound listeners were already open.
 */
export const MAX_BYTES = 1024 ** 4;

/** Byte sizes: a number, or with a k/m/g suffix (powers of 1024), e.g. 64k; at most MAX_BYTES. */
export function parseBytes(value: string | number, field: string): number {
  let n: number;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0) n = value;
  else {
    const m = /^(\d+)\s*([kmg]i?b?)?$/i.exec(String(value).trim());
    if (!m) throw new ConfigError(`'${String(value)}' is not a size like 65536 or 64k`, { field });
    const mult = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(m[2]?.[0] ?? '').toLowerCase()] ?? 1;
    n = Number(m[1]) * mult;
  }
  if (n > MAX_BYTES) {
    throw new ConfigError(`'${String(value)}' is larger than the largest size accepted, 1024g (1 TiB) (${flagName(field)})`, { field });
  }
  return n;
}
