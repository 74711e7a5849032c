// `authproxy run` flags: kebab-case names of the config keys.
import { parseArgs } from 'node:util';
import { ConfigError } from '../errors.ts';
import { RAW_KEYS, isRepeatable, type RawConfig } from './config.ts';
import { flagName } from './flag-name.ts';

export const RUN_FLAGS = RAW_KEYS.map((k) => ({ key: k, flag: flagName(k), multiple: isRepeatable(k) }));

export function parseRunFlags(argv: string[]): { raw: RawConfig; configFile: string | null; help: boolean } {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {
    config: { type: 'string' }, help: { type: 'boolean' },
  };
  for (const f of RUN_FLAGS) options[f.flag.slice(2)] = { type: 'string', ...(f.multiple ? { multiple: true } : {}) };
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({ args: argv, options, allowPositionals: false, strict: true }));
  } catch (e) {
    throw new ConfigError((e as Error).message.replace(/\. To specify.*$/s, ''));
  }
  const raw: RawConfig = {};
  for (const f of RUN_FLAGS) {
    const v = values[f.flag.slice(2)];
    if (v !== undefined) raw[f.key] = v;
  }
  return { raw, configFile: (values.config as string | undefined) ?? null, help: Boolean(values.help) };
}
