// Loading a policy directory into a PolicySet, all or nothing.
//
// - Files: every `*.yaml` / `*.yml` directly in DIR (not recursive; names are case-sensitive),
//   in byte order of their names. Dotfiles are skipped (editor backups, Kubernetes ConfigMap
//   `..data` entries); symlinks are followed (ConfigMap volumes are symlinks); an entry that is
//   not a regular file (a directory named x.yaml) is skipped. A file name with a control
//   character or backslash is refused, so the digest stays reproducible with sha256sum.
// - A missing DIR, or one that is not a directory, is an error: a path given explicitly must
//   exist. An existing DIR with no policy files is an empty set (every caller is allowed).
// - Each file is strict UTF-8 YAML with any number of documents separated by `---`; empty
//   documents are skipped but still counted, so `document N` is the Nth (0-based) document of
//   the file's YAML stream.
//   YAML warnings (unknown tags…) and duplicate keys are errors.
// - Every problem found is reported, not only the first: all files are read and each document
//   validated (schema, then semantic checks); set-level checks (duplicate names, hosts routed
//   twice, `tls: none` outside every boundary) run once every document is valid. Any problem
//   refuses the whole set with one PolicySetError (a ConfigError) whose message lists every
//   problem, one per line, each naming file, document (index and name), field and line.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { LineCounter, parseAllDocuments, type Document } from 'yaml';
import { ConfigError } from '../errors.ts';
import { compareNames, policyDigest, type PolicySource } from './digest.ts';
import { formatFieldPath, schemaProblems, type FieldProblem } from './schema.ts';
import type { AuthorizationPolicyDoc, PolicyDoc } from './document-schemas.ts';
import { buildPolicySet } from './set.ts';
import type { OutboundRouteSpec, PolicyDocumentRef, PolicySet, TrustBoundarySpec } from './types.ts';
import { documentProblems, setProblems, type LocatedDoc } from './validate.ts';
import { canonicalHostPattern } from './hosts.ts';

const POLICY_FILE = /^[^.].*\.ya?ml$/;

/** One problem, located by file, document and field; `detail` is the message without the location. */
export class PolicyProblem extends ConfigError {
  readonly detail: string;
  constructor(detail: string, where: { file?: string; document?: string; field?: string }) {
    super(detail, where);
    this.name = 'PolicyProblem';
    this.detail = detail;
  }
}

/**
 * Refuses a policy set. `problems` holds each problem with its own location; with a single
 * problem the error itself carries that location and message too.
 */
export class PolicySetError extends ConfigError {
  readonly problems: readonly PolicyProblem[];
  constructor(problems: readonly PolicyProblem[]) {
    const only = problems.length === 1 ? problems[0]! : undefined;
    if (only) {
      super(only.detail, { file: only.file, document: only.document, field: only.field });
    } else {
      super(`policy set refused, ${problems.length} problems:\n${problems.map((p) => `  - ${p.message}`).join('\n')}`);
    }
    this.name = 'PolicySetError';
    this.problems = Object.freeze([...problems]);
  }
}

function problem(message: string, where: { file?: string; document?: string; field?: string }): PolicyProblem {
  return new PolicyProblem(message, where);
}

export async function loadPolicyDir(dir: string): Promise<PolicySet> {
  let entries: string[];
  try {
    const info = await stat(dir);
    if (!info.isDirectory()) throw new ConfigError('policy path is not a directory', { file: dir });
    entries = await readdir(dir);
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError(code === 'ENOENT' ? 'policy directory does not exist' : `cannot read policy directory (${code ?? String(e)})`, { file: dir });
  }
  const sources: PolicySource[] = [];
  const problems: PolicyProblem[] = [];
  for (const name of entries.filter((n) => POLICY_FILE.test(n)).sort(compareNames)) {
    const file = join(dir, name);
    try {
      if (!(await stat(file)).isFile()) continue;
      sources.push({ name, bytes: await readFile(file) });
    } catch (e) {
      problems.push(problem(`cannot read policy file (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { file }));
    }
  }
  if (problems.length > 0) throw new PolicySetError(problems);
  return policySetFromSources(sources, dir);
}

/**
 * Builds a set from file contents already in memory (what loadPolicyDir does after reading).
 * `dir` only prefixes file names in messages and in `files`.
 */
export function policySetFromSources(sources: readonly PolicySource[], dir = ''): PolicySet {
  const sorted = [...sources].sort((a, b) => compareNames(a.name, b.name));
  const problems: PolicyProblem[] = [];
  const valid: LocatedDoc[] = [];
  const documents: PolicyDocumentRef[] = [];
  const where = new Map<LocatedDoc, { document: string; yaml: Document; lines: LineCounter }>();

  for (const source of sorted) {
    const file = dir === '' ? source.name : join(dir, source.name);
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f\\]/.test(source.name)) {
      problems.push(problem('policy file name contains a control character or backslash', { file }));
      continue;
    }
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(source.bytes);
    } catch {
      problems.push(problem('is not valid UTF-8', { file }));
      continue;
    }
    const lines = new LineCounter();
    const yamlDocs = parseAllDocuments(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
    yamlDocs.forEach((yaml, index) => {
      const parsed = toJS(yaml);
      if (parsed instanceof YamlProblem) {
        problems.push(problem(`${parsed.message}${lineSuffix(parsed.line)}`, { file, document: `${index}` }));
        return;
      }
      const js = parsed.value;
      if (js === null || js === undefined) return; // empty document (comments only, trailing ---)
      const document = `${index} (${metadataName(js) ?? 'unnamed'})`;
      const report = (p: FieldProblem) => problems.push(problem(
        `${p.message}${lineSuffix(lineOf(yaml, lines, p.path))}`,
        { file, document, ...(p.path.length ? { field: formatFieldPath(p.path) } : {}) },
      ));
      const schemaIssues = schemaProblems(js);
      if (schemaIssues.length > 0) return schemaIssues.forEach(report);
      const doc = js as PolicyDoc;
      const semanticIssues = documentProblems(doc);
      if (semanticIssues.length > 0) return semanticIssues.forEach(report);
      canonicalizeHosts(doc);
      const located = { doc, file, index };
      valid.push(located);
      where.set(located, { document, yaml, lines });
      documents.push({ file, index, kind: doc.kind, name: doc.metadata.name });
    });
  }

  if (problems.length === 0) {
    const boundaries = valid.flatMap(({ doc }) => (doc.kind === 'TrustBoundary' ? [toBoundarySpec(doc)] : []));
    for (const p of setProblems(valid, boundaries)) {
      const w = where.get(p.at)!;
      problems.push(problem(`${p.message}${lineSuffix(lineOf(w.yaml, w.lines, p.path))}`, {
        file: p.at.file, document: w.document, field: formatFieldPath(p.path),
      }));
    }
  }
  if (problems.length > 0) throw new PolicySetError(problems);

  return buildPolicySet({
    digest: policyDigest(sorted),
    files: sorted.map((s) => (dir === '' ? s.name : join(dir, s.name))),
    documents,
    policies: valid.flatMap(({ doc }) => (doc.kind === 'AuthorizationPolicy' ? [doc as AuthorizationPolicyDoc] : [])),
    routes: valid.flatMap(({ doc }) => (doc.kind === 'OutboundRoute' ? [toRouteSpec(doc)] : [])),
    boundaries: valid.flatMap(({ doc }) => (doc.kind === 'TrustBoundary' ? [toBoundarySpec(doc)] : [])),
  });
}

class YamlProblem {
  readonly message: string;
  readonly line: number | undefined;
  constructor(message: string, line: number | undefined) {
    this.message = message;
    this.line = line;
  }
}

/** The document as plain data, or its first YAML error or warning. */
function toJS(yaml: Document): { value: unknown } | YamlProblem {
  const first = yaml.errors[0] ?? yaml.warnings[0];
  if (first) {
    // prettyErrors appends a source excerpt after the first line; the line number is enough.
    const message = first.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    return new YamlProblem(`YAML ${yaml.errors.length ? 'error' : 'warning'}: ${message}`, first.linePos?.[0].line);
  }
  try {
    // The alias cap defuses "billion laughs" documents.
    return { value: yaml.toJS({ maxAliasCount: 100 }) as unknown };
  } catch (e) {
    return new YamlProblem(`YAML error: ${(e as Error).message}`, undefined);
  }
}

function metadataName(js: unknown): string | undefined {
  if (js === null || typeof js !== 'object') return undefined;
  const name = (js as { metadata?: { name?: unknown } }).metadata?.name;
  return typeof name === 'string' && name !== '' ? JSON.stringify(name).slice(1, -1) : undefined;
}

function lineSuffix(line: number | undefined): string {
  return line === undefined ? '' : ` (line ${line})`;
}

/** Line of the deepest existing node on `path` (a missing field points at its parent). */
function lineOf(yaml: Document, lines: LineCounter, path: readonly (string | number)[]): number | undefined {
  for (let depth = path.length; depth >= 0; depth--) {
    const node = depth === 0 ? yaml.contents : yaml.getIn(path.slice(0, depth), true);
    const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
    if (range) return lines.linePos(range[0]).line;
  }
  return undefined;
}

/**
 * IP literals in a route's or boundary's hosts in the form destinations are matched in (set-level
 * checks, routes and boundaries all see `127.0.0.1` for `127.1`); every host is valid by now.
 * Index for index, so that a problem found later names the host where it is written; two
 * spellings of one address in one document are made one host in the spec (toRouteSpec).
 */
function canonicalizeHosts(doc: PolicyDoc): void {
  if (doc.kind !== 'AuthorizationPolicy' && doc.spec.hosts) doc.spec.hosts = doc.spec.hosts.map((h) => canonicalHostPattern(h)!);
}

function toRouteSpec(doc: PolicyDoc & { kind: 'OutboundRoute' }): OutboundRouteSpec {
  const t = doc.spec.token;
  return {
    name: doc.metadata.name,
    hosts: [...new Set(doc.spec.hosts)],
    token: t
      ? { audience: t.audience, scopes: [...(t.scopes ?? [])], header: (t.header ?? 'authorization').toLowerCase(), scheme: t.scheme ?? 'Bearer' }
      : null,
    tls: doc.spec.tls ?? 'auto',
    trust: doc.spec.trust ?? 'auto',
  };
}

function toBoundarySpec(doc: PolicyDoc & { kind: 'TrustBoundary' }): TrustBoundarySpec {
  return { name: doc.metadata.name, cidrs: [...(doc.spec.cidrs ?? [])], hosts: [...new Set(doc.spec.hosts)] };
}
