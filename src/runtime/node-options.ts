// The Node.js options a production sidecar runs with; the image (Dockerfile NODE_OPTIONS),
// `npm start` and the benchmark use these same values.
//
// Why: under load V8's default young generation (16 MB semi-spaces) let the heap balloon to ~285 MB
// RSS and made each scavenge pause ~10 ms, which is the p99. 4 MB semi-spaces scavenge more often
// but in ~2 ms and halve peak RSS, for 0–10% more CPU (bench/FINDINGS.md, profile of 2026-11-23). The
// old-space cap bounds what a leak or a huge policy set can take before the pod is restarted.
export const PRODUCTION_NODE_OPTIONS = '--max-semi-space-size=4 --max-old-space-size=128';

// The environment the image sets besides NODE_OPTIONS (the benchmark runs the sidecar with it too).
// MALLOC_ARENA_MAX: glibc gives each thread that allocates (libuv's pool, V8's helpers) an arena of
// its own, and the memory freed into them is not handed back; two arenas took the peak RSS after a
// saturation run from 119–121 MB to 111–112 MB with no change in CPU per request (2026-11-23, 3
// interleaved rounds). A common setting for JVMs and Node in containers.
export const PRODUCTION_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };
