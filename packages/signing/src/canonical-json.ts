import { CanonicalJsonError } from './errors.js';

/** A JSON value as Matrix signs it. */
export type JsonValue = null | boolean | number | string | readonly JsonValue[] | JsonObject;
/** A JSON object as Matrix signs it. */
export interface JsonObject {
  readonly [key: string]: JsonValue;
}

/** Deepest nesting accepted; deeper input is refused rather than overflowing the stack. */
const MAX_DEPTH = 512;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Compares two strings by Unicode code point.
 *
 * The default `Array.prototype.sort` compares UTF-16 code units, which puts
 * supplementary-plane characters (surrogates D800–DFFF) before BMP characters
 * E000–FFFF; code-point order puts them after (spec appendix "Canonical JSON":
 * keys are sorted by code point). Shifting the two ranges at the first
 * differing unit gives code-point order without decoding.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let ca = a.charCodeAt(i);
    let cb = b.charCodeAt(i);
    if (ca !== cb) {
      if (ca >= 0xd800) ca += ca >= 0xe000 ? -0x800 : 0x2000;
      if (cb >= 0xd800) cb += cb >= 0xe000 ? -0x800 : 0x2000;
      return ca - cb;
    }
  }
  return a.length - b.length;
}

/**
 * Encodes a value as Matrix Canonical JSON (spec appendix "Canonical JSON").
 *
 * Keys are sorted by code point, there is no insignificant whitespace,
 * numbers must be integers in `[-(2**53)+1, 2**53-1]` (`-0` becomes `0`),
 * and strings use the short escapes plus lower-case `\u00XX` for other
 * control characters; everything else is emitted raw.
 *
 * @throws {CanonicalJsonError} for values with no canonical form.
 * @example
 * encodeCanonicalJson({ b: '2', a: 1 }); // '{"a":1,"b":"2"}'
 */
export function encodeCanonicalJson(value: unknown): string {
  return encode(value, '', 0, new Set());
}

/** {@link encodeCanonicalJson} as the UTF-8 bytes that get signed. */
export function canonicalJsonBytes(value: unknown): Uint8Array {
  return new Uint8Array(Buffer.from(encodeCanonicalJson(value), 'utf8'));
}

function encodeString(s: string, path: string): string {
  if (LONE_SURROGATE.test(s)) throw new CanonicalJsonError('String contains a lone surrogate', path);
  // For well-formed strings ES2019 JSON.stringify escapes exactly `"`, `\`, the
  // short escapes and other C0 controls as lower-case \u00xx: the canonical grammar.
  return JSON.stringify(s);
}

function encode(value: unknown, path: string, depth: number, seen: Set<object>): string {
  switch (typeof value) {
    case 'string':
      return encodeString(value, path);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isSafeInteger(value)) {
        throw new CanonicalJsonError(`Number ${String(value)} is not an integer in [-(2**53)+1, 2**53-1]`, path);
      }
      return Object.is(value, -0) ? '0' : String(value);
    case 'object': {
      if (value === null) return 'null';
      if (depth >= MAX_DEPTH) throw new CanonicalJsonError(`Nesting deeper than ${MAX_DEPTH}`, path);
      if (seen.has(value)) throw new CanonicalJsonError('Cyclic structure', path);
      seen.add(value);
      try {
        if (Array.isArray(value)) {
          const parts: string[] = [];
          for (let i = 0; i < value.length; i++) parts.push(encode(value[i], `${path}/${i}`, depth + 1, seen));
          return `[${parts.join(',')}]`;
        }
        const proto: unknown = Object.getPrototypeOf(value);
        if (proto !== Object.prototype && proto !== null) {
          throw new CanonicalJsonError('Only plain objects and arrays can be encoded', path);
        }
        const keys = Object.keys(value).sort(compareCodePoints);
        const parts: string[] = [];
        for (const key of keys) {
          const child = `${path}/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`;
          const encodedKey = encodeString(key, child);
          parts.push(`${encodedKey}:${encode((value as Record<string, unknown>)[key], child, depth + 1, seen)}`);
        }
        return `{${parts.join(',')}}`;
      } finally {
        seen.delete(value);
      }
    }
    default:
      throw new CanonicalJsonError(`Cannot encode a value of type ${typeof value}`, path);
  }
}
