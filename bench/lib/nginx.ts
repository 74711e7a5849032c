// nginx doing what the sidecar does on the inbound path: TLS with a required, CA-verified client
// certificate, the caller's identity passed to the app in headers, keep-alive to the app, one
// access-log line per request. One worker, since the sidecar is one Node process.
import type { BenchPki } from './pki.ts';

export function nginxConfig(o: { dir: string; port: number; appPort: number; pki: BenchPki }): string {
  const d = o.dir;
  return `worker_processes 1;
daemon off;
master_process on;
pid ${d}/nginx.pid;
error_log ${d}/error.log warn;
events { worker_connections 4096; }
http {
  access_log ${d}/access.log;
  client_body_temp_path ${d}/tmp/body;
  proxy_temp_path ${d}/tmp/proxy;
  fastcgi_temp_path ${d}/tmp/fastcgi;
  uwsgi_temp_path ${d}/tmp/uwsgi;
  scgi_temp_path ${d}/tmp/scgi;
  upstream app {
    server 127.0.0.1:${o.appPort};
    keepalive 256;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
  }
  server {
    listen 127.0.0.1:${o.port} ssl;
    ssl_certificate ${o.pki.server.cert};
    ssl_certificate_key ${o.pki.server.key};
    ssl_client_certificate ${o.pki.ca};
    ssl_verify_client on;
    ssl_protocols TLSv1.2 TLSv1.3;
    # nginx's default (1000) would force a new handshake every 1000 requests; the sidecar has no cap.
    keepalive_requests 1000000;
    keepalive_timeout 65s;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header x-forwarded-client-cert "Hash=$ssl_client_fingerprint;Subject=\\"$ssl_client_s_dn\\"";
      proxy_set_header x-authproxy-principal $ssl_client_s_dn;
    }
  }
}
`;
}
