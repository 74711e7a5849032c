// Every config key is also a run flag: `maxHeaderBytes` is `--max-header-bytes`. One spelling rule
// for the flag list and for messages that name the flag of a key.
export function flagName(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}
