// The header names the sidecar owns. Toward an app only the sidecar sets them (the verified
// identity, the request id, its own instructions and deadlines); whatever a caller sent under
// them is dropped, in headers and in trailers alike, so nobody can claim an identity through them.
export const OWNED_PREFIX = 'x-authproxy-';

/** `x-authproxy-*`, `x-forwarded-client-cert` and `x-request-id` (name in lowercase). */
export function isSidecarOwned(lowerName: string): boolean {
  return lowerName === 'x-forwarded-client-cert' || lowerName === 'x-request-id' || lowerName.startsWith(OWNED_PREFIX);
}
