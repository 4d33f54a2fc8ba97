import { describe, expect, it } from 'vitest';
import { formatMxcUri, generateId, isValidMediaId, isValidServerName, parseMxcUri, splitServerName } from './ids.js';

describe('mxc URIs (client-server API, Matrix Content URIs)', () => {
  it.each([
    ['mxc://matrix.org/ascERGshawAWawugaAcauga', { serverName: 'matrix.org', mediaId: 'ascERGshawAWawugaAcauga' }],
    ['mxc://matrix.org:8448/abc-DEF_123', { serverName: 'matrix.org:8448', mediaId: 'abc-DEF_123' }],
    ['mxc://[1234:5678::abcd]/abc', { serverName: '[1234:5678::abcd]', mediaId: 'abc' }],
    ['mxc://1.2.3.4:5/x', { serverName: '1.2.3.4:5', mediaId: 'x' }],
  ])('accepts %s', (uri, parsed) => {
    expect(parseMxcUri(uri)).toEqual(parsed);
    expect(formatMxcUri(parsed.serverName, parsed.mediaId)).toBe(uri);
  });
  it.each([
    'mxc://127.0.0.1/../../../some_service/etc/passwd',
    'mxc://matrix.org/abc%2F..',
    'mxc://matrix.org/abc.def',
    'mxc://matrix_org/abc',
    'mxc://matrix.org/',
    'mxc:///abc',
    'https://matrix.org/abc',
    'mxc://matrix.org/a/b',
    'mxc://matrix.org:99999/abc',
    'mxc://[zz::1]/abc',
  ])('rejects %s', (uri) => {
    expect(parseMxcUri(uri)).toBeNull();
  });
});

describe('media IDs', () => {
  it.each(['a', 'A-z_09', 'x'.repeat(255)])('valid: %s', (id) => expect(isValidMediaId(id)).toBe(true));
  it.each(['', '..', 'a/b', 'a%2Fb', 'a\0b', 'a.b', 'é', 'x'.repeat(256), 'a b', 'a\nb'])('invalid: %j', (id) =>
    expect(isValidMediaId(id)).toBe(false),
  );
});

describe('server names (appendix grammar)', () => {
  it.each(['localhost', 'matrix.org', 'matrix.org:8448', '1.2.3.4', '1.2.3.4:80', '[::1]', '[1234:5678::abcd]:5678', 'a-b.c'])(
    'valid: %s',
    (name) => expect(isValidServerName(name)).toBe(true),
  );
  it.each(['', 'matrix_org', 'a/b', 'a:0', 'a:65536', 'a:', '[::1', '[::1]x', 'a b', 'é.org', '..%2F', 'x'.repeat(300), '[]'])(
    'invalid: %j',
    (name) => expect(isValidServerName(name)).toBe(false),
  );
  // Synapse's parse_and_validate_server_name: labels of [A-Za-z0-9-] joined by single dots.
  it.each(['..', '.', 'a..b', '.a', 'a.', '...', 'a.b.', '%2E%2E', '..:80', 'a_b.org', 'a b.org', 'a.b/c'])(
    'not a DNS name: %j',
    (name) => expect(isValidServerName(name)).toBe(false),
  );
  it.each(['1.2.3.999', '1.2', '999', '[1:2]', '[:::]', '[1::2::3]', '[12345::1]', '[::1]:0', '[::1]:'])(
    'not an IP literal: %j',
    (name) => expect(isValidServerName(name)).toBe(false),
  );
  it.each(['x-1.example.org', 'EXAMPLE.org:1', '[::ffff:1.2.3.4]', '[2001:db8::1]:8448', '255.255.255.255:65535', `${'a'.repeat(63)}.org`, 'a'])(
    'valid: %s',
    (name) => expect(isValidServerName(name)).toBe(true),
  );
  it('splits host and port', () => {
    expect(splitServerName('[::1]:8448')).toEqual({ host: '[::1]', port: 8448 });
    expect(splitServerName('example.org')).toEqual({ host: 'example.org', port: undefined });
  });
});

describe('generateId', () => {
  it('gives URL-safe IDs of the asked length, all different', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const id = generateId();
      expect(id).toMatch(/^[A-Za-z0-9_-]{24}$/);
      seen.add(id);
    }
    expect(seen.size).toBe(1000);
    expect(generateId(40)).toHaveLength(40);
  });
});
