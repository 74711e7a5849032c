// Preloaded into a sidecar under test (NODE_OPTIONS=--import): at exit, writes the built-in
// modules the process loaded as one JSON line on stderr, for tests about what start-up pulls in.
// process.moduleLoadList is Node's own record of them (undocumented, present since Node 0.x).
// stderr is a pipe in tests, and pipe writes are synchronous on Linux, so the line is not lost.
const { moduleLoadList } = process as unknown as { moduleLoadList: string[] };
process.on('exit', () => {
  process.stderr.write(`${JSON.stringify({ msg: 'loaded modules', modules: moduleLoadList })}\n`);
});
