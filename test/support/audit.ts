// Reading the sidecar's audit log in tests. Records are written asynchronously (never on the
// response's critical path), so a test polls for the line it expects instead of reading once.
// `auditLines` gives the records; the seal lines between them (src/audit/seal.ts) are `sealLines`.
import { readFile } from 'node:fs/promises';
import { wholeJsonLines } from './json-lines.ts';

export type AuditLine = Record<string, unknown>;

const isSeal = (l: AuditLine): boolean => l.event === 'seal';

export async function auditLines(file: string): Promise<AuditLine[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return wholeJsonLines(text).filter((l) => !isSeal(l));
}

export async function sealLines(file: string): Promise<AuditLine[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return wholeJsonLines(text).filter(isSeal);
}

export async function waitForAuditLine(file: string, match: (l: AuditLine) => boolean, timeoutMs = 2000): Promise<AuditLine | undefined> {
  const deadline = Date.now() + timeoutMs;
  do {
    const line = (await auditLines(file)).find(match);
    if (line) return line;
    await new Promise((r) => setTimeout(r, 20));
  } while (Date.now() < deadline);
  return undefined;
}
