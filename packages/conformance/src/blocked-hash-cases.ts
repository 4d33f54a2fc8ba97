import type { BlockedHash, BlockedHashes } from '@hsmedia/media-core';
import { describe, expect, it, type TestContext } from 'vitest';

const hash = (digit: string): string => digit.repeat(64);

function entry(sha256: string, overrides: Partial<BlockedHash> = {}): BlockedHash {
  return { sha256, reason: null, blockedBy: null, blockedAt: 1_700_000_000_000, ...overrides };
}

/**
 * Cases for the {@link BlockedHashes} capability, run by
 * `describeBlockedHashes` and, for stores that have it,
 * `describeMetadataStore` (which skips them otherwise).
 */
export function describeBlockedHashCases(list: (context: TestContext) => BlockedHashes): void {
  describe('blocked hashes (optional BlockedHashes capability)', () => {
    it('blocks, answers and unblocks a hash, keeping every field exactly', async (context) => {
      const subject = list(context);
      const full = entry(hash('a'), { reason: 'abuse ✓ \'; DROP TABLE x; --', blockedBy: '@admin:example.org', blockedAt: 2 ** 53 - 1 });
      expect(await subject.isHashBlocked(full.sha256)).toBe(false);
      expect(await subject.blockHash(full)).toBe(true);
      expect(await subject.isHashBlocked(full.sha256)).toBe(true);
      expect(await subject.listBlockedHashes({ limit: 10 })).toEqual([full]);
      expect(await subject.unblockHash(full.sha256)).toBe(true);
      expect(await subject.unblockHash(full.sha256)).toBe(false);
      expect(await subject.isHashBlocked(full.sha256)).toBe(false);
      expect(await subject.listBlockedHashes({ limit: 10 })).toEqual([]);
    });

    it('keeps the first entry when a hash is blocked again', async (context) => {
      const subject = list(context);
      expect(await subject.blockHash(entry(hash('b'), { reason: 'first' }))).toBe(true);
      expect(await subject.blockHash(entry(hash('b'), { reason: 'second', blockedAt: 5 }))).toBe(false);
      expect(await subject.listBlockedHashes({ limit: 10 })).toEqual([entry(hash('b'), { reason: 'first' })]);
    });

    it('lets exactly one of several concurrent blocks of one hash insert it', async (context) => {
      const subject = list(context);
      const results = await Promise.all(Array.from({ length: 8 }, (_, index) => subject.blockHash(entry(hash('c'), { blockedAt: index }))));
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await subject.listBlockedHashes({ limit: 10 })).toHaveLength(1);
    });

    it('pages the list in hash order after a given hash', async (context) => {
      const subject = list(context);
      for (const digit of ['3', '1', 'f', '2', 'a']) expect(await subject.blockHash(entry(hash(digit)))).toBe(true);
      const first = await subject.listBlockedHashes({ limit: 2 });
      expect(first.map((row) => row.sha256)).toEqual([hash('1'), hash('2')]);
      const rest = await subject.listBlockedHashes({ limit: 10, after: first[1]!.sha256 });
      expect(rest.map((row) => row.sha256)).toEqual([hash('3'), hash('a'), hash('f')]);
    });

    it('answers "not blocked" for malformed hashes and refuses malformed entries and pages', async (context) => {
      const subject = list(context);
      expect(await subject.isHashBlocked('A'.repeat(64))).toBe(false);
      expect(await subject.isHashBlocked('bad\0hash')).toBe(false);
      expect(await subject.unblockHash('x'.repeat(300))).toBe(false);
      await expect(subject.blockHash(entry('A'.repeat(64)))).rejects.toThrow(TypeError);
      await expect(subject.blockHash(entry(hash('d').slice(1)))).rejects.toThrow(TypeError);
      await expect(subject.blockHash(entry(hash('d'), { reason: 'nul\0' }))).rejects.toThrow(TypeError);
      await expect(subject.blockHash(entry(hash('d'), { blockedBy: 'x'.repeat(256) }))).rejects.toThrow(TypeError);
      await expect(subject.blockHash(entry(hash('d'), { blockedAt: 1.5 }))).rejects.toThrow(TypeError);
      await expect(subject.listBlockedHashes({ limit: 0 })).rejects.toThrow(TypeError);
      await expect(subject.listBlockedHashes({ limit: 10, after: 'nope' })).rejects.toThrow(TypeError);
      // Nothing was written by the refused calls.
      expect(await subject.listBlockedHashes({ limit: 10 })).toEqual([]);
    });
  });
}
