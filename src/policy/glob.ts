// Segment globs for paths, SPIFFE IDs (separator '/') and host names (separator '.').
//
//   `*`   matches zero or more characters inside one segment (never the separator);
//         several may appear in a segment: `/orders/*.json`, `api-*-v*`.
//   `**`  must be a whole segment and matches any number of segments, including zero:
//         `/admin/**` matches `/admin`, `/admin/x` and `/admin/x/y`.
//   Everything else is literal and case-sensitive.
//
// Matching is a hand-written two-level wildcard match instead of a RegExp: a RegExp with several
// `**` backtracks polynomially on attacker-chosen input (O(n^k) for k globstars), while this
// matcher remembers only the last `**` (the classic wildcard algorithm, which is exact here
// because `**` absorbs any sequence of segments), so a test costs O(input × pattern) and
// allocates nothing: it walks the input by index and compares with startsWith.

const LITERAL = 0;
const WILD = 1;
const GLOBSTAR = 2;

type Token =
  | { readonly kind: typeof LITERAL; readonly text: string }
  // parts = the segment split on '*': head, middle parts (never empty), tail.
  | { readonly kind: typeof WILD; readonly parts: readonly string[]; readonly minLength: number }
  | { readonly kind: typeof GLOBSTAR };

export interface GlobMatcher {
  readonly pattern: string;
  readonly separator: string;
  matches(input: string): boolean;
}

/** Thrown for a malformed pattern; the policy loader turns it into a ConfigError naming the field. */
export class GlobSyntaxError extends Error {
  override readonly name = 'GlobSyntaxError';
}

export function compileGlob(pattern: string, separator: string): GlobMatcher {
  if (separator.length !== 1 || separator === '*') throw new GlobSyntaxError('separator must be one character other than *');
  if (pattern.length === 0) throw new GlobSyntaxError('pattern is empty');
  if (!pattern.includes('*')) return new ExactMatcher(pattern, separator);
  const tokens: Token[] = [];
  for (const segment of pattern.split(separator)) {
    if (segment === '**') {
      // Consecutive globstars mean the same as one; keeping one keeps the matcher's work bounded.
      if (tokens.at(-1)?.kind !== GLOBSTAR) tokens.push({ kind: GLOBSTAR });
    } else if (segment.includes('**')) {
      throw new GlobSyntaxError(`'**' must be a whole segment (between '${separator}' separators), not part of '${segment}'`);
    } else if (segment.includes('*')) {
      const parts = segment.split('*');
      tokens.push({ kind: WILD, parts, minLength: parts.reduce((n, p) => n + p.length, 0) });
    } else {
      tokens.push({ kind: LITERAL, text: segment });
    }
  }
  return new SegmentMatcher(pattern, separator, tokens);
}

class ExactMatcher implements GlobMatcher {
  readonly pattern: string;
  readonly separator: string;
  constructor(pattern: string, separator: string) {
    this.pattern = pattern;
    this.separator = separator;
  }
  matches(input: string): boolean {
    return input === this.pattern;
  }
}

class SegmentMatcher implements GlobMatcher {
  readonly pattern: string;
  readonly separator: string;
  readonly #tokens: readonly Token[];
  constructor(pattern: string, separator: string, tokens: readonly Token[]) {
    this.pattern = pattern;
    this.separator = separator;
    this.#tokens = tokens;
  }

  matches(input: string): boolean {
    const tokens = this.#tokens;
    const sep = this.separator;
    const n = tokens.length;
    let t = 0;
    // Start of the current input segment; -1 once every segment is consumed. An input always
    // has at least one (possibly empty) segment, like String.split.
    let s = 0;
    let starToken = -1;
    let starSegment = -1;
    while (s !== -1) {
      const end = segmentEnd(input, sep, s);
      const token = t < n ? tokens[t]! : undefined;
      if (token !== undefined && token.kind === GLOBSTAR) {
        // Try `**` as zero segments first; on a later mismatch it takes one more segment.
        starToken = t++;
        starSegment = s;
        continue;
      }
      if (token !== undefined && segmentMatches(token, input, s, end)) {
        t++;
        s = end < input.length ? end + 1 : -1;
        continue;
      }
      if (starToken === -1) return false;
      const starEnd = segmentEnd(input, sep, starSegment);
      starSegment = starEnd < input.length ? starEnd + 1 : -1;
      s = starSegment;
      t = starToken + 1;
    }
    while (t < n && tokens[t]!.kind === GLOBSTAR) t++;
    return t === n;
  }
}

function segmentEnd(input: string, sep: string, start: number): number {
  const i = input.indexOf(sep, start);
  return i === -1 ? input.length : i;
}

function segmentMatches(token: Token, input: string, start: number, end: number): boolean {
  if (token.kind === LITERAL) return end - start === token.text.length && input.startsWith(token.text, start);
  if (token.kind === GLOBSTAR) return true;
  if (end - start < token.minLength) return false;
  const parts = token.parts;
  const head = parts[0]!;
  const tail = parts[parts.length - 1]!;
  if (!input.startsWith(head, start)) return false;
  const limit = end - tail.length;
  if (!input.startsWith(tail, limit)) return false;
  // Middle parts, leftmost first: taking the earliest occurrence never prevents a later part from matching.
  let pos = start + head.length;
  for (let i = 1; i < parts.length - 1; i++) {
    const part = parts[i]!;
    let found = -1;
    for (let j = pos; j + part.length <= limit; j++) {
      if (input.startsWith(part, j)) { found = j; break; }
    }
    if (found === -1) return false;
    pos = found + part.length;
  }
  return pos <= limit;
}

/**
 * Host-name patterns (separator '.'): as above, except that a leading `*` label matches one or
 * more labels, as Envoy virtual hosts and Istio hosts read `*.example.com` — so
 * `*.svc.cluster.local` covers `payments.prod.svc.cluster.local`, as Kubernetes service names need.
 * It never matches the bare suffix (`svc.cluster.local`).
 */
export function compileHostGlob(pattern: string): GlobMatcher {
  return compileGlob(pattern.startsWith('*.') ? `*.**${pattern.slice(1)}` : pattern, '.');
}
