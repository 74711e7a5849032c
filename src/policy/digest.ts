// The policy digest ties an audit line to the exact files that decided it. It is the SHA-256
// (hex) of `sha256sum`'s output over the loaded files in byte order of their names, so a
// reviewer can reproduce it with standard tools, without authproxy:
//
//   cd DIR && ls | grep -E '\.ya?ml$' | grep -v '^\.' | LC_ALL=C sort | xargs sha256sum | sha256sum
//
// It covers file names and bytes (comments included), not the directory's location. An empty
// set (no files) has the digest of empty input, e3b0c442…b855.
import { createHash } from 'node:crypto';

export interface PolicySource {
  /** File name inside the policy directory (no directory part). */
  readonly name: string;
  readonly bytes: Uint8Array;
}

export function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export function policyDigest(sources: readonly PolicySource[]): string {
  const outer = createHash('sha256');
  for (const source of [...sources].sort((a, b) => compareNames(a.name, b.name))) {
    const inner = createHash('sha256').update(source.bytes).digest('hex');
    outer.update(`${inner}  ${source.name}\n`);
  }
  return outer.digest('hex');
}
