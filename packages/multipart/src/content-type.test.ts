import { describe, expect, it } from 'vitest';
import { isWritableBoundary, parseBoundary } from './content-type.js';
import { MultipartParseError } from './errors.js';

describe('parseBoundary', () => {
  const ok: Array<[string, string]> = [
    ['multipart/mixed; boundary=abc', 'abc'],
    ['multipart/mixed;boundary=abc', 'abc'],
    ['multipart/mixed; boundary="abc"', 'abc'],
    ['multipart/mixed; boundary="a b:c"', 'a b:c'],
    ['multipart/mixed; boundary="a\\"b"', 'a"b'],
    ['Multipart/Mixed; BOUNDARY=abc', 'abc'],
    ['multipart/mixed; charset=utf-8; boundary=abc', 'abc'],
    ['multipart/mixed; boundary=abc; charset=utf-8', 'abc'],
    ['multipart/mixed; x="q;boundary=no"; boundary=yes', 'yes'],
    ['multipart/mixed; boundary = abc ;', 'abc'],
    ['multipart/related; boundary=abc', 'abc'],
    ['multipart/mixed; boundary=gc0p4Jq0M2Yt08jU534c0p', 'gc0p4Jq0M2Yt08jU534c0p'],
  ];
  for (const [ct, want] of ok) it(`${ct} → ${want}`, () => expect(parseBoundary(ct)).toBe(want));

  const bad = [
    'application/json; boundary=abc',
    'multipart; boundary=abc',
    'multipart/mixed',
    'multipart/mixed; boundary=',
    'multipart/mixed; boundary=""',
    'multipart/mixed; boundary="abc',
    'multipart/mixed; boundary=a; boundary=b',
    `multipart/mixed; boundary=${'x'.repeat(201)}`,
    'multipart/mixed; boundary=caf\u00e9',
    'multipart/mixed; boundary',
  ];
  for (const ct of bad) it(`rejects ${JSON.stringify(ct)}`, () => expect(() => parseBoundary(ct)).toThrow(MultipartParseError));
});

describe('isWritableBoundary', () => {
  it('accepts token-safe bchars only, 1-70 long', () => {
    expect(isWritableBoundary('6f1b0e0c3c5e4a5b9d2f7a8e1c4b3d2a')).toBe(true);
    expect(isWritableBoundary("a'+_.-Z9")).toBe(true);
    expect(isWritableBoundary('x'.repeat(70))).toBe(true);
    for (const b of ['', 'x'.repeat(71), 'a b', 'a:b', 'a=b', 'a/b', 'a"b', 'a;b']) expect(isWritableBoundary(b)).toBe(false);
  });
});
