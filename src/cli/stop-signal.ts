// The signal that stops a long-running command (SIGTERM from Kubernetes, SIGINT from a terminal).
// Commands ask for it before they start anything: a listener added only after the "ready" or
// "listening" line is out leaves a moment in which a signal sent on seeing that line takes Node's
// default action and kills the process without a drain (test/e2e/lifecycle.test.ts). A signal that
// arrives while the command is still starting is kept until it asks.
//
// release() removes the listeners, for a command whose start failed: it has nothing to drain, and
// while the listeners are installed SIGTERM and SIGINT do nothing at all.
export function stopSignal(): Promise<NodeJS.Signals> & { release(): void } {
  let onTerm = (): void => {};
  let onInt = (): void => {};
  const received = new Promise<NodeJS.Signals>((resolve) => {
    onTerm = () => resolve('SIGTERM');
    onInt = () => resolve('SIGINT');
    process.once('SIGTERM', onTerm);
    process.once('SIGINT', onInt);
  });
  return Object.assign(received, { release: () => { process.off('SIGTERM', onTerm); process.off('SIGINT', onInt); } });
}

// SIGHUP reopens the audit log, for logrotate's `postrotate` (`kill -HUP`) after it moved the
// file; nginx reopens its logs on USR1 and Envoy on SIGUSR1, but Node reserves SIGUSR1 for its
// inspector. Listened for from the start, like the stop signals: Node's default action for SIGHUP
// kills the process with no drain and no flush. A SIGHUP before start-up is done has nothing to
// reopen (the file was just opened) and is ignored.
export function reopenSignal(): (reopen: () => void) => void {
  let handler: (() => void) | null = null;
  process.on('SIGHUP', () => handler?.());
  return (reopen) => { handler = reopen; };
}
