// The two undici classes the sidecar forwards with, loaded from their own modules. undici's index
// also loads fetch, WebSocket, EventSource, the mock and cache layers and the proxy agents: 109
// modules where these need 22. Measured on the compiled build, 6 starts each, alternating: ready
// 385 → 321 ms (median) and idle RSS 3 MB lower. Types come from the package index as usual;
// test/forward/undici.test.ts checks that these are the very classes the index exports, so an
// undici release that moves them fails the tests, not production. (The token client and JWKS
// fetcher load the full index when they are used; they are not on the start-up path.)
import { createRequire } from 'node:module';
import type { Agent as AgentClass, Pool as PoolClass } from 'undici';

const load = createRequire(import.meta.url);

export const Pool = load('undici/lib/dispatcher/pool.js') as typeof PoolClass;
export const Agent = load('undici/lib/dispatcher/agent.js') as typeof AgentClass;
export type Pool = PoolClass;
export type Agent = AgentClass;
