// `authproxy audit verify`: checks an audit log's seals (audit/seal.ts, audit/verify.ts).
// Exit codes: 0 every seal verified and every sealed line is as written, 1 a problem, 2 usage.
import { parseArgs } from 'node:util';
import { readFile } from 'node:fs/promises';
import { splitPemCertificates } from '../identity/material.ts';
import { verifyAuditFiles, type VerifyReport } from '../audit/verify.ts';

const USAGE = `usage: authproxy audit verify --ca BUNDLE [--ca BUNDLE] [--json] FILE [FILE...]

  verify FILE...   check the log's seals: every line between two seals is as the later seal
                   says, every seal is signed by a workload certificate that chains to --ca and
                   follows the seal before it. Give rotated files oldest first (audit.log.2
                   audit.log.1 audit.log). Exit 1 when a line was changed, removed, added or
                   reordered, or a seal was altered, removed or forged
    --ca BUNDLE    the CA certificates the signing sidecars' certificates chain to (PEM)
    --json         the whole report as JSON`;

export async function auditCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === '-h' || sub === '--help' || sub === 'help') { console.log(USAGE); return 0; }
  if (sub !== 'verify') {
    console.error(sub === undefined ? USAGE : `authproxy audit: unknown subcommand '${sub}'\n\n${USAGE}`);
    return 2;
  }
  let values: { ca?: string[]; json?: boolean; help?: boolean }; let files: string[];
  try {
    ({ values, positionals: files } = parseArgs({ args: rest, allowPositionals: true, options: {
      ca: { type: 'string', multiple: true }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    } }));
  } catch (e) {
    console.error(`authproxy audit verify: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) { console.log(USAGE); return 0; }
  if (!values.ca?.length || files.length === 0) {
    console.error(`authproxy audit verify: ${files.length === 0 ? 'no log file given' : '--ca is required: without it a forged seal, signed by any key, would verify'}\n\n${USAGE}`);
    return 2;
  }
  const cas = [];
  for (const file of values.ca) {
    let pem: string;
    try { pem = await readFile(file, 'utf8'); } catch (e) {
      console.error(`authproxy audit verify: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
      return 2;
    }
    cas.push(...splitPemCertificates(pem, file));
  }
  let report: VerifyReport;
  try { report = await verifyAuditFiles(files, cas); } catch (e) {
    console.error(`authproxy audit verify: cannot read ${(e as NodeJS.ErrnoException).path ?? 'a file'}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    return 2;
  }
  console.log(values.json ? JSON.stringify(report, null, 2) : format(report));
  return report.problems.length ? 1 : 0;
}

const n = (x: number): string => x.toLocaleString('en-US');

function format(r: VerifyReport): string {
  const out: string[] = [];
  for (const f of r.files) {
    out.push(`${f.file}: ${n(f.lines)} lines, ${n(f.sealed)} sealed by ${n(f.seals)} seal${f.seals === 1 ? '' : 's'}${f.unsealed ? `, ${n(f.unsealed)} after the last seal` : ''}`
      + `${f.skipped ? `, ${n(f.skipped)} not audit lines (the sidecar's operational log, other text), skipped` : ''}`);
  }
  for (const c of r.chains) {
    const end = c.end === 'close' ? 'closed by the sidecar' : c.end === 'rotate' ? 'last seal ends a rotated file' : 'no closing seal (still running, killed, or cut)';
    const start = c.firstSeq > 0 ? '' : c.linked ? ', follows the run before it' : ', starts unlinked (a new file, or stdout)';
    out.push(`chain ${c.chain}: seals ${c.firstSeq}–${c.lastSeq}${start}, signed by ${c.principals.join(', ') || '(no verified seal)'}; ${end}`);
  }
  out.push(`records the sidecar reported dropped: ${n(r.dropped)}, lost to write errors: ${n(r.lost)}`);
  for (const note of r.notes) out.push(`note: ${note}`);
  for (const p of r.problems) out.push(`PROBLEM ${p.file}:${p.line}: ${p.problem}`);
  const sealed = r.files.reduce((a, f) => a + f.sealed, 0);
  out.push(r.problems.length
    ? `${n(r.problems.length)} problem${r.problems.length === 1 ? '' : 's'}: the log is not as its seals say`
    : `verified: ${n(sealed)} sealed lines are as the sidecar wrote them, and every seal follows the one before it`);
  return out.join('\n');
}
