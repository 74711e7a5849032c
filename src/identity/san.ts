// Node renders subjectAltName as "DNS:a, URI:spiffe://x, IP Address:1.2.3.4" and quotes (JSON
// string syntax) any value that contains a separator, so a crafted SAN cannot smuggle in a
// second entry. This splits that rendering back into typed entries.
export interface SubjectAltNames { uris: string[]; dnsNames: string[]; ips: string[] }

export function parseSubjectAltName(rendered: string | undefined): SubjectAltNames {
  const out: SubjectAltNames = { uris: [], dnsNames: [], ips: [] };
  if (!rendered) return out;
  let i = 0;
  while (i < rendered.length) {
    const colon = rendered.indexOf(':', i);
    if (colon < 0) break;
    const type = rendered.slice(i, colon);
    let value: string;
    let next: number;
    if (rendered[colon + 1] === '"') {
      let j = colon + 2;
      while (j < rendered.length && rendered[j] !== '"') j += rendered[j] === '\\' ? 2 : 1;
      value = JSON.parse(rendered.slice(colon + 1, j + 1)) as string;
      next = rendered.indexOf(', ', j);
    } else {
      next = rendered.indexOf(', ', colon);
      value = rendered.slice(colon + 1, next < 0 ? undefined : next);
    }
    if (type === 'URI') out.uris.push(value);
    else if (type === 'DNS') out.dnsNames.push(value);
    else if (type === 'IP Address') out.ips.push(value);
    if (next < 0) break;
    i = next + 2;
  }
  return out;
}
