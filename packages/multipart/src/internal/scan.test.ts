import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { findPattern, needles, scanBody } from './scan.js';

describe('findPattern', () => {
  it('agrees with Buffer.indexOf on random haystacks with planted and near-miss patterns', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[0-9A-Za-z'+_.-]{1,70}$/),
        fc.array(fc.tuple(fc.nat({ max: 20_000 }), fc.nat({ max: 3 })), { maxLength: 6 }),
        fc.nat({ max: 40_000 }),
        fc.nat({ max: 30_000 }),
        (boundary, plants, size, from) => {
          const n = needles(boundary);
          const h = randomBytes(size);
          for (const [at, kind] of plants) {
            // full pattern, or a prefix of it (near miss), at a random place
            const piece = kind === 0 ? n.pattern : n.pattern.subarray(0, Math.max(1, n.pattern.length - kind));
            piece.copy(h, Math.min(at, Math.max(0, size - piece.length)));
          }
          const start = Math.min(from, size);
          expect(findPattern(h, start, n)).toBe(h.indexOf(n.pattern, start));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('adversarial input (every window ends like the pattern) still agrees', () => {
    const n = needles('aaaa');
    const h = Buffer.alloc(100_000, 'a');
    expect(findPattern(h, 0, n)).toBe(-1);
    h.write('\n--aaaa', 77_777);
    expect(findPattern(h, 0, n)).toBe(77_777);
  });
});

describe('scanBody', () => {
  const n = needles('XYZ');
  const b = (s: string) => Buffer.from(s, 'latin1');
  it('finds CRLF and LF delimiters and their kinds', () => {
    expect(scanBody(b('abc\r\n--XYZ--'), 0, n, false, false)).toEqual({ found: true, contentEnd: 3, kind: 'close', next: 12 });
    expect(scanBody(b('abc\n--XYZ \t\r\nH'), 0, n, false, false)).toEqual({ found: true, contentEnd: 3, kind: 'part', next: 13 });
    expect(scanBody(b('--XYZ\r\n'), 0, n, true, false)).toMatchObject({ found: true, contentEnd: 0, kind: 'part' });
    expect(scanBody(b('abc\r\n--XYZ'), 0, n, false, true)).toMatchObject({ found: true, contentEnd: 3, kind: 'end' });
  });
  it('holds back a possible delimiter start, and nothing else', () => {
    expect(scanBody(b('abcdef'), 0, n, false, false)).toEqual({ found: false, safeEnd: 6 });
    expect(scanBody(b('abc\r'), 0, n, false, false)).toEqual({ found: false, safeEnd: 3 });
    expect(scanBody(b('abc\r\n--X'), 0, n, false, false)).toEqual({ found: false, safeEnd: 3 });
    expect(scanBody(b('abc\r\n--XYZ  '), 0, n, false, false)).toEqual({ found: false, safeEnd: 3 });
    expect(scanBody(b('abc\r\n--XYQ'), 0, n, false, false)).toEqual({ found: false, safeEnd: 10 });
  });
  it('does not take a boundary followed by other text for a delimiter', () => {
    expect(scanBody(b('a\r\n--XYZabc'), 0, n, false, false)).toEqual({ found: false, safeEnd: 11 });
    expect(scanBody(b('a\r\n--XYZ-b'), 0, n, false, false)).toEqual({ found: false, safeEnd: 10 });
  });
});
