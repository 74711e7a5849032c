// node:http's functions, taken from the built-in module without an ESM import of it.
//
// `import { createServer } from 'node:http'` makes Node build that module's ESM namespace, which
// reads every export, and three of them (WebSocket, MessageEvent, CloseEvent) are getters that load
// Node's own bundled copy of undici (nodejs/node#59686). The sidecar never uses those classes (it
// forwards with the undici dependency), yet the one import cost 32–50 ms of start-up and ~3 MB of
// idle RSS (bench/FINDINGS.md, "Start-up"). Modules that need node:http's values import them from
// here; `import type` from 'node:http' is erased and costs nothing. test/cli/start-up-modules.test.ts
// keeps it that way.
const http = process.getBuiltinModule('node:http');

export const createServer = http.createServer;
export const request = http.request;
export const STATUS_CODES = http.STATUS_CODES;
