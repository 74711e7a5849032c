// Document kinds and API version; a leaf module so that every other policy module can import
// these values without an import cycle through types.ts.
import type { PolicyKind } from './types.ts';

export const API_VERSION = 'authproxy.dev/v1';
export const POLICY_KINDS: readonly PolicyKind[] = ['AuthorizationPolicy', 'OutboundRoute', 'TrustBoundary'];
