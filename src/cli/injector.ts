// `authproxy injector`: the mutating admission webhook the Helm chart deploys.
import { parseArgs } from 'node:util';
import { ConfigError } from '../errors.ts';
import { parseListen } from '../config/address.ts';
import { parseDuration } from '../config/duration.ts';
import { log } from '../log.ts';
import { SETTINGS_OPTIONS, settingsFromFlags } from './injection-flags.ts';
import { inClusterApi, kubeNamespaceReader, type KubeApiOptions } from '../inject/kube.ts';
import { startWebhook } from '../inject/webhook.ts';
import { stopSignal } from './stop-signal.ts';

const HELP = `usage: authproxy injector --cert FILE --key FILE [flags]

Kubernetes mutating admission webhook: POST /inject (AdmissionReview admission.k8s.io/v1),
GET /healthz and /readyz. The serving certificate is reloaded when its files change.

flags:
  --listen HOST:PORT      HTTPS listener (default 0.0.0.0:8443)
  --cert FILE --key FILE  serving certificate (its SANs must include the webhook Service's DNS name)
  --config FILE           injection settings (YAML; see docs/kubernetes.md)
  --image, --trust-domain, --issuer, --policies-configmap, --legacy-sidecar
                          override the settings file (same as authproxy inject)
  --timeout DURATION      answer every review within this (default 8s; keep under the webhook's timeoutSeconds)
  --kube-api URL          API server for namespace labels (default: in-cluster)
  --kube-token-file FILE --kube-ca-file FILE
  --reload-interval DURATION  how often the certificate files are re-checked (default 5s)`;

export async function injectorCommand(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv, strict: true, allowPositionals: false,
      options: {
        listen: { type: 'string', default: '0.0.0.0:8443' },
        cert: { type: 'string' },
        key: { type: 'string' },
        ...SETTINGS_OPTIONS,
        timeout: { type: 'string', default: '8s' },
        'kube-api': { type: 'string' },
        'kube-token-file': { type: 'string' },
        'kube-ca-file': { type: 'string' },
        'reload-interval': { type: 'string', default: '5s' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    console.error(`authproxy injector: ${(e as Error).message.replace(/\. To specify.*$/s, '')}\n\n${HELP}`);
    return 2;
  }
  if (values.help) { console.log(HELP); return 0; }

  const stopped = stopSignal();
  let running;
  try {
    if (!values.cert || !values.key) throw new ConfigError('--cert and --key are required: the API server only calls webhooks over HTTPS', { field: values.cert ? 'key' : 'cert' });
    const settings = await settingsFromFlags(values);
    let api: KubeApiOptions | undefined = inClusterApi();
    if (values['kube-api']) {
      if (!values['kube-token-file'] || !values['kube-ca-file']) throw new ConfigError('--kube-api needs --kube-token-file and --kube-ca-file', { field: 'kube-api' });
      api = { url: values['kube-api'], tokenFile: values['kube-token-file'], caFile: values['kube-ca-file'] };
    }
    if (!api) log.warn('injector: not in a cluster and no --kube-api: namespace labels and annotations are not read, only pod-level opt-in applies');
    running = await startWebhook({
      listen: parseListen(values.listen, 'listen'),
      certFile: values.cert, keyFile: values.key, settings,
      namespaces: api ? kubeNamespaceReader(api) : undefined,
      timeoutMs: parseDuration(values.timeout, 'timeout'),
      reloadIntervalMs: parseDuration(values['reload-interval'], 'reload-interval'),
    });
    log.info('injector: listening', { url: `https://${running.address.host}:${running.address.port}/inject`, image: settings.image, nativeSidecar: settings.nativeSidecar });
  } catch (e) {
    if (e instanceof ConfigError) { console.error(`authproxy injector: ${e.message}`); return 2; }
    throw e;
  }

  await stopped;
  await running.close();
  return 0;
}
