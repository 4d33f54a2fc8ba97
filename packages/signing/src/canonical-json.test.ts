import { createRequire } from 'node:module';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalValue } from '../test/arbitraries.js';
import { canonicalJsonBytes, compareCodePoints, encodeCanonicalJson } from './canonical-json.js';
import { CanonicalJsonError, isCanonicalJsonError } from './errors.js';

const anotherJson = createRequire(import.meta.url)('another-json') as { stringify(value: unknown): string };

// https://spec.matrix.org/v1.12/appendices/#canonical-json (the examples)
describe('encodeCanonicalJson: spec examples', () => {
  const cases: [string, string][] = [
    ['{}', '{}'],
    ['{ "one": 1, "two": "Two" }', '{"one":1,"two":"Two"}'],
    ['{ "b": "2", "a": "1" }', '{"a":"1","b":"2"}'],
    ['{"b":"2","a":"1"}', '{"a":"1","b":"2"}'],
    ['{ "a": "日本語" }', '{"a":"日本語"}'],
    ['{ "本": 2, "日": 1 }', '{"日":1,"本":2}'],
    ['{ "a": "\\u65E5" }', '{"a":"日"}'],
    ['{ "a": null }', '{"a":null}'],
    ['{ "a": -0, "b": 1e10 }', '{"a":0,"b":10000000000}'],
    [
      '{"auth":{"success":true,"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe","three_pids":[{"medium":"email","address":"john.doe@example.org"},{"medium":"msisdn","address":"123456789"}]}}}',
      '{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe","three_pids":[{"address":"john.doe@example.org","medium":"email"},{"address":"123456789","medium":"msisdn"}]},"success":true}}',
    ],
  ];
  it.each(cases)('%s', (input, output) => {
    expect(encodeCanonicalJson(JSON.parse(input))).toBe(output);
  });
});

// Edges of the grammar and of the integer range: https://spec.matrix.org/v1.12/appendices/#canonical-json
describe('encodeCanonicalJson: edge vectors', () => {
  it('sorts keys by code point, not UTF-16 unit', () => {
    const value = { '\u{1F600}': 2, '\uFF61': 1 };
    expect(Buffer.from(canonicalJsonBytes(value)).toString('hex')).toBe('7b22efbda1223a312c22f09f9880223a327d');
    expect(encodeCanonicalJson(value)).not.toBe('{"😀":2,"｡":1}');
  });

  it('escapes controls as the spec grammar says (lower-case \\u00XX, raw U+007F)', () => {
    const value = { a: '\u0000\u0007\u0008\u0009\u000a\u000b\u000c\u000d\u001f"\\\u007f' };
    expect(Buffer.from(canonicalJsonBytes(value)).toString('hex')).toBe(
      '7b2261223a225c75303030305c75303030375c625c745c6e5c75303030625c665c725c75303031665c225c5c7f227d',
    );
  });

  it('emits /, non-ASCII and astral characters raw', () => {
    expect(encodeCanonicalJson({ a: '/é😀' })).toBe('{"a":"/é😀"}');
  });

  it('accepts the integer range limits and rejects beyond', () => {
    expect(encodeCanonicalJson([2 ** 53 - 1, -(2 ** 53) + 1])).toBe('[9007199254740991,-9007199254740991]');
    expect(() => encodeCanonicalJson(2 ** 53)).toThrow(CanonicalJsonError);
    expect(() => encodeCanonicalJson(-(2 ** 53))).toThrow(CanonicalJsonError);
  });

  it.each([
    ['a float', { a: 1.5 }, '/a'],
    ['NaN', [Number.NaN], '/0'],
    ['Infinity', { x: [Infinity] }, '/x/0'],
    ['a lone high surrogate', { a: '\uD800' }, '/a'],
    ['a lone low surrogate in a key', { '\uDC00': 1 }, '/\uDC00'],
    ['undefined', { a: undefined }, '/a'],
    ['a bigint', { a: 1n }, '/a'],
    ['a function', [() => 1], '/0'],
    ['a Date', { d: new Date(0) }, '/d'],
    ['a Map', new Map(), ''],
  ])('rejects %s', (_name, value, path) => {
    let caught: unknown;
    try {
      encodeCanonicalJson(value);
    } catch (error) {
      caught = error;
    }
    expect(isCanonicalJsonError(caught)).toBe(true);
    expect((caught as CanonicalJsonError).path).toBe(path);
  });

  it('rejects cycles and excessive depth, but allows shared (acyclic) references', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    expect(() => encodeCanonicalJson(cyclic)).toThrow(/Cyclic/);
    let deep: unknown = 1;
    for (let i = 0; i < 600; i++) deep = [deep];
    expect(() => encodeCanonicalJson(deep)).toThrow(/Nesting/);
    const shared = { x: 1 };
    expect(encodeCanonicalJson({ a: shared, b: shared })).toBe('{"a":{"x":1},"b":{"x":1}}');
  });

  it('accepts null-prototype objects', () => {
    const o = Object.create(null) as Record<string, number>;
    o['b'] = 1;
    o['a'] = 2;
    expect(encodeCanonicalJson(o)).toBe('{"a":2,"b":1}');
  });
});

const codePoints = (s: string): number[] => Array.from(s, (c) => c.codePointAt(0) as number);

describe('compareCodePoints', () => {
  it('orders like a code point array comparison, for any strings', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' }), (a, b) => {
        const x = codePoints(a);
        const y = codePoints(b);
        let expected = x.length - y.length;
        for (let i = 0; i < Math.min(x.length, y.length); i++) {
          if (x[i] !== y[i]) {
            expected = (x[i] as number) - (y[i] as number);
            break;
          }
        }
        expect(Math.sign(compareCodePoints(a, b))).toBe(Math.sign(expected));
      }),
      { numRuns: 2000 },
    );
  });

  it('orders like UTF-8 bytes', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' }), (a, b) => {
        expect(Math.sign(compareCodePoints(a, b))).toBe(Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b))));
      }),
    );
  });
});

describe('encodeCanonicalJson cross-checked', () => {
  it('matches another-json on random values', () => {
    fc.assert(
      fc.property(canonicalValue, (value) => {
        expect(encodeCanonicalJson(value)).toBe(String(anotherJson.stringify(value)));
      }),
      { numRuns: 1000 },
    );
  });

  it('round-trips through JSON.parse and is idempotent', () => {
    fc.assert(
      fc.property(canonicalValue, (value) => {
        const text = encodeCanonicalJson(value);
        expect(encodeCanonicalJson(JSON.parse(text))).toBe(text);
        // No insignificant whitespace: none is left once string literals are removed.
        expect(text.replace(/"(?:[^"\\]|\\.)*"/g, '""')).not.toMatch(/\s/);
      }),
      { numRuns: 500 },
    );
  });
});
