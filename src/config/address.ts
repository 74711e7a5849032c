// Parsing of listen addresses and upstream targets, shared by config validation and the CLI.
import { ConfigError } from '../errors.ts';
import { withoutUserinfo } from '../http/url-text.ts';

export interface ListenAddress { host: string; port: number }

/** `host:port`, `[v6]:port` or `:port` (all interfaces). Port 0 asks the OS for a free port (tests). */
export function parseListen(value: string, field: string): ListenAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new ConfigError(`'${value}' is not host:port`, { field });
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

export function formatListen(a: ListenAddress): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

export type Upstream =
  | { kind: 'tcp'; origin: string; host: string; port: number; display: string; h2c: boolean }
  | { kind: 'unix'; socketPath: string; display: string; h2c: boolean };

/**
 * `http://host:port` or `unix:/path.sock`: the app speaks plain HTTP/1.1 on loopback or a socket.
 * `h2c://host:port` or `h2c+unix:/path.sock`: the app speaks cleartext HTTP/2 (prior knowledge),
 * as gRPC servers do (the `scheme+unix` form is the one Docker's and requests' clients use).
 */
export function parseUpstream(value: string, field = 'upstream'): Upstream {
  const unix = /^(h2c\+)?unix:/.exec(value);
  if (unix) {
    const h2c = unix[1] !== undefined;
    const socketPath = value.slice(unix[0].length).replace(/^\/\/(?=\/)/, '');
    if (!socketPath.startsWith('/')) throw new ConfigError(`'${value}' must be ${h2c ? 'h2c+' : ''}unix:/absolute/path.sock`, { field });
    return { kind: 'unix', socketPath, display: `${h2c ? 'h2c+' : ''}unix:${socketPath}`, h2c };
  }
  let url: URL;
  // Messages quote `shown`: the value without any user:password@ in it.
  const shown = withoutUserinfo(value);
  try { url = new URL(value); } catch { throw new ConfigError(`'${shown}' is not a URL (http://host:port, h2c://host:port, unix:/path.sock or h2c+unix:/path.sock)`, { field }); }
  const h2c = url.protocol === 'h2c:';
  if (h2c) url = new URL(`http:${value.slice('h2c:'.length)}`);
  if (url.protocol !== 'http:') throw new ConfigError(`'${shown}': the app is reached over plain http://, h2c://, unix: or h2c+unix:`, { field });
  if (url.pathname !== '/' || url.search || url.username || url.password) throw new ConfigError(`'${shown}' must be http://host:port with no path, query or credentials`, { field });
  const port = url.port ? Number(url.port) : 80;
  return { kind: 'tcp', origin: `http://${url.host}`, host: url.hostname.replace(/^\[|\]$/g, ''), port, display: h2c ? `h2c://${url.host}` : url.origin, h2c };
}
