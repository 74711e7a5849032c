#!/usr/bin/env node
// Thin launcher: the CLI is TypeScript run by Node 24's built-in type stripping.
import '../src/cli/main.ts';
