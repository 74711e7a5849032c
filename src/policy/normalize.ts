// Request-target normalization: the one place that decides which path a rule sees and which path
// the app receives. A path-based rule is only as strong as the agreement between the two, so every
// form that servers disagree on is either canonicalized here or refused with `bad_path` (400).
//
// Input: the raw request target. Origin-form (`/a/b?x`) or absolute-form (`http://host/a/b?x`,
// scheme http or https; its path is taken, an empty path is `/`). Asterisk-form (`*`),
// authority-form and anything else is refused. Absolute-form with userinfo (`http://u@host/`) is
// refused (RFC 9110 §4.2.4 tells recipients to treat it as an error).
//
// Steps, in order:
// 1. The query is split off at the first `?` and passed through untouched (only control
//    characters and non-ASCII are refused). `query` is '' or starts with '?', so the app
//    receives `path + query`.
// 2. Each character of the path is checked and percent-encodings are canonicalized:
//    - `%XX` of an unreserved character (ALPHA DIGIT - . _ ~) is decoded (`/%61dmin` = `/admin`,
//      `%2e%2e` = `..`, which step 4 then resolves); any other `%XX` keeps its escape with
//      uppercase hex (`%c3%a9` -> `%C3%A9`).
//    - refused: `%2F` (encoded slash), `%5C` and `\` (backslash: Windows/IIS and some Java
//      stacks treat it as a separator), `%00`, raw control characters and raw non-ASCII
//      (clients must percent-encode), a malformed escape (`%zz`, `%4`), `#` (a fragment is never
//      part of a request target, and apps that parse one would route on less than we judged),
//      `%3B` (encoded `;`: some servers decode it before stripping path parameters, which
//      would turn it into the parameter separator that step 5 handles only in raw form).
//    - printable ASCII that RFC 3986 does not allow in a path (`" < > [ ] ^ \` { | }`) is
//      percent-encoded, so the raw and the encoded spelling are judged alike.
// 3. Repeated slashes are merged (`//admin` = `/admin`), before dot-segments are resolved, as
//    nginx's merge_slashes does.
// 4. `.` and `..` segments are resolved (RFC 3986 §5.2.4 remove_dot_segments), except that a
//    `..` that would climb above the root is refused instead of clamped (`/a/../../etc`).
//    A trailing `.`/`..` leaves a trailing slash, as the RFC says (`/admin/.` -> `/admin/`).
//    The result is `path`: what the app receives.
// 5. `matchPath`, what rules are matched against, is `path` with `;params` removed from every
//    segment (Tomcat and other servlet containers strip them, so `/admin;x=y` must be judged as
//    `/admin`) and the trailing slash dropped unless the path is `/` (`/admin/` and `/admin/.`
//    are judged as `/admin`). A segment that is empty or a dot-segment once its parameters are
//    removed (`/;x/admin`, `/orders/..;/admin`) is refused: servers disagree on whether it
//    resolves, which is the classic `..;/` bypass.
// Matching is case-sensitive: `/ORDERS` is not `/orders`. (For an app that routes
// case-insensitively, prefer allow rules over deny rules: an unmatched case variant is then
// denied by default instead of slipping past a deny.)
import { RequestRefused } from '../errors.ts';

export interface NormalizedTarget {
  /** Normalized path the app receives. */
  readonly path: string;
  /** '' or the raw query including its leading '?'. */
  readonly query: string;
  /** The path rules are matched against. */
  readonly matchPath: string;
}

const HEX = '0123456789ABCDEF';
const ABSOLUTE_FORM = /^(https?):\/\/([^/?#]*)/i;

// Character classes for path bytes, indexed by char code (< 128).
const UNRESERVED = charSet('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~');
// pchar minus '%' (handled separately) and '/' (the separator).
const PATH_ALLOWED = charSet("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@");
const ENCODE = charSet('"<>[]^`{|} ');

function charSet(chars: string): Uint8Array {
  const set = new Uint8Array(128);
  for (let i = 0; i < chars.length; i++) set[chars.charCodeAt(i)] = 1;
  return set;
}

function refuse(message: string): never {
  throw new RequestRefused('bad_path', message);
}

export function normalizeTarget(target: string): NormalizedTarget {
  let start = 0;
  if (target.charCodeAt(0) !== 0x2f /* / */) {
    const m = ABSOLUTE_FORM.exec(target);
    if (!m) refuse('request target must be a path (origin-form) or an http(s) URL (absolute-form)');
    const authority = m[2]!;
    if (!validAuthority(authority)) refuse('request target has an empty or invalid authority');
    start = m[0].length;
  }
  const q = target.indexOf('?', start);
  const rawPath = target.slice(start, q === -1 ? target.length : q);
  const query = q === -1 ? '' : target.slice(q);
  for (let i = 1; i < query.length; i++) {
    const c = query.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) refuse('query contains a control or non-ASCII character');
  }
  if (rawPath === '') {
    // Absolute-form without a path (`http://host` or `http://host?x`) means the root.
    if (start === 0) refuse('request target is empty');
    return { path: '/', query, matchPath: '/' };
  }
  if (rawPath.charCodeAt(0) !== 0x2f) refuse('path must start with /');

  // Steps 2 and 3: canonical segments, empty ones dropped (merged slashes) except a trailing one.
  const segments = splitCanonical(rawPath);
  const trailingSlash = rawPath.charCodeAt(rawPath.length - 1) === 0x2f;

  // Step 4: remove_dot_segments over whole segments.
  const out: string[] = [];
  let endsWithSlash = trailingSlash;
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    const last = i === segments.length - 1;
    if (seg === '.') {
      if (last) endsWithSlash = true;
    } else if (seg === '..') {
      if (out.length === 0) refuse("path climbs above the root with '..'");
      out.pop();
      if (last) endsWithSlash = true;
    } else {
      out.push(seg);
    }
  }
  const path = out.length === 0 ? '/' : `/${out.join('/')}${endsWithSlash ? '/' : ''}`;

  // Step 5: strip ;params per segment; the trailing slash is dropped by construction.
  let matchPath = path;
  if (path.includes(';')) {
    for (let i = 0; i < out.length; i++) {
      const seg = out[i]!;
      const semi = seg.indexOf(';');
      if (semi === -1) continue;
      const name = seg.slice(0, semi);
      if (name === '' || name === '.' || name === '..') {
        refuse("path segment is empty or a dot-segment once its ';' parameters are removed");
      }
      out[i] = name;
    }
    matchPath = out.length === 0 ? '/' : `/${out.join('/')}`;
  } else if (endsWithSlash && out.length > 0) {
    matchPath = path.slice(0, -1);
  }
  return { path, query, matchPath };
}

// Host routing is not decided here, but an authority that hides userinfo, a backslash or a
// control character is a smuggling attempt rather than a request.
function validAuthority(authority: string): boolean {
  if (authority === '') return false;
  for (let i = 0; i < authority.length; i++) {
    const c = authority.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || c === 0x40 /* @ */ || c === 0x5c /* backslash */) return false;
  }
  return true;
}

function splitCanonical(rawPath: string): string[] {
  const segments: string[] = [];
  let seg = '';
  // rawPath[0] is '/'.
  for (let i = 1; i < rawPath.length; i++) {
    const c = rawPath.charCodeAt(i);
    if (c === 0x2f) {
      if (seg !== '') segments.push(seg);
      seg = '';
    } else if (c === 0x25 /* % */) {
      const v = i + 2 < rawPath.length ? (hexValue(rawPath.charCodeAt(i + 1)) << 4) | hexValue(rawPath.charCodeAt(i + 2)) : -1;
      if (v < 0) refuse("path has a malformed percent-escape (a '%' must be followed by two hex digits)");
      if (v === 0x2f) refuse('path contains an encoded slash (%2F)');
      if (v === 0x5c) refuse('path contains an encoded backslash (%5C)');
      if (v === 0x00) refuse('path contains an encoded NUL (%00)');
      if (v === 0x3b) refuse("path contains an encoded ';' (%3B)");
      seg += v < 128 && UNRESERVED[v] === 1 ? String.fromCharCode(v) : `%${HEX[v >> 4]!}${HEX[v & 15]!}`;
      i += 2;
    } else if (c < 128 && PATH_ALLOWED[c] === 1) {
      seg += rawPath[i]!;
    } else if (c < 128 && ENCODE[c] === 1) {
      seg += `%${HEX[c >> 4]!}${HEX[c & 15]!}`;
    } else if (c === 0x5c) {
      refuse('path contains a backslash');
    } else if (c === 0x23) {
      refuse("path contains '#' (a fragment is not part of a request target)");
    } else if (c < 0x20 || c === 0x7f) {
      refuse('path contains a control character');
    } else {
      refuse('path contains a non-ASCII character (it must be percent-encoded)');
    }
  }
  if (seg !== '') segments.push(seg);
  return segments;
}

/** Hex digit value, or a negative number (so a bad digit makes the combined value negative). */
function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -256;
}
