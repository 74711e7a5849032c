#!/usr/bin/env node
// Thin launcher: the CLI is TypeScript run by Node 24's built-in type stripping.
//
// Node's compile cache keeps each module's stripped and compiled form between runs, keyed by its
// source, so from the second start on neither the stripper (amaro) nor the parser runs: ready
// ~520 → ~320 ms and ~25 MB less RSS (bench/README.md, "Start-up"). The cache lives in this
// checkout's node_modules/.cache, not the shared default under /tmp that another local user
// could write into. The import is dynamic so that the cache is on before the first module loads.
import { enableCompileCache } from 'node:module';
import { join } from 'node:path';

enableCompileCache(join(import.meta.dirname, '../node_modules/.cache/authproxy-compile'));
await import('../src/cli/main.ts');
