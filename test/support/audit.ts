// Reading the sidecar's audit log in tests. Records are written asynchronously (never on the
// response's critical path), so a test polls for the line it expects instead of reading once.
import { readFile } from 'node:fs/promises';
import { wholeJsonLines } from './json-lines.ts';

export type AuditLine = Record<string, unknown>;

export async function auditLines(file: string): Promise<AuditLine[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return wholeJsonLines(text);
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
