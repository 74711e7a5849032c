// `authproxy policy`: offline work on policy documents. `check` loads a directory exactly as the
// sidecar does and prints what it would enforce, with the digest the audit log will carry.
// Exit codes: 0 valid, 1 refused (every problem printed), 2 usage error or not implemented.
import { parseArgs } from 'node:util';
import { ConfigError } from '../errors.ts';
import { loadPolicyDir, PolicySetError } from '../policy/load.ts';
import { POLICY_KINDS } from '../policy/kinds.ts';
import type { PolicySet } from '../policy/types.ts';
import { explainInbound, explainOutbound, formatInbound, formatOutbound, type InboundQuestion } from '../policy/explain.ts';
import { loadCases, runCases } from '../policy/cases.ts';
import { parseDuration } from '../config/duration.ts';
import { replayLog, type ReplaySummary } from '../policy/replay.ts';
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';

const USAGE = `usage: authproxy policy check DIR
       authproxy policy explain DIR (--from PRINCIPAL | --source IP) --request 'METHOD TARGET' [token flags] [--json]
       authproxy policy explain DIR --to http://HOST[:PORT]/PATH [--json]
       authproxy policy test DIR CASES.yaml
       authproxy policy replay DIR AUDIT.log [--json]

  check DIR     validate every *.yaml / *.yml in DIR (not recursive) as one policy set;
                print a summary and the policy digest (exit 0) or every problem (exit 1)
  explain DIR   what the sidecar would do with one inbound request, and which rule decides:
                  --from PRINCIPAL          caller identity (SPIFFE ID, DNS SAN or CN) over mTLS
                  --source IP               or a plaintext caller's source address (its boundary decides)
                  --request 'GET /path'     method and request target
                  --roles A,B               the caller presents a valid token with these roles
                  --token-age 5m            issued this long ago (default 0s)
                  --token-lifetime 15m      living this long (default 1h)
                  --json                    machine-readable answer
                or, for the app's outbound calls:
                  --to URL                  which route, trust boundary, TLS mode and token
                exit 0 when allowed, 1 when refused
  test DIR CASES.yaml
                run a table of cases (see docs/policy.md); prints each result and
                'N passed, N failed'; exit 1 when any case fails
  replay DIR AUDIT.log
                ask DIR's policy set again every decision an audit log records, and compare
                decision and rule (inbound) or route (outbound); exit 1 when one differs or a
                line cannot be read`;

export async function policyCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === '-h' || sub === '--help' || sub === 'help') {
    console.log(USAGE);
    return 0;
  }
  if (sub === 'explain') return explainCommand(rest);
  if (sub === 'test') return testCommand(rest);
  if (sub === 'replay') return replayCommand(rest);
  if (sub !== 'check') {
    console.error(sub === undefined ? USAGE : `authproxy policy: unknown subcommand '${sub}'\n\n${USAGE}`);
    return 2;
  }

  let parsed: { positionals: string[]; values: { help?: boolean | undefined } };
  try {
    parsed = parseArgs({ args: rest, allowPositionals: true, options: { help: { type: 'boolean', short: 'h' } } });
  } catch (e) {
    console.error(`authproxy policy check: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { positionals } = parsed;
  if (parsed.values.help === true) {
    console.log(USAGE);
    return 0;
  }
  const [dir, ...extra] = positionals;
  if (dir === undefined || extra.length > 0) {
    console.error(`authproxy policy check: expected exactly one directory\n\n${USAGE}`);
    return 2;
  }

  const set = await loadOrReport(dir);
  if (!set) return 1;
  console.log(summary(dir, set));
  return 0;
}

async function loadOrReport(dir: string): Promise<PolicySet | null> {
  try {
    return await loadPolicyDir(dir);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    const problems = e instanceof PolicySetError ? e.problems : [e];
    console.error(`policy set in ${dir} refused (${problems.length} ${problems.length === 1 ? 'problem' : 'problems'}):`);
    for (const p of problems) console.error(`  ${p.message}`);
    return null;
  }
}

async function explainCommand(argv: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>; let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: {
      from: { type: 'string' }, source: { type: 'string' }, request: { type: 'string' }, roles: { type: 'string' },
      'token-age': { type: 'string' }, 'token-lifetime': { type: 'string' }, json: { type: 'boolean' }, to: { type: 'string' },
    } }));
  } catch (e) { console.error(`authproxy policy explain: ${(e as Error).message}\n\n${USAGE}`); return 2; }
  if (typeof values.to === 'string') {
    if (positionals.length !== 1) { console.error(`authproxy policy explain: need DIR\n\n${USAGE}`); return 2; }
    const set = await loadOrReport(positionals[0]!);
    if (!set) return 1;
    let answer;
    try { answer = await explainOutbound(set, values.to); } catch (e) { console.error(`authproxy policy explain: ${(e as Error).message}`); return 2; }
    console.log(values.json ? JSON.stringify(answer, null, 2) : formatOutbound(answer));
    return 0;
  }
  const m = typeof values.request === 'string' ? /^([A-Z]+) (\S+)$/.exec(values.request) : null;
  if (positionals.length !== 1 || !m || (values.from === undefined) === (values.source === undefined)) {
    console.error(`authproxy policy explain: need DIR, --request 'METHOD TARGET' and one of --from or --source\n\n${USAGE}`);
    return 2;
  }
  const q: InboundQuestion = { method: m[1]!, target: m[2]!,
    ...(typeof values.from === 'string' ? { from: values.from } : {}), ...(typeof values.source === 'string' ? { source: values.source } : {}) };
  try {
    if (values.roles !== undefined || values['token-age'] !== undefined || values['token-lifetime'] !== undefined) {
      const now = Math.floor(Date.now() / 1000);
      const age = parseDuration(String(values['token-age'] ?? '0s'), 'token-age') / 1000;
      const life = parseDuration(String(values['token-lifetime'] ?? '1h'), 'token-lifetime') / 1000;
      q.token = { roles: String(values.roles ?? '').split(',').filter(Boolean), iat: now - age, exp: now - age + life };
    }
  } catch (e) { console.error(`authproxy policy explain: ${(e as Error).message}`); return 2; }
  const set = await loadOrReport(positionals[0]!);
  if (!set) return 1;
  const answer = explainInbound(set, q);
  console.log(values.json ? JSON.stringify(answer, null, 2) : formatInbound(q, answer));
  return answer.allow ? 0 : 1;
}

async function testCommand(argv: string[]): Promise<number> {
  const [dir, casesFile, ...extra] = argv;
  if (!dir || !casesFile || extra.length) { console.error(`authproxy policy test: need DIR and CASES.yaml\n\n${USAGE}`); return 2; }
  const set = await loadOrReport(dir);
  if (!set) return 1;
  let cases;
  try { cases = await loadCases(casesFile); } catch (e) {
    if (e instanceof ConfigError) { console.error(`authproxy policy test: ${e.message}`); return 1; }
    throw e;
  }
  const results = runCases(set, cases);
  for (const r of results) console.log(r.ok ? `ok    ${r.case.name}` : `FAIL  ${r.case.name}: ${r.why}`);
  const failed = results.filter((r) => !r.ok).length;
  console.log(`${results.length - failed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

async function replayCommand(argv: string[]): Promise<number> {
  let values: { json?: boolean | undefined }; let positionals: string[];
  try { ({ values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { json: { type: 'boolean' } } })); } catch (e) {
    console.error(`authproxy policy replay: ${(e as Error).message}\n\n${USAGE}`); return 2;
  }
  const [dir, log, ...extra] = positionals;
  if (!dir || !log || extra.length) { console.error(`authproxy policy replay: need DIR and AUDIT.log\n\n${USAGE}`); return 2; }
  const set = await loadOrReport(dir);
  if (!set) return 1;
  let s: ReplaySummary;
  try {
    s = await replayLog(set, createInterface({ input: createReadStream(log), crlfDelay: Infinity }));
  } catch (e) { console.error(`authproxy policy replay: cannot read ${log}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`); return 2; }
  console.log(values.json ? JSON.stringify({ policyDigest: set.digest, ...s }, null, 2) : formatReplay(log, dir, set, s));
  return s.counts.mismatch > 0 || s.counts.unreadable > 0 ? 1 : 0;
}

function formatReplay(log: string, dir: string, set: PolicySet, s: ReplaySummary): string {
  const n = (k: keyof ReplaySummary['counts']): string => String(s.counts[k]).padStart(7);
  const list = (m: Record<string, number>): string => Object.entries(m).map(([k, v]) => `${k} ${v}`).join(', ');
  const lines = [
    `audit log    ${log} (${s.records} records)`,
    `policy set   ${dir} (digest ${set.digest})`,
    `confirmed  ${n('confirmed')}  as this policy set decides them: decision and rule (inbound), route (outbound)`,
    `token      ${n('token')}  allowed by a rule that requires a bearer token: the rule is confirmed, the token's claims are not in the log`,
    `mismatch   ${n('mismatch')}  recorded otherwise than this policy set decides`,
    `other set  ${n('other-set')}  decided by another policy set${s.counts['other-set'] ? `: ${list(s.otherSets)}` : ''}`,
    `not policy ${n('not-policy')}  refused before the policy was asked${s.counts['not-policy'] ? `: ${list(s.notPolicy)}` : ''}`,
    `handshake  ${n('handshake')}  peers refused at the TLS handshake`,
    ...(s.counts.seal ? [`seal lines ${n('seal')}  not decisions; authproxy audit verify checks them`] : []),
    ...(s.counts.log ? [`log lines  ${n('log')}  the sidecar's operational log (kubectl logs interleaves it), not decisions`] : []),
    `unreadable ${n('unreadable')}  lines that are not audit records${s.unreadableLines.length ? ` (lines ${s.unreadableLines.slice(0, 10).join(', ')}${s.unreadableLines.length > 10 ? ', …' : ''})` : ''}`,
  ];
  for (const m of s.mismatches.slice(0, 50)) {
    lines.push(`  line ${m.line}${m.requestId ? ` (request ${m.requestId})` : ''}: recorded ${m.recorded}; this set: ${m.replayed}`);
  }
  if (s.mismatches.length > 50) lines.push(`  … and ${s.mismatches.length - 50} more`);
  return lines.join('\n');
}

function summary(dir: string, set: PolicySet): string {
  const lines = [`policy set in ${dir} is valid: ${set.documents.length} documents in ${set.files.length} files`];
  for (const kind of POLICY_KINDS) {
    const docs = set.documents.filter((d) => d.kind === kind);
    const extra = kind === 'AuthorizationPolicy' ? ` (${set.rules} ${set.rules === 1 ? 'rule' : 'rules'})` : '';
    lines.push(`  ${kind}: ${docs.length}${extra}${docs.length ? `  ${docs.map((d) => d.name).join(', ')}` : ''}`);
  }
  for (const file of set.files) {
    const docs = set.documents.filter((d) => d.file === file);
    lines.push(`  ${file}: ${docs.length ? docs.map((d) => `${d.kind}/${d.name}`).join(', ') : 'no documents'}`);
  }
  if (set.authorizationPolicies === 0) lines.push('  no AuthorizationPolicy: every caller will be allowed');
  lines.push(`  bearer tokens: ${set.requiresToken ? 'required by some rules' : 'not used by any rule'}`);
  lines.push(`digest: ${set.digest}`);
  return lines.join('\n');
}
