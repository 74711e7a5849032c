// `authproxy policy test`: a table of requests and the outcome each must get, run against a
// policy set with the sidecar's own decision code. Lets a policy repository pin its behaviour
// in CI the way unit tests pin code ("ops may reach /admin only with a fresh JIT token").
import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import { ConfigError } from '../errors.ts';
import { parseDuration } from '../config/duration.ts';
import { explainInbound, type InboundAnswer, type InboundQuestion } from './explain.ts';
import type { PolicySet } from './types.ts';

export interface PolicyCase {
  name: string;
  question: InboundQuestion;
  /** `allow`, or the error code expected (forbidden, invalid_token, bad_path, boundary_violation…). */
  expect: string;
  rule: string | undefined;
}

export interface CaseResult { case: PolicyCase; answer: InboundAnswer; ok: boolean; why: string }

const CASE_KEYS = new Set(['name', 'from', 'source', 'request', 'token', 'expect', 'rule']);

export async function loadCases(file: string): Promise<PolicyCase[]> {
  let text: string;
  try { text = await readFile(file, 'utf8'); } catch (e) {
    throw new ConfigError(`cannot read: ${(e as NodeJS.ErrnoException).code ?? 'error'}`, { file });
  }
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length) throw new ConfigError(`not valid YAML: ${doc.errors[0]!.message}`, { file });
  const root = doc.toJS() as { cases?: unknown } | null;
  if (!root || !Array.isArray(root.cases) || root.cases.length === 0) throw new ConfigError('must have a non-empty list `cases`', { file, field: 'cases' });
  return root.cases.map((raw: unknown, i) => parseCase(raw, file, `cases[${i}]`));
}

function parseCase(raw: unknown, file: string, at: string): PolicyCase {
  const fail = (field: string, msg: string): never => { throw new ConfigError(msg, { file, field: `${at}.${field}` }); };
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return fail('', 'must be a mapping');
  const c = raw as Record<string, unknown>;
  for (const k of Object.keys(c)) if (!CASE_KEYS.has(k)) fail(k, `unknown key (known: ${[...CASE_KEYS].join(', ')})`);
  const str = (k: string, required: boolean): string | undefined => {
    const v = c[k];
    if (v === undefined) return required ? fail(k, 'is required') : undefined;
    return typeof v === 'string' && v !== '' ? v : fail(k, 'must be a non-empty string');
  };
  const name = str('name', true)!;
  const from = str('from', false); const source = str('source', false);
  if ((from === undefined) === (source === undefined)) fail('from', 'give exactly one of `from` (a principal) or `source` (a plaintext source address)');
  const request = str('request', true)!;
  const m = /^([A-Z]+) (\S+)$/.exec(request);
  if (!m) fail('request', "must be 'METHOD target', e.g. 'GET /orders/1'");
  const question: InboundQuestion = { method: m![1]!, target: m![2]!, ...(from ? { from } : {}), ...(source ? { source } : {}) };
  if (c.token !== undefined) question.token = parseToken(c.token, (f, msg) => fail(`token.${f}`, msg));
  return { name, question, expect: str('expect', true)!, rule: str('rule', false) };
}

/** `token: { roles: [..], age: 5m, lifetime: 15m }` — a valid token issued `age` ago. */
function parseToken(raw: unknown, fail: (field: string, msg: string) => never): NonNullable<InboundQuestion['token']> {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return fail('', 'must be a mapping with roles, age, lifetime');
  const t = raw as Record<string, unknown>;
  const roles = t.roles ?? [];
  if (!Array.isArray(roles) || !roles.every((r) => typeof r === 'string')) fail('roles', 'must be a list of strings');
  const now = Math.floor(Date.now() / 1000);
  const age = t.age === undefined ? 0 : parseDuration(t.age as string, 'age') / 1000;
  const lifetime = t.lifetime === undefined ? 3600 : parseDuration(t.lifetime as string, 'lifetime') / 1000;
  return { roles: roles as string[], iat: now - age, exp: now - age + lifetime };
}

export function runCases(set: PolicySet, cases: readonly PolicyCase[]): CaseResult[] {
  return cases.map((c) => {
    const answer = explainInbound(set, c.question);
    const got = answer.allow ? 'allow' : answer.code ?? 'deny';
    if (got !== c.expect) return { case: c, answer, ok: false, why: `expected ${c.expect}, got ${got} (${answer.reason})` };
    if (c.rule !== undefined && answer.rule !== c.rule) return { case: c, answer, ok: false, why: `expected rule ${c.rule}, decided by ${answer.rule ?? 'no rule'}` };
    return { case: c, answer, ok: true, why: '' };
  });
}
