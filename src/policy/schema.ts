// Runs a parsed document through its kind's schema (document-schemas.ts), with the validators ajv
// compiled ahead of time (validators.generated.ts), and turns ajv's errors into field paths and
// sentences an operator can act on.
import type { ErrorObject } from 'ajv';
import { API_VERSION } from './kinds.ts';
import type { PolicyKind } from './types.ts';
import { VALIDATORS } from './validators.generated.ts';

/** A problem inside one document: the field as a path (`spec.rules[0].action`) and what is wrong. */
export interface FieldProblem {
  /** Field path segments, e.g. ['spec', 'rules', 0, 'action']; [] for the document itself. */
  readonly path: readonly (string | number)[];
  readonly message: string;
}

/** Validates one parsed document against its kind's schema; [] when valid. */
export function schemaProblems(value: unknown): FieldProblem[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return [{ path: [], message: 'must be a mapping with apiVersion, kind, metadata and spec' }];
  }
  const doc = value as Record<string, unknown>;
  if (doc.apiVersion !== API_VERSION) {
    return [{ path: ['apiVersion'], message: doc.apiVersion === undefined ? 'is required' : `must be ${API_VERSION}` }];
  }
  const kind = doc.kind;
  if (typeof kind !== 'string' || !Object.hasOwn(VALIDATORS, kind)) {
    return [{ path: ['kind'], message: kind === undefined ? 'is required' : `must be one of: ${Object.keys(VALIDATORS).join(', ')}` }];
  }
  const validate = VALIDATORS[kind as PolicyKind];
  if (validate(value)) return [];
  return dedupe((validate.errors ?? []).map(toProblem));
}

function toProblem(e: ErrorObject): FieldProblem {
  const path = pointerToPath(e.instancePath);
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return { path: [...path, String(params.missingProperty)], message: 'is required' };
    case 'additionalProperties': {
      const allowed = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
      return {
        path: [...path, String(params.additionalProperty)],
        message: allowed.length ? `is not a known field (expected one of: ${allowed.join(', ')})` : 'is not a known field',
      };
    }
    case 'enum':
      return { path, message: `must be one of: ${(params.allowedValues as unknown[]).join(', ')}` };
    case 'const':
      return { path, message: `must be ${String(params.allowedValue)}` };
    case 'type':
      return { path, message: `must be ${article(String(params.type))}` };
    case 'minItems':
      return { path, message: 'must not be empty' };
    case 'minProperties':
      return { path, message: 'must not be empty' };
    case 'maxLength':
      return { path, message: `must be at most ${String(params.limit)} characters` };
    case 'pattern': {
      const hint = (e.parentSchema as { hint?: string } | undefined)?.hint;
      return { path, message: hint ?? 'has an invalid format' };
    }
    default:
      return { path, message: e.message ?? 'is invalid' };
  }
}

function article(type: string): string {
  if (type === 'object') return 'a mapping';
  if (type === 'array') return 'a list';
  return `a ${type}`;
}

function pointerToPath(pointer: string): (string | number)[] {
  if (pointer === '') return [];
  return pointer.slice(1).split('/').map((raw) => {
    const seg = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    return /^(0|[1-9][0-9]*)$/.test(seg) ? Number(seg) : seg;
  });
}

function dedupe(problems: FieldProblem[]): FieldProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${formatFieldPath(p.path)}\0${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** `['spec', 'rules', 0, 'action']` -> `spec.rules[0].action`. */
export function formatFieldPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}
