import { describe, expect, it } from 'vitest';
import { isValidServerName, parseServerName } from './server-name.js';

// https://spec.matrix.org/v1.12/appendices/#server-name
describe('server name grammar', () => {
  it.each([
    'matrix.org',
    'matrix.org:8888',
    '1.2.3.4',
    '1.2.3.4:1234',
    '[1234:5678::abcd]',
    '[1234:5678::abcd]:5678',
    '127.0.0.1:18448',
    'localhost',
    'MATRIX.ORG',
    'a-b.example',
    '[::1]:8448',
    '[::ffff:1.2.3.4]',
  ])('accepts %s', (name) => {
    expect(isValidServerName(name)).toBe(true);
  });

  it.each([
    '',
    'matrix.org:',
    'matrix.org:0',
    'matrix.org:65536',
    'matrix.org:123456',
    'matrix.org:8a',
    'matrix_org',
    'matrix.org/path',
    'user@matrix.org',
    'matrix..org',
    '.matrix.org',
    '256.1.1.1',
    '1234:5678::abcd',
    '[1234:5678::abcd',
    '[1234:5678::abcd]x',
    '[g::1]',
    '[]',
    'ex ample.org',
    'a'.repeat(256),
    'dom\\ain',
  ])('rejects %j', (name) => {
    expect(isValidServerName(name)).toBe(false);
  });

  it('splits host and port', () => {
    expect(parseServerName('example.org:8448')).toEqual({ host: 'example.org', port: 8448, kind: 'dns' });
    expect(parseServerName('[::1]:80')).toEqual({ host: '[::1]', port: 80, kind: 'ipv6' });
    expect(parseServerName('1.2.3.4')).toEqual({ host: '1.2.3.4', kind: 'ipv4' });
  });
});
