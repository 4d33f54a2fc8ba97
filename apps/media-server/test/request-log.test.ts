import { describe, expect, it } from 'vitest';
import { redactRequestTarget } from '../src/request-log.js';

describe('redactRequestTarget', () => {
  it.each([
    ['/a', '/a'],
    ['/a?b=1', '/a?b=1'],
    ['/a?access_token=abc', '/a?access_token=[redacted]'],
    ['/a?x=1&access_token=abc&y=2', '/a?x=1&access_token=[redacted]&y=2'],
    ['/a?access_token=abc&access_token=def', '/a?access_token=[redacted]&access_token=[redacted]'],
    ['/a?access%5Ftoken=abc', '/a?access%5Ftoken=[redacted]'],
    ['/a?access_token', '/a?access_token=[redacted]'],
    ['/a?my_access_token=abc', '/a?my_access_token=abc'],
    ['/a?access_token=%zz', '/a?access_token=[redacted]'],
    ['/a?%zz=1', '/a?%zz=1'],
    // Percent-encoded anywhere in the name (the fast path only skips queries without '%' or the plain name).
    ['/a?width=96&%61ccess_token=abc', '/a?width=96&%61ccess_token=[redacted]'],
    ['/a?width=96&height=96&method=crop', '/a?width=96&height=96&method=crop'],
  ])('%s → %s', (input, output) => {
    expect(redactRequestTarget(input)).toBe(output);
  });
});
