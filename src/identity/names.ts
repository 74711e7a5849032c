// Rules for the names a certificate gives as plain text: DNS SANs and the subject CN. A principal
// is one string, not a typed name as Envoy's (uri / dns / subject) are, so a text name must not be
// readable as the principals authproxy derives otherwise: a SPIFFE ID, which only a URI SAN can
// carry under the trust-domain check, or `boundary:<name>`, which only the plaintext listener
// assigns. Otherwise any CA in the bundle mints those by writing them into a CN or DNS SAN.
// The sidecar (checkPeer) and the dev CA (`authproxy certs`) apply the same rules.

const RESERVED_PREFIX = /^(spiffe|boundary):/i;

/** `spiffe:` or `boundary:` (as the name spells it, any case) when a text name starts with one, else null. */
export function reservedPrefix(name: string): string | null {
  return RESERVED_PREFIX.exec(name)?.[0] ?? null;
}

// Letters, digits, '-' and '_' in labels of 1 to 63 that neither start nor end with '-', joined
// by '.', optionally under one leading '*.' wildcard label. '_' is not a hostname character, but
// internal CAs issue such names and Go's crypto/x509 accepts them for that reason; it cannot
// carry XFCC syntax or pass for a SPIFFE ID, which is what this check is for.
const DNS_NAME = /^(\*\.)?([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/i;

export function isDnsName(name: string): boolean {
  return name.length <= 253 && DNS_NAME.test(name);
}

export const DNS_NAME_RULE = "letters, digits, '-', '_' and '.', optionally under a leading '*.'";
