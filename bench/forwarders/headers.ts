// The same header handling for both forwarders, so the comparison is the forwarding library alone.
import { HOP_BY_HOP } from '../../src/http/hop-by-hop.ts';

/** Request headers minus hop-by-hop, as the flat [name, value, …] list both libraries accept. */
export function passHeaders(raw: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (!HOP_BY_HOP.has(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!);
  return out;
}

export function responseHeaders(raw: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (!HOP_BY_HOP.has(name)) out[name] = raw[i + 1]!;
  }
  return out;
}
