// Preload (--import) for memory-phases.ts: samples V8's heap and malloc statistics every 50 ms
// inside the process and writes the peaks to $MEMORY_PHASES_OUT after each sample (the harness
// reads the file while the process still runs). `peak_malloced_memory` is V8's own count of what
// its compilers' and parser's zones took from malloc: memory the JS heap figures never show.
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';
import { writeFileSync } from 'node:fs';

const out = process.env.MEMORY_PHASES_OUT;
if (out) {
  const peak = { heapPhysicalKb: 0, oldSpaceKb: 0, newSpaceKb: 0, codeSpaceKb: 0, v8MallocPeakKb: 0 };
  const kb = (n: number): number => Math.round(n / 1024);
  setInterval(() => {
    const h = getHeapStatistics();
    peak.heapPhysicalKb = Math.max(peak.heapPhysicalKb, kb(h.total_physical_size));
    peak.v8MallocPeakKb = kb(h.peak_malloced_memory);
    for (const s of getHeapSpaceStatistics()) {
      const size = kb(s.physical_space_size);
      if (s.space_name === 'old_space') peak.oldSpaceKb = Math.max(peak.oldSpaceKb, size);
      else if (s.space_name === 'new_space') peak.newSpaceKb = Math.max(peak.newSpaceKb, size);
      else if (s.space_name === 'code_space') peak.codeSpaceKb = Math.max(peak.codeSpaceKb, size);
    }
    writeFileSync(out, JSON.stringify(peak));
  }, 50).unref();
}
