// `authproxy issuer`: the dev token issuer in the foreground, and `authproxy issuer approve`,
// which creates a JIT approval on a running issuer through its loopback-only approvals endpoint.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import { ConfigError } from '../errors.ts';
import { parseBytes, parseDuration } from '../config/duration.ts';
import { DEFAULT_ISSUER_LISTEN, startIssuer } from '../issuer/server.ts';
import { APPROVALS_PATH } from '../issuer/admin.ts';
import { stopSignal } from './stop-signal.ts';

const USAGE = `usage:
  authproxy issuer [--listen ${DEFAULT_ISSUER_LISTEN}] [--clients FILE] [--token-ttl 5m] [--pad-tokens BYTES]
                   [--cert FILE --key FILE --ca FILE...] [--issuer-url URL]
      run the dev token issuer until SIGINT/SIGTERM. With --cert/--key/--ca it serves HTTPS,
      asks for client certificates and verifies them against --ca (tls_client_auth).
  authproxy issuer approve --client ID --role ROLE --for DURATION [--audience AUD]
                   [--issuer http://${DEFAULT_ISSUER_LISTEN}] [--ca FILE]
      grant ROLE to client ID for DURATION (e.g. 15m, max 24h); prints the approval id, which
      the client passes as approval=<id> in its token request. Only accepted from loopback.`;

export async function issuerCommand(argv: string[]): Promise<number> {
  if (argv[0] === 'approve') return approve(argv.slice(1));
  let values;
  try {
    ({ values } = parseArgs({ args: argv, strict: true, allowPositionals: false, options: {
      listen: { type: 'string' }, 'issuer-url': { type: 'string' }, clients: { type: 'string' },
      'token-ttl': { type: 'string' }, 'pad-tokens': { type: 'string' },
      cert: { type: 'string' }, key: { type: 'string' }, ca: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
    } }));
  } catch (e) { return usageError(e); }
  if (values.help) { console.log(USAGE); return 0; }

  const tlsGiven = [values.cert, values.key, values.ca?.length ? 'ca' : undefined].filter(Boolean).length;
  if (tlsGiven !== 0 && tlsGiven !== 3) throw new ConfigError('--cert, --key and --ca go together (HTTPS and tls_client_auth)');
  const tls = tlsGiven === 3 ? {
    certPem: await readText(values.cert!, 'cert'), keyPem: await readText(values.key!, 'key'),
    caPems: await Promise.all(values.ca!.map((f) => readText(f, 'ca'))),
  } : undefined;
  const ttlMs = parseDuration(values['token-ttl'] ?? '5m', 'tokenTtl');
  if (ttlMs < 1000 || ttlMs % 1000 !== 0) throw new ConfigError('must be whole seconds, at least 1s', { field: 'tokenTtl' });

  const stopped = stopSignal();
  const issuer = await startIssuer({
    listen: values.listen ?? DEFAULT_ISSUER_LISTEN,
    ...(values['issuer-url'] ? { issuerUrl: values['issuer-url'] } : {}),
    ...(values.clients ? { clients: values.clients } : {}),
    tokenTtlSeconds: ttlMs / 1000,
    padTokensTo: parseBytes(values['pad-tokens'] ?? 0, 'padTokens'),
    ...(tls ? { tls } : {}),
  });
  const clients = [...issuer.clients.values()].map((c) => `${c.id} (${c.auth})`).join(', ');
  console.log(`authproxy issuer: ${issuer.url}
  discovery  ${issuer.url}/.well-known/openid-configuration
  token      ${issuer.tokenEndpoint}
  jwks       ${issuer.jwksUri}
  approvals  ${issuer.approvalsEndpoint} (loopback only; authproxy issuer approve --help)
  clients    ${clients || 'none: give --clients FILE'}`);

  await stopped;
  await issuer.close();
  return 0;
}

async function approve(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, strict: true, allowPositionals: false, options: {
      client: { type: 'string' }, role: { type: 'string' }, for: { type: 'string' }, audience: { type: 'string' },
      issuer: { type: 'string' }, ca: { type: 'string', multiple: true }, help: { type: 'boolean', short: 'h' },
    } }));
  } catch (e) { return usageError(e); }
  if (values.help) { console.log(USAGE); return 0; }
  const missing = (['client', 'role', 'for'] as const).filter((k) => !values[k]);
  if (missing.length) return usageError(new Error(`missing ${missing.map((m) => `--${m}`).join(', ')}`));

  const forMs = parseDuration(values.for!, 'for');
  const base = (values.issuer ?? `http://${DEFAULT_ISSUER_LISTEN}`).replace(/\/+$/, '');
  const ca = values.ca?.length ? await Promise.all(values.ca.map((f) => readText(f, 'ca'))) : undefined;
  const dispatcher = ca ? new Agent({ connect: { ca } }) : undefined;
  let status: number; let body: Record<string, unknown>;
  try {
    const res = await request(`${base}${APPROVALS_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client: values.client, role: values.role, forMs, audience: values.audience ?? null }),
      ...(dispatcher ? { dispatcher } : {}),
    });
    status = res.statusCode;
    body = await res.body.json() as Record<string, unknown>;
  } catch (e) {
    console.error(`authproxy issuer approve: no answer from ${base} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); is 'authproxy issuer' running there?`);
    return 1;
  } finally {
    await dispatcher?.close();
  }
  if (status !== 201) {
    console.error(`authproxy issuer approve: refused (${status} ${String(body.error)}): ${String(body.message)}`);
    return 1;
  }
  console.error(`approved: client ${String(body.client)} holds role ${String(body.role)} for ${body.audience === null ? 'any of its audiences' : String(body.audience)} until ${String(body.expiresAt)}; request tokens with approval=${String(body.id)}`);
  console.log(String(body.id));
  return 0;
}

async function readText(file: string, field: string): Promise<string> {
  try { return await readFile(file, 'utf8'); } catch (e) {
    throw new ConfigError(`cannot read: ${(e as NodeJS.ErrnoException).code ?? 'error'}`, { file, field });
  }
}

function usageError(e: unknown): number {
  console.error(`authproxy issuer: ${(e as Error).message.replace(/\. To specify.*$/s, '')}\n\n${USAGE}`);
  return 2;
}
