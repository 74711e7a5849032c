// The three policy document kinds (DESIGN.md "Policy documents"): the shape each has once valid,
// and its JSON Schema. Every object is closed (`additionalProperties: false`) so a misspelt key is
// an error instead of a silently ignored rule. Checks a schema cannot express (durations, CIDRs,
// globs, normalized paths, cross-document rules) live in validate.ts. The schemas are compiled
// ahead of time into validators.generated.ts (scripts/generate-validators.ts says why); schema.ts
// runs them and words their errors.
import type { ErrorObject } from 'ajv';
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

/** The JSON Schema of each document kind, compiled by scripts/generate-validators.ts. */
export const DOCUMENT_SCHEMAS: Readonly<Record<PolicyKind, object>> = {
  AuthorizationPolicy: documentSchema('AuthorizationPolicy', authorizationPolicySpec),
  OutboundRoute: documentSchema('OutboundRoute', outboundRouteSpec),
  TrustBoundary: documentSchema('TrustBoundary', trustBoundarySpec),
};

/** A compiled validator: true when valid, else its errors are left on `errors`. */
export interface CompiledValidator {
  (data: unknown): boolean;
  errors?: ErrorObject[] | null;
}
