// The signal that stops a long-running command (SIGTERM from Kubernetes, SIGINT from a terminal).
// Commands ask for it before they start anything: a listener added only after the "ready" or
// "listening" line is out leaves a moment in which a signal sent on seeing that line takes Node's
// default action and kills the process without a drain (test/e2e/lifecycle.test.ts). A signal that
// arrives while the command is still starting is kept until it asks.
export function stopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
}
