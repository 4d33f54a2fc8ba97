import { describe, expect, it } from 'vitest';
import { booleanParam, fileNameParam, lookupQuery, nonNegativeIntParam, queryParam } from './query-params.js';

function invalid(run: () => unknown): void {
  expect(run).toThrow(expect.objectContaining({ errcode: 'M_INVALID_PARAM' }));
}

describe('query parameters', () => {
  it('reads single values form-decoded and refuses repeated ones', () => {
    expect(queryParam(new URLSearchParams('filename=a+b%2Bc'), 'filename')).toBe('a b+c');
    expect(queryParam(new URLSearchParams(''), 'filename')).toBeUndefined();
    invalid(() => queryParam(new URLSearchParams('filename=a&filename=b'), 'filename'));
  });

  it('parses non-negative integers and booleans', () => {
    expect(nonNegativeIntParam(new URLSearchParams('n=42'), 'n')).toBe(42);
    expect(nonNegativeIntParam(new URLSearchParams(''), 'n', 7)).toBe(7);
    for (const raw of ['-1', '1.5', 'soon', '1234567890123456', '']) invalid(() => nonNegativeIntParam(new URLSearchParams({ n: raw }), 'n'));
    expect(booleanParam(new URLSearchParams('b=false'), 'b', true)).toBe(false);
    expect(booleanParam(new URLSearchParams(''), 'b', true)).toBe(true);
    invalid(() => booleanParam(new URLSearchParams('b=yes'), 'b', true));
  });

  it('lookup queries: timeout_ms everywhere, allow_remote only on legacy routes, allow_redirect ignored', () => {
    expect(lookupQuery('', false)).toBe(lookupQuery('', true));
    expect(lookupQuery('timeout_ms=0', false)).toEqual({ timeoutMs: 0, allowRemote: true });
    expect(lookupQuery('allow_remote=false', false)).toEqual({ timeoutMs: undefined, allowRemote: true });
    expect(lookupQuery('allow_remote=false&allow_redirect=true', true)).toEqual({ timeoutMs: undefined, allowRemote: false });
    expect(lookupQuery('allow_redirect=whatever', true)).toEqual({ timeoutMs: undefined, allowRemote: true });
    invalid(() => lookupQuery('timeout_ms=soon', false));
    invalid(() => lookupQuery('allow_remote=maybe', true));
  });

  it('bounds the /{fileName} segment', () => {
    expect(fileNameParam(undefined)).toBeUndefined();
    expect(fileNameParam('a.png')).toBe('a.png');
    invalid(() => fileNameParam('x'.repeat(256)));
  });
});
