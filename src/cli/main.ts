// Entry point: picks the subcommand, everything else is the `run` command (flags only = run).
// Each subcommand lives in its own module and is loaded only when used, so `authproxy certs`
// does not pay for the proxy's start-up and the proxy does not load the issuer.

type Command = (argv: string[]) => Promise<number>;

const COMMANDS: Record<string, () => Promise<Command>> = {
  run: async () => (await import('./run.ts')).runCommand,
  certs: async () => (await import('./certs.ts')).certsCommand,
  policy: async () => (await import('./policy.ts')).policyCommand,
  audit: async () => (await import('./audit.ts')).auditCommand,
  issuer: async () => (await import('./issuer.ts')).issuerCommand,
  inject: async () => (await import('./inject.ts')).injectCommand,
  injector: async () => (await import('./injector.ts')).injectorCommand,
};

const USAGE = `usage:
  authproxy --upstream URL [flags]        run; with no certificates given: dev mode
  authproxy run --config authproxy.yaml   run from a config file (flags override)
  authproxy certs init|issue|csr|sign|pfx|inspect
  authproxy policy check|test|explain|replay
  authproxy audit verify --ca BUNDLE FILE...  check the audit log's signed seals
  authproxy issuer                        local dev token issuer (OAuth2/OIDC)
  authproxy inject -f FILE|-              add the sidecar to Kubernetes manifests
  authproxy injector                      Kubernetes mutating admission webhook

run 'authproxy <command> --help' for a command's flags`;

export async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === 'help' || first === '-h' || first === '--help') {
    console.log(USAGE);
    return first === undefined ? 2 : 0;
  }
  const load = COMMANDS[first];
  if (load) return (await load())(rest);
  if (first.startsWith('-')) return (await COMMANDS.run!())(argv);
  console.error(`authproxy: unknown command '${first}'\n\n${USAGE}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => { if (code !== 0 || !process.exitCode) process.exitCode = code; },
  (err: unknown) => {
    console.error(`authproxy: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
