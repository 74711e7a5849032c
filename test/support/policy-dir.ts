// Writes policy documents into a temp dir for a sidecar under test.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function policyDir(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'authproxy-policies-'));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

/** The rule set most end-to-end tests run against. */
export const TEST_POLICY = `apiVersion: authproxy.dev/v1
kind: AuthorizationPolicy
metadata: { name: orders }
spec:
  rules:
    - name: billing-everything
      action: allow
      from: [{ principals: ["spiffe://example.org/ns/billing/sa/*"] }]
      to: [{ paths: ["/**"] }]
    - name: shop-reads-orders
      action: allow
      from: [{ principals: ["spiffe://example.org/ns/shop/**"] }]
      to: [{ methods: [GET], paths: ["/orders", "/orders/*"] }]
    - name: legacy-dns-client
      action: allow
      from: [{ principals: ["legacy.internal"] }]
      to: [{ paths: ["/legacy"] }]
    - name: nobody-reaches-admin
      action: deny
      to: [{ paths: ["/admin/**"] }]
`;

/** 127.0.0.0/8 inside a TrustBoundary: plaintext outbound hops to the test's loopback servers are allowed. */
export const LOOPBACK_BOUNDARY = `apiVersion: authproxy.dev/v1
kind: TrustBoundary
metadata: { name: loopback }
spec: { cidrs: ["127.0.0.0/8"] }
`;

/** Sidecar A's route to a peer sidecar the test runs on localhost: mTLS with A's workload certificate. */
export const PEER_ROUTES = `apiVersion: authproxy.dev/v1
kind: OutboundRoute
metadata: { name: peers }
spec:
  hosts: ["localhost"]
  tls: mtls
`;
