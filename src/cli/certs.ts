// `authproxy certs`: a small dev/ops PKI. Every subcommand checks its flags and its outputs
// before generating anything, writes all of its files or none, and never prints key material
// or passwords. Exit codes: 0 done, 1 refused or failed, 2 usage error.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isIP } from 'node:net';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { caPaths, checkSpiffeIdForCa, leafNotAfter, loadCa, readText } from '../certs/ca.ts';
import { assertWritable, writeOutputs } from '../certs/files.ts';
import { formatSummary, readCertificates, summarize } from '../certs/inspect.ts';
import { PKCS12_ITERATIONS, buildPkcs12 } from '../certs/pkcs12.ts';
import { KEY_TYPES, createCA, createCsr, issueCertificate, parseCsr, signCsr, type KeyType } from '../certs/pki.ts';
import { isTrustDomainName, parseSpiffeId, TRUST_DOMAIN_RULE } from '../identity/spiffe.ts';
import { DNS_NAME_RULE, isDnsName, reservedPrefix } from '../identity/names.ts';

export const PFX_PASSWORD_ENV = 'AUTHPROXY_PFX_PASSWORD';

class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>;
type Values = Record<string, string | boolean | string[] | undefined>;

interface Subcommand {
  summary: string;
  usage: string;
  options: Options;
  positionals?: { min: number; max: number };
  run(v: Values, positionals: string[]): Promise<number>;
}

const KEY_TYPE_HELP = `key type: ${KEY_TYPES.join(' | ')} (default ec-p256)`;

const SUBCOMMANDS: Record<string, Subcommand> = {
  init: {
    summary: 'create a CA (ca.crt, ca.key)',
    usage: `usage: authproxy certs init [--dir certs] [--trust-domain example.org] [--key-type ec-p256] [--days 365]

Create a self-signed CA certificate and key: DIR/ca.crt and DIR/ca.key (mode 0600).

  --dir DIR              where to write (default certs; created if missing)
  --trust-domain TD      SPIFFE trust domain; the CA carries spiffe://TD as a URI SAN and
                         'certs issue' / 'certs sign' refuse IDs from other trust domains
  --cn NAME              subject common name (default "authproxy dev CA")
  --key-type TYPE        ${KEY_TYPE_HELP}
  --days N               validity in days (default 365)
  --force                replace existing ca.crt / ca.key`,
    options: {
      dir: { type: 'string', default: 'certs' }, 'trust-domain': { type: 'string' }, cn: { type: 'string' },
      'key-type': { type: 'string' }, days: { type: 'string' }, force: { type: 'boolean' },
    },
    async run(v) {
      const dir = str(v, 'dir')!;
      const trustDomain = str(v, 'trust-domain');
      if (trustDomain !== undefined && !isTrustDomainName(trustDomain)) {
        throw new UsageError(`--trust-domain '${trustDomain}' is not a valid trust domain (${TRUST_DOMAIN_RULE})`);
      }
      const keyType = keyTypeOpt(v); const days = daysOpt(v, 365); const force = Boolean(v.force);
      const { cert: certPath, key: keyPath } = caPaths(dir);
      await assertWritable([certPath, keyPath], force);
      const ca = await createCA({ keyType, days, ...(trustDomain ? { trustDomain } : {}), ...(str(v, 'cn') ? { commonName: str(v, 'cn')! } : {}) });
      await writeOutputs([{ path: certPath, data: ca.certPem, secret: false }, { path: keyPath, data: ca.keyPem, secret: true }], { force });
      const s = summarize(new X509Certificate(ca.certPem));
      console.log(`created CA ${s.subject}${trustDomain ? ` for trust domain ${trustDomain}` : ''} (${s.publicKey}, valid until ${s.notAfter})`);
      console.log(`  ${certPath}\n  ${keyPath} (private key, mode 0600)`);
      return 0;
    },
  },

  issue: {
    summary: 'issue a leaf certificate and key signed by the CA',
    usage: `usage: authproxy certs issue --spiffe-id spiffe://TD/PATH [--dns NAME]... [--ip ADDR]... [--ca-dir certs] [--out certs/workload]

Generate a key and a certificate for it signed by the CA in --ca-dir: OUT.crt and OUT.key (mode 0600).
The certificate is a TLS server and client certificate (EKU serverAuth, clientAuth).

  --spiffe-id ID         SPIFFE ID (URI SAN); must be in the CA's trust domain if it has one
  --dns NAME             DNS SAN (repeatable)
  --ip ADDR              IP address SAN (repeatable)
  --cn NAME              subject common name (default: first DNS name, else last SPIFFE path segment;
                         not a URI, not starting with 'spiffe:' or 'boundary:')
  --key-type TYPE        ${KEY_TYPE_HELP}
  --days N               validity in days (default 30; may not outlive the CA)
  --ca-dir DIR           directory holding ca.crt and ca.key (default certs)
  --out PATH             output path without extension, a trailing .crt is dropped
                         (default CA_DIR/workload)
  --force                replace existing output files
At least one of --spiffe-id, --dns, --ip is required.`,
    options: {
      'spiffe-id': { type: 'string' }, dns: { type: 'string', multiple: true }, ip: { type: 'string', multiple: true },
      cn: { type: 'string' }, 'key-type': { type: 'string' }, days: { type: 'string' }, 'ca-dir': { type: 'string', default: 'certs' },
      out: { type: 'string' }, force: { type: 'boolean' },
    },
    async run(v) {
      const names = nameOpts(v);
      if (!names.spiffeId && !names.dnsNames.length && !names.ipAddresses.length) throw new UsageError('give --spiffe-id, --dns or --ip (the certificate needs an identity)');
      const caDir = str(v, 'ca-dir')!;
      const base = stripExt(str(v, 'out') ?? join(caDir, 'workload'), '.crt');
      const keyType = keyTypeOpt(v); const days = daysOpt(v, 30); const force = Boolean(v.force);
      const certPath = `${base}.crt`; const keyPath = `${base}.key`;
      await assertWritable([certPath, keyPath], force);
      const ca = await loadCa(caDir);
      if (names.spiffeId) checkSpiffeIdForCa(ca, names.spiffeId);
      const notAfter = leafNotAfter(ca, days);
      const leaf = await issueCertificate(ca, { ...names, keyType, notAfter });
      await writeOutputs([{ path: certPath, data: leaf.certPem, secret: false }, { path: keyPath, data: leaf.keyPem, secret: true }], { force });
      const s = summarize(new X509Certificate(leaf.certPem));
      console.log(`issued ${s.identity} (${s.publicKey}, valid until ${s.notAfter}) signed by ${s.issuer}`);
      console.log(`  ${certPath}\n  ${keyPath} (private key, mode 0600)`);
      return 0;
    },
  },

  csr: {
    summary: 'generate a key and a certificate signing request',
    usage: `usage: authproxy certs csr --spiffe-id spiffe://TD/PATH [--dns NAME]... [--ip ADDR]... --out NAME

Generate a key and a PKCS#10 request for it: NAME.csr (send it to whoever runs the CA, e.g.
'authproxy certs sign') and NAME.key (mode 0600; it never leaves this machine).

  --spiffe-id ID         SPIFFE ID to request (URI SAN)
  --dns NAME             DNS SAN (repeatable)
  --ip ADDR              IP address SAN (repeatable)
  --cn NAME              subject common name (default: first DNS name, else last SPIFFE path segment;
                         not a URI, not starting with 'spiffe:' or 'boundary:')
  --key-type TYPE        ${KEY_TYPE_HELP}
  --out NAME             output path without extension, a trailing .csr is dropped (required)
  --force                replace existing output files
At least one of --spiffe-id, --dns, --ip is required.`,
    options: {
      'spiffe-id': { type: 'string' }, dns: { type: 'string', multiple: true }, ip: { type: 'string', multiple: true },
      cn: { type: 'string' }, 'key-type': { type: 'string' }, out: { type: 'string' }, force: { type: 'boolean' },
    },
    async run(v) {
      const names = nameOpts(v);
      if (!names.spiffeId && !names.dnsNames.length && !names.ipAddresses.length) throw new UsageError('give --spiffe-id, --dns or --ip (the request needs an identity)');
      const base = stripExt(required(v, 'out'), '.csr');
      const keyType = keyTypeOpt(v); const force = Boolean(v.force);
      const csrPath = `${base}.csr`; const keyPath = `${base}.key`;
      await assertWritable([csrPath, keyPath], force);
      const { csrPem, keyPem } = await createCsr({ ...names, keyType });
      await writeOutputs([{ path: csrPath, data: csrPem, secret: false }, { path: keyPath, data: keyPem, secret: true }], { force });
      console.log(`wrote ${csrPath} (certificate request: send this to the CA)`);
      console.log(`wrote ${keyPath} (private key, mode 0600: keep it here)`);
      return 0;
    },
  },

  sign: {
    summary: 'sign a certificate signing request with the CA',
    usage: `usage: authproxy certs sign --csr NAME.csr [--out NAME.crt] [--ca-dir certs] [--days 30]

Check a CSR's signature and the names it asks for, then issue a certificate for its key.
Only the CSR's subject CN and its SPIFFE ID / DNS / IP SANs are copied; key usage, extended key
usage (serverAuth, clientAuth) and CA:FALSE are set by the CA, whatever the CSR asks for.
Refused: more than one URI SAN, a URI that is not a SPIFFE ID, a SPIFFE ID outside the CA's trust
domain, a DNS SAN that is not a DNS name, a CN that looks like a URI or starts with 'spiffe:' or
'boundary:' (authproxy would take it for a SPIFFE ID or a trust boundary's principal), other SAN
types (email, otherName…), or a request with no name at all.

  --csr FILE             the request (PEM or DER; required)
  --out FILE             certificate to write (default: the CSR path with .crt instead of .csr)
  --ca-dir DIR           directory holding ca.crt and ca.key (default certs)
  --days N               validity in days (default 30; may not outlive the CA)
  --force                replace an existing output file`,
    options: {
      csr: { type: 'string' }, out: { type: 'string' }, 'ca-dir': { type: 'string', default: 'certs' },
      days: { type: 'string' }, force: { type: 'boolean' },
    },
    async run(v) {
      const csrPath = required(v, 'csr');
      const out = str(v, 'out') ?? `${stripExt(csrPath, '.csr')}.crt`;
      const days = daysOpt(v, 30); const force = Boolean(v.force);
      await assertWritable([out], force);
      const bytes = await readBytes(csrPath);
      const csrData = bytes.toString('latin1').includes('-----BEGIN') ? bytes.toString('latin1') : bytes;
      let req;
      try { req = await parseCsr(csrData); } catch (e) {
        throw new Error(`${csrPath}: ${(e as Error).message}`, { cause: e });
      }
      const ca = await loadCa(str(v, 'ca-dir')!);
      if (req.otherNames.length) throw new Error(`${csrPath}: asks for names this CA does not sign: ${req.otherNames.join(', ')}`);
      if (req.uris.length > 1) throw new Error(`${csrPath}: asks for ${req.uris.length} URI SANs; an X.509-SVID carries exactly one`);
      const uri = req.uris[0];
      if (uri !== undefined) checkSpiffeIdForCa(ca, uri);
      for (const d of req.dnsNames) {
        if (!isDnsName(d)) throw new Error(`${csrPath}: asks for DNS SAN ${JSON.stringify(d)}, which is not a DNS name (${DNS_NAME_RULE})`);
      }
      const cnProblem = req.commonName === undefined ? null : commonNameProblem(req.commonName);
      if (cnProblem) throw new Error(`${csrPath}: asks for subject CN ${JSON.stringify(req.commonName)}, which ${cnProblem}`);
      if (!uri && !req.dnsNames.length && !req.ipAddresses.length && !req.commonName) throw new Error(`${csrPath}: names no identity (no SAN and no CN)`);
      const certPem = await signCsr(ca, csrData, { notAfter: leafNotAfter(ca, days) });
      await writeOutputs([{ path: out, data: certPem, secret: false }], { force });
      const s = summarize(new X509Certificate(certPem));
      console.log(`signed ${s.identity || '(no identity)'} from ${csrPath} (valid until ${s.notAfter})`);
      console.log(`  ${out}`);
      return 0;
    },
  },

  pfx: {
    summary: 'bundle key, certificate and chain as password-protected PKCS#12',
    usage: `usage: authproxy certs pfx --cert FILE --key FILE [--chain ca.crt]... --out FILE.p12 --password-file FILE

Write a PKCS#12 bundle (mode 0600) of the key, the certificate and its chain, encrypted with
PBES2 (PBKDF2-HMAC-SHA-256, ${PKCS12_ITERATIONS} iterations, AES-256-CBC) and protected by an
HMAC-SHA-256 MAC: what OpenSSL 3 writes by default, readable without -legacy.

  --cert FILE            the certificate (PEM; extra certificates after it are taken as chain)
  --key FILE             its private key (unencrypted PEM)
  --chain FILE           CA / intermediate certificates to include (repeatable; PEM, may hold several)
  --out FILE             the bundle to write (required)
  --password-file FILE   read the password from the first line of FILE
                         (else from the ${PFX_PASSWORD_ENV} environment variable;
                         a password is never accepted as a flag value)
  --name NAME            friendly name (default: the certificate's identity)
  --force                replace an existing output file`,
    options: {
      cert: { type: 'string' }, key: { type: 'string' }, chain: { type: 'string', multiple: true }, out: { type: 'string' },
      'password-file': { type: 'string' }, name: { type: 'string' }, force: { type: 'boolean' },
    },
    async run(v) {
      const certPath = required(v, 'cert'); const keyPath = required(v, 'key'); const out = required(v, 'out');
      const force = Boolean(v.force);
      const password = await readPassword(str(v, 'password-file'));
      await assertWritable([out], force);
      const certs = await certificatesIn(certPath);
      const leaf = certs[0]!;
      const chain = [...certs.slice(1)];
      for (const f of (v.chain as string[] | undefined) ?? []) {
        chain.push(...await certificatesIn(f));
      }
      const keyPem = await readText(keyPath);
      let key;
      try { key = createPrivateKey(keyPem); } catch {
        // The parser's message can quote key bytes; say only what the operator needs.
        throw new Error(`${keyPath}: private key does not parse (unencrypted PEM expected)`);
      }
      if (!leaf.checkPrivateKey(key)) throw new Error(`${keyPath}: private key does not belong to ${certPath}`);
      if (chain.length && !chain.some((c) => leaf.checkIssued(c) && leaf.verify(c.publicKey))) {
        throw new Error(`the chain does not contain the issuer of ${certPath} (${leaf.issuer.replaceAll('\n', ', ')})`);
      }
      const identity = summarize(leaf).identity;
      const name = str(v, 'name') ?? (identity || undefined);
      const p12 = buildPkcs12({
        keyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString(), certificates: [leaf.raw, ...chain.map((c) => c.raw)],
        password, ...(name !== undefined ? { friendlyName: name } : {}),
      });
      await writeOutputs([{ path: out, data: p12, secret: true }], { force });
      console.log(`wrote ${out} (key, certificate${chain.length ? ` and ${chain.length} chain certificate${chain.length > 1 ? 's' : ''}` : ''}; mode 0600)`);
      return 0;
    },
  },

  inspect: {
    summary: 'summarize a certificate',
    usage: `usage: authproxy certs inspect FILE [--json] [--all]

Show a certificate's identity (SPIFFE ID, else DNS SAN, else subject CN: what authproxy would
use as the principal), SANs, key usage, extended key usage, subject, issuer, serial, validity
with days left, and whether it is a CA. FILE is PEM or DER; of a PEM chain the first
certificate is shown.

  --json                 machine-readable output (one object; with --all an array)
  --all                  show every certificate in FILE`,
    options: { json: { type: 'boolean' }, all: { type: 'boolean' } },
    positionals: { min: 1, max: 1 },
    async run(v, positionals) {
      const file = positionals[0]!;
      const certs = await certificatesIn(file);
      const all = Boolean(v.all);
      const summaries = (all ? certs : certs.slice(0, 1)).map((c) => summarize(c));
      if (v.json) {
        console.log(JSON.stringify(all ? summaries : summaries[0], null, 2));
        return 0;
      }
      const text = summaries.map((s, i) => (all ? `certificate #${i + 1}\n` : '') + formatSummary(s)).join('\n');
      process.stdout.write(text);
      if (!all && certs.length > 1) console.log(`(${file} holds ${certs.length} certificates; --all shows every one)`);
      return 0;
    },
  },
};

const OVERVIEW = `usage: authproxy certs <subcommand> [flags]

${Object.entries(SUBCOMMANDS).map(([name, s]) => `  ${name.padEnd(9)} ${s.summary}`).join('\n')}

run 'authproxy certs <subcommand> --help' for its flags`;

export async function certsCommand(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    (name === undefined ? console.error : console.log)(OVERVIEW);
    return name === undefined ? 2 : 0;
  }
  const sub = SUBCOMMANDS[name];
  if (!sub) {
    console.error(`authproxy certs: unknown subcommand '${name}' (one of: ${Object.keys(SUBCOMMANDS).join(', ')})`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(sub.usage);
    return 0;
  }
  const prefix = `authproxy certs ${name}`;
  try {
    const { values, positionals } = parse(sub, rest);
    return await sub.run(values, positionals);
  } catch (e) {
    const message = (e instanceof Error ? e.message : String(e)).replace(/\s*\n\s*/g, ' ');
    if (e instanceof UsageError) {
      console.error(`${prefix}: ${message} (see '${prefix} --help')`);
      return 2;
    }
    console.error(`${prefix}: ${message}`);
    return 1;
  }
}

function parse(sub: Subcommand, args: string[]): { values: Values; positionals: string[] } {
  if (args.some((a) => a === '--password' || a.startsWith('--password='))) {
    // Refused before parsing so the value is never echoed back in an error.
    throw new UsageError(`a password is not accepted on the command line (ps and shell history would show it); use --password-file FILE or ${PFX_PASSWORD_ENV}`);
  }
  let parsed;
  try {
    parsed = parseArgs({ args, options: sub.options, strict: true, allowPositionals: true });
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      throw new UsageError((e as Error).message.split('. ')[0]!.replace(/^./, (c) => c.toLowerCase()));
    }
    throw new UsageError('invalid arguments');
  }
  const { min, max } = sub.positionals ?? { min: 0, max: 0 };
  const n = parsed.positionals.length;
  // Positional values are not echoed: a mistyped flag can leave a secret as a stray argument.
  if (n > max) throw new UsageError(max === 0 ? `takes no positional arguments (got ${n})` : `takes at most ${max} positional argument${max > 1 ? 's' : ''} (got ${n})`);
  if (n < min) throw new UsageError(`missing FILE argument`);
  return { values: parsed.values as Values, positionals: parsed.positionals };
}

function str(v: Values, name: string): string | undefined {
  const x = v[name];
  return typeof x === 'string' ? x : undefined;
}

function required(v: Values, name: string): string {
  const x = str(v, name);
  if (x === undefined || x === '') throw new UsageError(`--${name} is required`);
  return x;
}

function keyTypeOpt(v: Values): KeyType {
  const k = str(v, 'key-type') ?? 'ec-p256';
  if (!(KEY_TYPES as readonly string[]).includes(k)) throw new UsageError(`--key-type '${k}' is not one of ${KEY_TYPES.join(', ')}`);
  return k as KeyType;
}

function daysOpt(v: Values, def: number): number {
  const d = str(v, 'days');
  if (d === undefined) return def;
  if (!/^\d+$/.test(d) || Number(d) < 1 || Number(d) > 36_500) throw new UsageError(`--days '${d}' is not a whole number of days between 1 and 36500`);
  return Number(d);
}

function nameOpts(v: Values): { spiffeId?: string; dnsNames: string[]; ipAddresses: string[]; commonName?: string } {
  const spiffeId = str(v, 'spiffe-id');
  if (spiffeId !== undefined && !parseSpiffeId(spiffeId)) throw new UsageError(`--spiffe-id '${spiffeId}' is not a valid SPIFFE ID (spiffe://trust-domain/path)`);
  const dnsNames = (v.dns as string[] | undefined) ?? [];
  for (const d of dnsNames) if (!isDnsName(d)) throw new UsageError(`--dns '${d}' is not a valid DNS name (${DNS_NAME_RULE})`);
  const ipAddresses = (v.ip as string[] | undefined) ?? [];
  for (const ip of ipAddresses) if (!isIP(ip)) throw new UsageError(`--ip '${ip}' is not an IPv4 or IPv6 address`);
  const commonName = str(v, 'cn');
  const cnProblem = commonName ? commonNameProblem(commonName) : null;
  if (cnProblem) throw new UsageError(`--cn '${commonName}' ${cnProblem}`);
  return { ...(spiffeId ? { spiffeId } : {}), dnsNames, ipAddresses, ...(commonName ? { commonName } : {}) };
}

/**
 * Why a subject CN is not signed, else null. A CN becomes the principal of a certificate with no
 * SAN, and one string cannot say which kind of name it is: a CN reading as a URI or as a
 * principal the sidecar derives otherwise would stand for an identity the CA never checked.
 */
function commonNameProblem(cn: string): string | null {
  if (cn.includes('://')) return 'looks like a URI (a SPIFFE ID belongs in the URI SAN)';
  const prefix = reservedPrefix(cn);
  return prefix ? `starts with '${prefix}', which authproxy principals reserve` : null;
}

function stripExt(path: string, ext: string): string {
  return path.endsWith(ext) ? path.slice(0, -ext.length) : path;
}

async function readBytes(file: string): Promise<Buffer> {
  try { return await readFile(file); } catch (e) {
    throw new Error(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? 'error'})`, { cause: e });
  }
}

async function certificatesIn(file: string): Promise<X509Certificate[]> {
  const bytes = await readBytes(file);
  try { return readCertificates(bytes); } catch (e) { throw new Error(`${file}: ${(e as Error).message}`, { cause: e }); }
}

async function readPassword(file: string | undefined): Promise<string> {
  let password: string;
  if (file !== undefined) {
    const text = (await readBytes(file)).toString('utf8');
    password = text.split(/\r?\n/, 1)[0] ?? '';
  } else {
    const env = process.env[PFX_PASSWORD_ENV];
    if (env === undefined) throw new UsageError(`no password: give --password-file FILE or set ${PFX_PASSWORD_ENV}`);
    password = env;
  }
  if (password === '') throw new Error(`the password ${file !== undefined ? `in ${file}` : `in ${PFX_PASSWORD_ENV}`} is empty; an unprotected bundle is not written`);
  return password;
}
