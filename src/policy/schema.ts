// JSON schemas of the three document kinds (DESIGN.md "Policy documents"), validated with ajv in
// strict mode: every object is closed (`additionalProperties: false`) so a misspelt key is an error
// instead of a silently ignored rule. Checks a schema cannot express (durations, CIDRs, globs,
// normalized paths, cross-document rules) live in validate.ts.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { API_VERSION } from './kinds.ts';
import type { ServerTrust, PolicyKind, TlsMode } from './types.ts';

// ---- Validated document shapes (what a document is once its schema passed) ----

export interface Metadata {
  name: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface FromEntry {
  principals?: string[];
  token?: { roles?: string[]; jit?: { maxAge: string } };
}

export interface ToEntry {
  methods?: string[];
  paths?: string[];
}

export interface RuleDoc {
  name: string;
  action: 'allow' | 'deny';
  /** Pass the verified bearer token on to the app (default: the app gets x-authproxy-claims only). */
  forwardToken?: boolean;
  from?: FromEntry[];
  to?: ToEntry[];
}

export interface AuthorizationPolicyDoc {
  apiVersion: typeof API_VERSION;
  kind: 'AuthorizationPolicy';
  metadata: Metadata;
  spec: { rules: RuleDoc[] };
}

export interface OutboundRouteDoc {
  apiVersion: typeof API_VERSION;
  kind: 'OutboundRoute';
  metadata: Metadata;
  spec: {
    hosts: string[];
    token?: { audience: string; scopes?: string[]; header?: string; scheme?: string };
    tls?: TlsMode;
    trust?: ServerTrust;
  };
}

export interface TrustBoundaryDoc {
  apiVersion: typeof API_VERSION;
  kind: 'TrustBoundary';
  metadata: Metadata;
  spec: { cidrs?: string[]; hosts?: string[] };
}

export type PolicyDoc = AuthorizationPolicyDoc | OutboundRouteDoc | TrustBoundaryDoc;

// ---- Schemas. `hint` is an annotation used to explain a failed `pattern`. ----

const PRINTABLE = '^[\\x21-\\x7e]+$';

const nameSchema = {
  type: 'string', maxLength: 253, pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$',
  hint: 'must be a lowercase DNS-style name (letters, digits, - and .), e.g. orders',
};
const ruleNameSchema = {
  type: 'string', maxLength: 253, pattern: '^[A-Za-z0-9]([-A-Za-z0-9._]*[A-Za-z0-9])?$',
  hint: 'must be letters, digits, -, _ and ., starting and ending with a letter or digit',
};
const stringMap = { type: 'object', additionalProperties: { type: 'string' } };
const metadataSchema = {
  type: 'object', additionalProperties: false, required: ['name'],
  properties: { name: nameSchema, labels: stringMap, annotations: stringMap },
};
const nonEmptyList = (items: object) => ({ type: 'array', minItems: 1, items });
const hostPatternSchema = {
  type: 'string', maxLength: 253, pattern: '^[a-z0-9.*_:-]+$',
  hint: 'must be a lowercase host name, a host glob such as *.svc.cluster.local, or an IP address',
};

const durationSchema = {
  type: 'string', pattern: '^[0-9]+(s|m|h)$',
  hint: "must be a duration such as '30s', '15m' or '1h'",
};

const authorizationPolicySpec = {
  type: 'object', additionalProperties: false, required: ['rules'],
  properties: {
    rules: nonEmptyList({
      type: 'object', additionalProperties: false, required: ['name', 'action'],
      properties: {
        name: ruleNameSchema,
        action: { type: 'string', enum: ['allow', 'deny'] },
        forwardToken: { type: 'boolean' },
        from: nonEmptyList({
          type: 'object', additionalProperties: false, minProperties: 1,
          properties: {
            principals: nonEmptyList({
              type: 'string', maxLength: 2048, pattern: PRINTABLE,
              hint: 'must be a principal or principal glob without spaces, e.g. spiffe://example.org/ns/billing/sa/*',
            }),
            token: {
              type: 'object', additionalProperties: false,
              properties: {
                roles: nonEmptyList({ type: 'string', maxLength: 256, pattern: PRINTABLE, hint: 'must be a role name without spaces' }),
                jit: {
                  type: 'object', additionalProperties: false, required: ['maxAge'],
                  properties: { maxAge: durationSchema },
                },
              },
            },
          },
        }),
        to: nonEmptyList({
          type: 'object', additionalProperties: false, minProperties: 1,
          properties: {
            methods: nonEmptyList({
              type: 'string', pattern: '^[A-Z][A-Z-]*$',
              hint: 'must be an uppercase HTTP method such as GET (matching is exact; omit methods for any)',
            }),
            paths: nonEmptyList({
              type: 'string', maxLength: 4096, pattern: '^/',
              hint: 'must be a path glob starting with /',
            }),
          },
        }),
      },
    }),
  },
};

const outboundRouteSpec = {
  type: 'object', additionalProperties: false, required: ['hosts'],
  properties: {
    hosts: nonEmptyList(hostPatternSchema),
    token: {
      type: 'object', additionalProperties: false, required: ['audience'],
      properties: {
        audience: { type: 'string', maxLength: 2048, pattern: PRINTABLE, hint: 'must be a non-empty audience without spaces' },
        scopes: {
          type: 'array',
          items: { type: 'string', pattern: '^[\\x21\\x23-\\x5b\\x5d-\\x7e]+$', hint: 'must be an OAuth scope (no spaces, quotes or backslashes)' },
        },
        header: {
          type: 'string', pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$",
          hint: 'must be an HTTP header name',
        },
        scheme: {
          type: 'string', pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]*$",
          hint: "must be an auth scheme such as Bearer, or '' for the bare token",
        },
      },
    },
    tls: { type: 'string', enum: ['auto', 'tls', 'mtls', 'none'] },
    trust: { type: 'string', enum: ['auto', 'bundle', 'system'] },
  },
};

const trustBoundarySpec = {
  type: 'object', additionalProperties: false, minProperties: 1,
  properties: {
    cidrs: nonEmptyList({
      type: 'string', pattern: '^[0-9a-fA-F:.]+/[0-9]{1,3}$',
      hint: 'must be a CIDR such as 10.0.0.0/8 or fd00::/8',
    }),
    hosts: nonEmptyList(hostPatternSchema),
  },
};

function documentSchema(kind: PolicyKind, spec: object): object {
  return {
    type: 'object', additionalProperties: false, required: ['apiVersion', 'kind', 'metadata', 'spec'],
    properties: {
      apiVersion: { type: 'string', const: API_VERSION },
      kind: { type: 'string', const: kind },
      metadata: metadataSchema,
      spec,
    },
  };
}

/** The JSON Schema of each document kind (exported for the test that checks them). */
export const DOCUMENT_SCHEMAS: Readonly<Record<PolicyKind, object>> = {
  AuthorizationPolicy: documentSchema('AuthorizationPolicy', authorizationPolicySpec),
  OutboundRoute: documentSchema('OutboundRoute', outboundRouteSpec),
  TrustBoundary: documentSchema('TrustBoundary', trustBoundarySpec),
};

// These schemas are constants, so checking them against JSON Schema's meta-schema and optimizing
// the generated validators (which run only when policies load) need not happen at every start:
// importing this module took 119 → 68 ms (median of 5) without them, and the compiled sidecar's
// ready time 313 → 285 ms (6 alternating starts). test/policy/schema.test.ts checks the schemas
// against the meta-schema instead. Strict mode still refuses unknown keywords.
const ajv = new Ajv({ strict: true, allErrors: true, verbose: true, validateSchema: false, code: { optimize: false } });
ajv.addVocabulary(['hint']);

const VALIDATORS: Record<PolicyKind, ValidateFunction> = {
  AuthorizationPolicy: ajv.compile(DOCUMENT_SCHEMAS.AuthorizationPolicy),
  OutboundRoute: ajv.compile(DOCUMENT_SCHEMAS.OutboundRoute),
  TrustBoundary: ajv.compile(DOCUMENT_SCHEMAS.TrustBoundary),
};

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
