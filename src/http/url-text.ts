// URLs in error messages: a configured URL may carry credentials (`https://user:secret@host`), and
// error messages end up in logs, exit messages and admission denials, so they never quote them.

/**
 * `value` with any userinfo cut out. Textual rather than through URL, because the value may not
 * parse (then URL cannot tell where the credentials are) and because the WHATWG parser also reads
 * `http:user:pw@host` and backslashes as an authority: everything from the scheme to the last `@`
 * before the path is dropped (a `?` or `#` too, since a password may hold one unencoded).
 */
export function withoutUserinfo(value: string): string {
  return value.replace(/^([A-Za-z][A-Za-z0-9+.-]*:[/\\]*)[^/\\]*@/, '$1');
}
