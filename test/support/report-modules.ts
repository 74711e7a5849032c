// Preloaded into a sidecar under test (NODE_OPTIONS=--import): at exit, writes what the process
// loaded as one JSON line on stderr, for tests about what a start pulls in: `builtins`, Node's own
// record of its built-in modules (process.moduleLoadList, undocumented, present since Node 0.x),
// and `files`, the URL of every module loaded from disk after this one (a module.registerHooks
// load hook). stderr is a pipe in tests, and pipe writes are synchronous on Linux, so the line is
// not lost.
import { registerHooks } from 'node:module';

const files: string[] = [];
registerHooks({ load(url, context, nextLoad) { if (url.startsWith('file:')) files.push(url); return nextLoad(url, context); } });
const { moduleLoadList } = process as unknown as { moduleLoadList: string[] };
process.on('exit', () => {
  process.stderr.write(`${JSON.stringify({ msg: 'loaded modules', builtins: moduleLoadList, files })}\n`);
});
