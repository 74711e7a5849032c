// In-memory policy sets for tests: file name -> YAML text.
import assert from 'node:assert/strict';
import { policySetFromSources, PolicySetError } from '../../src/policy/load.ts';
import type { PolicySet } from '../../src/policy/types.ts';

export function loadSet(files: Record<string, string>): PolicySet {
  return policySetFromSources(Object.entries(files).map(([name, text]) => ({ name, bytes: Buffer.from(text) })), 'policies');
}

/** Loads a set that must be refused and returns the error. */
export function refusedSet(files: Record<string, string>): PolicySetError {
  try {
    loadSet(files);
  } catch (e) {
    assert.ok(e instanceof PolicySetError, `expected PolicySetError, got ${String(e)}`);
    return e;
  }
  assert.fail('policy set was accepted');
}

export function policy(name: string, rules: string): string {
  return `apiVersion: authproxy.dev/v1
kind: AuthorizationPolicy
metadata: { name: ${name} }
spec:
  rules:
${rules.replace(/^/gm, '    ').trimEnd()}
`;
}

export function route(name: string, spec: string): string {
  return `apiVersion: authproxy.dev/v1\nkind: OutboundRoute\nmetadata: { name: ${name} }\nspec: ${spec}\n`;
}

export function boundary(name: string, spec: string): string {
  return `apiVersion: authproxy.dev/v1\nkind: TrustBoundary\nmetadata: { name: ${name} }\nspec: ${spec}\n`;
}
