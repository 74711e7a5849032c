// `authproxy inject -f FILE|-`: add the sidecar to Kubernetes manifests offline, with the same
// mutation the webhook applies (`kubectl apply -f <(authproxy inject -f app.yaml)`).
import { parseArgs } from 'node:util';
import { readFile } from 'node:fs/promises';
import { ConfigError } from '../errors.ts';
import { injectManifests, ManifestError } from '../inject/manifests.ts';
import { SETTINGS_OPTIONS, settingsFromFlags } from './injection-flags.ts';

const HELP = `usage: authproxy inject -f FILE|- [flags]

Adds the authproxy sidecar to every Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job and
CronJob in a multi-document YAML stream and prints the result; other documents pass through.
Running the command is the opt-in; a pod template (or a Namespace in the stream) with
authproxy.dev/inject: "false" is left alone. Already injected objects are unchanged.

flags:
  -f, --filename FILE     manifest file, or - for standard input (required)
  --config FILE           injection settings (the chart's authproxy-injector ConfigMap, settings.yaml)
  --image IMAGE           sidecar image
  --trust-domain NAME     SPIFFE trust domain
  --issuer URL            default token issuer for the sidecars
  --policies-configmap N  ConfigMap holding the policies (default authproxy-policies)
  --legacy-sidecar        regular sidecar container for clusters older than Kubernetes 1.29
  -q, --quiet             no per-object summary on standard error`;

export async function injectCommand(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv, strict: true, allowPositionals: false,
      options: {
        filename: { type: 'string', short: 'f' },
        ...SETTINGS_OPTIONS,
        quiet: { type: 'boolean', short: 'q' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    console.error(`authproxy inject: ${(e as Error).message.replace(/\. To specify.*$/s, '')}\n\n${HELP}`);
    return 2;
  }
  if (values.help) { console.log(HELP); return 0; }
  if (!values.filename) { console.error(`authproxy inject: -f FILE (or -f - for standard input) is required\n\n${HELP}`); return 2; }

  let settings;
  try {
    settings = await settingsFromFlags(values);
  } catch (e) {
    if (e instanceof ConfigError) { console.error(`authproxy inject: ${e.message}`); return 2; }
    throw e;
  }

  const source = values.filename === '-' ? 'stdin' : values.filename;
  let text: string;
  try {
    text = values.filename === '-' ? await readStdin() : await readFile(values.filename, 'utf8');
  } catch (e) {
    console.error(`authproxy inject: ${source}: cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    return 1;
  }

  let result;
  try {
    result = injectManifests(text, settings, source);
  } catch (e) {
    if (e instanceof ManifestError) { console.error(`authproxy inject: ${e.message}`); return 1; }
    throw e;
  }
  for (const r of result.reports) {
    const line = `${source}: document ${r.document}: ${r.kind.toLowerCase()}/${r.name} ${r.decision}${r.reason ? ` (${r.reason})` : ''}`;
    if (r.decision === 'refused') console.error(`authproxy inject: ${line}`);
    else if (!values.quiet) console.error(line);
  }
  if (result.refused) { console.error('authproxy inject: nothing written: fix the refused objects first'); return 1; }
  process.stdout.write(result.output);
  return 0;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}
