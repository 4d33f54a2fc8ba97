import { describe, expect, it } from 'vitest';
import { createAddressPolicy } from './policy.js';

describe('createAddressPolicy', () => {
  it('allows only public addresses by default', () => {
    const policy = createAddressPolicy();
    expect(policy('8.8.8.8')).toBe(true);
    expect(policy('2606:4700::1111')).toBe(true);
    for (const ip of ['127.0.0.1', '::1', '10.0.0.1', '169.254.169.254', '::ffff:127.0.0.1', 'fd00::1', 'nonsense']) {
      expect(policy(ip)).toBe(false);
    }
  });

  it('allows listed CIDRs and single addresses', () => {
    const policy = createAddressPolicy({ allow: ['127.0.0.1/32', '10.20.0.0/16', 'fd00::5'] });
    expect(policy('127.0.0.1')).toBe(true);
    expect(policy('::ffff:127.0.0.1')).toBe(true);
    expect(policy('127.0.0.2')).toBe(false);
    expect(policy('10.20.3.4')).toBe(true);
    expect(policy('10.21.3.4')).toBe(false);
    expect(policy('fd00::5')).toBe(true);
    expect(policy('fd00::6')).toBe(false);
  });

  it('denies extra ranges, and the most specific entry wins', () => {
    const policy = createAddressPolicy({ allow: ['10.0.0.0/8', '8.8.8.8'], deny: ['10.0.0.1', '8.8.8.0/24', '1.1.1.0/24'] });
    expect(policy('10.0.0.1')).toBe(false);
    expect(policy('10.0.0.2')).toBe(true);
    expect(policy('8.8.8.8')).toBe(true);
    expect(policy('8.8.8.9')).toBe(false);
    expect(policy('1.1.1.1')).toBe(false);
    expect(policy('1.0.0.1')).toBe(true);
  });

  it('a tie between allow and deny refuses', () => {
    expect(createAddressPolicy({ allow: ['10.0.0.0/8'], deny: ['10.0.0.0/8'] })('10.1.1.1')).toBe(false);
  });

  it('never allows unspecified addresses', () => {
    const policy = createAddressPolicy({ allow: ['0.0.0.0/0', '::/0'] });
    expect(policy('0.0.0.0')).toBe(false);
    expect(policy('::')).toBe(false);
    expect(policy('::ffff:0.0.0.0')).toBe(false);
    expect(policy('10.0.0.1')).toBe(true);
  });

  it('rejects malformed entries at construction', () => {
    expect(() => createAddressPolicy({ allow: ['localhost'] })).toThrow(TypeError);
    expect(() => createAddressPolicy({ deny: ['10.0.0.0/33'] })).toThrow(TypeError);
    expect(() => createAddressPolicy({ allow: ['127.1'] })).toThrow(TypeError);
  });
});
