// `authproxy run` (and bare flags): build the config, prepare dev mode if asked, start, wait for a signal.
import { relative, isAbsolute } from 'node:path';
import { buildConfig, readConfigFile, type Config, type RawConfig } from '../config/config.ts';
import type { DevIssuer } from '../tokens/dev-issuer.ts';
import { parseRunFlags, RUN_FLAGS } from '../config/flags.ts';
import { formatListen, type ListenAddress } from '../config/address.ts';
import { ConfigError } from '../errors.ts';
import { start } from '../runtime/start.ts';
import { stopSignal, reopenSignal } from './stop-signal.ts';

export const DEV_TRUST_DOMAIN = 'example.org';
export const DEV_WORKLOAD_ID = `spiffe://${DEV_TRUST_DOMAIN}/ns/dev/sa/app`;
export const DEV_CLIENT_ID = `spiffe://${DEV_TRUST_DOMAIN}/ns/dev/sa/curl`;

const HELP = `usage: authproxy [run] --upstream URL [flags]
       authproxy run --config authproxy.yaml [flags]

With no --cert/--key/--ca: dev mode (certificates generated under ./certs, ./policies loaded).
Every flag is also a config-file key in camelCase (--max-header-bytes -> maxHeaderBytes).

flags:
${RUN_FLAGS.map((f) => `  ${f.flag} VALUE${f.multiple ? ' (repeatable)' : ''}`).join('\n')}
  --config FILE
See README.md for defaults.`;

export async function runCommand(argv: string[]): Promise<number> {
  let config: Config;
  let layers: RawConfig[];
  try {
    const { raw, configFile, help } = parseRunFlags(argv);
    if (help) { console.log(HELP); return 0; }
    layers = configFile ? [await readConfigFile(configFile), raw] : [raw];
    config = buildConfig(layers);
  } catch (e) {
    if (e instanceof ConfigError) { console.error(`authproxy: ${e.message}`); return 2; }
    throw e;
  }

  // Before anything starts: the `ready` line is written inside start() (stop-signal.ts says why).
  const stopped = stopSignal();
  const onReopen = reopenSignal();

  let clientPaths: { cert: string; key: string; ca: string } | null = null;
  if (config.dev) {
    // Loaded only in dev mode (and the X.509 generator in it only to make certificates: ~20 MB that
    // a production sidecar never needs).
    const { ensureDevPki } = await import('../certs/dev.ts');
    const pki = await ensureDevPki(config.certsDir, { trustDomain: DEV_TRUST_DOMAIN, workloadId: DEV_WORKLOAD_ID, clientId: DEV_CLIENT_ID });
    clientPaths = { cert: pki.clientCert, key: pki.clientKey, ca: pki.caCert };
  }
  let devIssuer: DevIssuer | null = null;
  if (config.dev && config.issuer === null && config.tokenEndpoint === null) {
    // Dev mode brings its own token issuer, as it brings its own CA.
    const { startDevIssuer } = await import('../tokens/dev-issuer.ts');
    devIssuer = await startDevIssuer({ workloadId: DEV_WORKLOAD_ID, workloadCert: config.cert!, policies: config.policies, audience: config.audience });
    config = buildConfig([devIssuer.layer, ...layers]);
  }

  let running;
  try {
    running = await start(config);
  } catch (e) {
    // start() has closed whatever it had opened; with the dev issuer closed too and the signal
    // listeners gone, nothing is left to keep the process alive, and it exits 1 at once.
    stopped.release();
    await devIssuer?.issuer.close();
    console.error(`authproxy: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
  const { audit } = running.rt;
  onReopen(() => void audit.reopen());
  if (clientPaths) printDevBanner(config, running.addresses.inbound, running.addresses.admin, clientPaths, running.addresses.outbound, devIssuer?.issuer.url ?? null);

  await running.shutdown(await stopped);
  await devIssuer?.issuer.close();
  return 0;
}

function printDevBanner(config: Config, inbound: ListenAddress, admin: ListenAddress, client: { cert: string; key: string; ca: string },
  outbound: ListenAddress, issuer: string | null): void {
  const rel = (p: string): string => { const r = relative(process.cwd(), p); return r && !r.startsWith('..') && !isAbsolute(r) ? r : p; };
  // formatListen brackets an IPv6 host: https://::1:25444/ is not a URL curl can use.
  const at = formatListen({ host: ['0.0.0.0', '::', '127.0.0.1'].includes(inbound.host) ? 'localhost' : inbound.host, port: inbound.port });
  console.log([
    '',
    'authproxy dev mode',
    `  inbound mTLS  https://${at}  ->  app ${config.upstream.display}`,
    `  outbound      http://${formatListen(outbound)}  (the app's HTTP_PROXY; tokens per OutboundRoute)`,
    `  admin         http://${formatListen(admin)}/readyz  /metrics  /config`,
    ...(issuer ? [`  token issuer  ${issuer}  (dev; JIT: authproxy issuer approve --issuer ${issuer} --client ${DEV_WORKLOAD_ID} --role ROLE --for 15m)`] : []),
    `  certificates  ${rel(config.certsDir)}/ (dev CA, workload ${DEV_WORKLOAD_ID}, client ${DEV_CLIENT_ID})`,
    `  policies      ${config.policies ? rel(config.policies) : '(none: every trusted peer is allowed)'}`,
    '',
    'try it (a request as the dev client, through the sidecar to your app):',
    `  curl --cacert ${rel(client.ca)} --cert ${rel(client.cert)} --key ${rel(client.key)} https://${at}/`,
    '',
  ].join('\n'));
}
