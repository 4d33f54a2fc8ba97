import { describe, expect, it } from 'vitest';
import * as api from '@hsmedia/multipart';
import { fuzz, runOne, seeds } from './fuzz-lib.mjs';

// Bounded, seeded fuzz loop: every mutated body gives a typed error or a
// result, never a crash or a hang. Longer runs: `node scripts/fuzz.mjs`.
describe('decoder fuzz (bounded)', () => {
  it('unmutated corpus decodes as expected', async () => {
    for (const s of seeds()) {
      const out = await runOne(api, s.ct, s.body, [s.body]);
      if (s.valid) expect(['content', 'location']).toContain(out.outcome);
      else expect(['MALFORMED', 'TRUNCATED']).toContain(out.outcome);
    }
  });

  it('1500 mutated inputs: only typed errors or results', async () => {
    const seed = Number(process.env['MULTIPART_FUZZ_SEED'] ?? 20240611);
    const { iterations, counts } = await fuzz(api, { seed, iterations: 1500 });
    expect(iterations).toBe(1500);
    // The mutations reach every outcome, so the loop is not testing one path only.
    expect(Object.keys(counts).sort()).toEqual(['MALFORMED', 'TOO_LARGE', 'TRUNCATED', 'content', 'location']);
  });
});
