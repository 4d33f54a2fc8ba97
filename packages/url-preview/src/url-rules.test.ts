import { describe, expect, it } from 'vitest';
import { compileUrlDenyRules } from './url-rules.js';

describe('compileUrlDenyRules', () => {
  const deny = compileUrlDenyRules([
    { host: '*.internal.example' },
    { host: 'example.com', path: '/admin*' },
    { url: '^https?://[^/]*\\.onion(/|$)' },
    { scheme: 'http', port: '8080' },
  ]);

  it.each([
    ['https://a.internal.example/', true],
    ['https://internal.example/', false],
    ['https://EXAMPLE.com/admin/x', true],
    ['https://example.com/public', false],
    ['http://abc.onion/x', true],
    ['http://a.example:8080/', true],
    ['https://a.example:8080/', false],
  ])('%s denied: %s', (url, denied) => {
    expect(deny(new URL(url))).toBe(denied);
  });

  it('reports every malformed rule', () => {
    const problems: string[] = [];
    compileUrlDenyRules([{}, { host: '' }, { url: '^(' }, { hots: 'x' } as never], problems);
    expect(problems.length).toBeGreaterThanOrEqual(4);
  });
});
