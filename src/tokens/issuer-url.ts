// The one check on token URLs (issuer, token endpoint, JWKS). The sidecar applies it to its flags,
// and the injector applies it to --issuer and authproxy.dev/issuer before writing them into a pod,
// so a URL the injector accepts is never one the sidecar then refuses (a crash-looping pod).
import { isLoopbackHostname } from '../http/ip.ts';
import { withoutUserinfo } from '../http/url-text.ts';

/**
 * Why `value` is not a usable token URL, or null. Tokens and client assertions travel to these
 * URLs, and JWKS keys come from them: https://, or http:// on a loopback host only (the dev
 * issuer), where nobody else can read or answer. The message never quotes the URL's userinfo:
 * `https://user:secret@host` would otherwise put the secret into logs and admission denials.
 */
export function issuerUrlProblem(value: string, clientAuth: string): string | null {
  const u = URL.parse(value);
  const shown = `'${withoutUserinfo(value)}'`;
  if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:')) return `${shown} is not an http(s) URL`;
  if (u.username || u.password) return `${shown}: credentials in the URL are not allowed`;
  if (u.hash) return `${shown}: a fragment is not allowed`;
  if (u.protocol === 'http:' && !isLoopbackHostname(u.hostname)) return `${shown}: plain http:// is only allowed on a loopback host; use https://`;
  if (clientAuth === 'tls_client_auth' && u.protocol !== 'https:') {
    return `${shown}: tls_client_auth presents the workload certificate, which needs https://`;
  }
  return null;
}
