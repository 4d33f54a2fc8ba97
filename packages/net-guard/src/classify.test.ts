import { describe, expect, it } from 'vitest';
import { classifyAddress } from './classify.js';

// Pure classification: nothing here opens a socket.
describe('classifyAddress', () => {
  const nonPublic: ReadonlyArray<readonly [string, string]> = [
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['10.0.0.1', 'private'],
    ['10.255.255.255', 'private'],
    ['100.64.0.1', 'carrier-grade-nat'],
    ['100.127.255.254', 'carrier-grade-nat'],
    ['127.0.0.1', 'loopback'],
    ['127.0.0.2', 'loopback'],
    ['127.255.255.255', 'loopback'],
    ['169.254.169.254', 'link-local'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.0.0.8', 'ietf-protocol-assignments'],
    ['192.0.2.1', 'documentation'],
    ['192.88.99.1', '6to4-relay-anycast'],
    ['192.168.1.1', 'private'],
    ['198.18.0.1', 'benchmarking'],
    ['198.19.255.255', 'benchmarking'],
    ['198.51.100.7', 'documentation'],
    ['203.0.113.9', 'documentation'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['255.255.255.254', 'reserved'],
    ['255.255.255.255', 'broadcast'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['::7f00:1', 'ipv4-compatible'],
    ['::ffff:127.0.0.1', 'ipv4-mapped:loopback'],
    ['::ffff:7f00:1', 'ipv4-mapped:loopback'],
    ['::ffff:10.1.2.3', 'ipv4-mapped:private'],
    ['::ffff:169.254.169.254', 'ipv4-mapped:link-local'],
    ['64:ff9b::a9fe:a9fe', 'nat64:link-local'],
    ['64:ff9b::127.0.0.1', 'nat64:loopback'],
    ['64:ff9b:1::1', 'nat64-local'],
    ['100::1', 'discard-only'],
    ['2001:2::1', 'ietf-protocol-assignments'],
    ['2001:1ff::1', 'ietf-protocol-assignments'],
    ['2001::1', 'teredo'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'teredo'],
    ['2001:db8::1', 'documentation'],
    ['2002:7f00:1::1', '6to4:loopback'],
    ['2002:c0a8:101::1', '6to4:private'],
    ['fc00::1', 'unique-local'],
    ['fd12:3456::1', 'unique-local'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['febf::1', 'link-local'],
    ['fec0::1', 'site-local'],
    ['ff02::1', 'multicast'],
    ['4000::1', 'reserved'],
  ];
  it.each(nonPublic)('%s is not public (%s)', (ip, range) => {
    expect(classifyAddress(ip)).toEqual({ public: false, range });
  });

  const publicOnes: readonly string[] = [
    '1.1.1.1',
    '8.8.8.8',
    '9.255.255.255',
    '11.0.0.0',
    '100.63.255.255',
    '100.128.0.0',
    '126.255.255.255',
    '128.0.0.0',
    '169.253.255.255',
    '172.15.255.255',
    '172.32.0.0',
    '192.0.1.1',
    '192.88.98.255',
    '192.167.255.255',
    '192.169.0.0',
    '198.17.255.255',
    '198.20.0.0',
    '223.255.255.255',
    '2001:200::1',
    '2001:4860:4860::8888',
    '2606:4700::1111',
    '2a00:1450::1',
  ];
  it.each(publicOnes)('%s is public', (ip) => {
    expect(classifyAddress(ip)).toEqual({ public: true, range: 'public' });
  });

  it('judges embedded public IPv4 addresses as public', () => {
    expect(classifyAddress('::ffff:8.8.8.8')).toEqual({ public: true, range: 'ipv4-mapped:public' });
    expect(classifyAddress('64:ff9b::808:808')).toEqual({ public: true, range: 'nat64:public' });
    expect(classifyAddress('2002:808:808::1')).toEqual({ public: true, range: '6to4:public' });
  });

  it.each(['', 'localhost', '127.1', '0x7f000001', '2130706433', '0177.0.0.1', '1.2.3.4.5', '256.0.0.1', '::g', '[::1]', ' 1.1.1.1'])(
    'refuses non-canonical or invalid text %j',
    (text) => {
      expect(classifyAddress(text)).toEqual({ public: false, range: 'invalid' });
    },
  );
});
