// haproxy doing the same mTLS termination as the sidecar: required, CA-verified client
// certificate, identity header to the app, connection reuse to the app, one log line per request
// (to stdout, which the harness sends to a file). One thread, like the single Node process.
import type { BenchPki } from './pki.ts';

export function haproxyConfig(o: { port: number; appPort: number; pki: BenchPki }): string {
  return `global
  nbthread 1
  maxconn 8000
  log stdout format raw local0
defaults
  mode http
  log global
  option httplog
  timeout connect 5s
  timeout client 65s
  timeout server 65s
  timeout http-keep-alive 65s
  http-reuse always
frontend inbound
  bind 127.0.0.1:${o.port} ssl crt ${o.pki.serverCombined} ca-file ${o.pki.ca} verify required ssl-min-ver TLSv1.2
  http-request del-header x-forwarded-client-cert
  http-request set-header x-forwarded-client-cert "Hash=%[ssl_c_sha1,hex];Subject=\\"%[ssl_c_s_dn]\\""
  http-request set-header x-authproxy-principal %[ssl_c_s_dn]
  default_backend app
backend app
  server app 127.0.0.1:${o.appPort}
`;
}
