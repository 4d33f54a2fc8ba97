#!/usr/bin/env node
// Long-running decoder fuzz against the built package.
//   npx tsc -b packages/multipart && node packages/multipart/scripts/fuzz.mjs [seconds=60] [seed=random]
// Exits 1 (printing the seed, case number and input) on any failure that is
// not a typed MultipartError, a broken invariant, or if heap use keeps growing.
import * as api from '../dist/index.js';
import { fuzz } from '../test/fuzz-lib.mjs';

const seconds = Number(process.argv[2] ?? 60);
const firstSeed = Number(process.argv[3] ?? Math.floor(Math.random() * 2 ** 31));
const deadline = Date.now() + seconds * 1000;
const totals = {};
let cases = 0;
let peakHeap = 0;
let round = 0;
console.log(`multipart fuzz: ${seconds}s, first seed ${firstSeed}`);
try {
  while (Date.now() < deadline) {
    const seed = firstSeed + round++;
    const { iterations, counts } = await fuzz(api, {
      seed,
      iterations: 2000,
      deadline,
      onCase: () => {
        const h = process.memoryUsage().heapUsed;
        if (h > peakHeap) peakHeap = h;
      },
    });
    cases += iterations;
    for (const [k, v] of Object.entries(counts)) totals[k] = (totals[k] ?? 0) + v;
  }
} catch (err) {
  console.error(String(err.message));
  if (err.input) console.error(JSON.stringify(err.input));
  process.exit(1);
}
const mib = (n) => (n / 2 ** 20).toFixed(1);
console.log(`cases ${cases} in ${round} rounds; outcomes ${JSON.stringify(totals)}`);
console.log(`peak heap ${mib(peakHeap)} MiB, max RSS ${mib(process.resourceUsage().maxRSS * 1024)} MiB`);
if (peakHeap > 512 * 2 ** 20) {
  console.error('heap grew past 512 MiB: unbounded memory?');
  process.exit(1);
}
