import { describe, expect, it } from 'vitest';
import { isClamdError } from './clamd-error.js';
import { parseScanReply, parseVersionReply } from './clamd-reply.js';

describe('parseScanReply', () => {
  it('reads clean and infected answers', () => {
    expect(parseScanReply('stream: OK')).toEqual({ verdict: 'clean' });
    expect(parseScanReply('stream: Eicar-Signature FOUND')).toEqual({ verdict: 'infected', signature: 'Eicar-Signature' });
    expect(parseScanReply('stream: Win.Test.EICAR_HDB-1 FOUND')).toEqual({ verdict: 'infected', signature: 'Win.Test.EICAR_HDB-1' });
  });

  it('turns clamd errors and garbage into typed errors', () => {
    const codeOf = (reply: string): string | undefined => {
      try {
        parseScanReply(reply);
        return undefined;
      } catch (err) {
        return isClamdError(err) ? err.code : 'untyped';
      }
    };
    expect(codeOf('INSTREAM size limit exceeded. ERROR')).toBe('size_limit');
    expect(codeOf('Can\'t allocate memory ERROR')).toBe('clamd');
    expect(codeOf('stream: OK!')).toBe('protocol');
    expect(codeOf('stream:  FOUND')).toBe('protocol');
    expect(codeOf('stream: \u0001bad FOUND')).toBe('protocol');
    expect(codeOf('HTTP/1.1 400 Bad Request')).toBe('protocol');
    expect(codeOf('')).toBe('protocol');
  });
});

describe('parseVersionReply', () => {
  it('accepts clamd version lines only', () => {
    expect(parseVersionReply('ClamAV 1.4.6/27480/Mon Dec  7 10:00:00 2026')).toBe('ClamAV 1.4.6/27480/Mon Dec  7 10:00:00 2026');
    expect(() => parseVersionReply('PONG')).toThrow(/not a version/);
  });
});
