import fc from 'fast-check';

// another-json differs from the spec in two documented ways: it sorts keys by
// UTF-16 unit and writes other C0 controls as `\U00XX`. The arbitraries stay
// clear of both (BMP keys without surrogates; no other C0 controls).
const safeChar = fc.oneof(
  fc.integer({ min: 0x20, max: 0xd7ff }).map((c) => String.fromCharCode(c)),
  fc.integer({ min: 0xe000, max: 0xffff }).map((c) => String.fromCharCode(c)),
  fc.constantFrom('\b', '\t', '\n', '\f', '\r', '"', '\\', '/'),
);
const bmpString = fc.array(safeChar, { maxLength: 12 }).map((a) => a.join(''));
// eslint-disable-next-line no-control-regex -- keeps control characters out of the generated text
const anyText = fc.oneof(bmpString, fc.string({ unit: 'binary', maxLength: 12 }).filter((s) => !/[\x00-\x1f]/.test(s)));

/** Random JSON in the canonical domain, shared by the cross-checks. */
export const canonicalValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.integer({ min: -(2 ** 53) + 1, max: 2 ** 53 - 1 }),
    anyText,
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(bmpString, tie('value'), { maxKeys: 6 }),
  ),
})).value;

