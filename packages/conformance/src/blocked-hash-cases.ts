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

    it('imports many entries at once: new ones added, listed and repeated hashes keep their first entry', async (context) => {
      const subject = list(context);
      expect(await subject.blockHash(entry(hash('2'), { reason: 'kept' }))).toBe(true);
      const many = Array.from({ length: 1_203 }, (_, index) => entry(index.toString(16).padStart(64, '0'), { reason: `r${index}`, blockedAt: index }));
      const added = await subject.blockHashes([entry(hash('2'), { reason: 'ignored' }), entry(hash('1'), { reason: 'first' }), entry(hash('1'), { reason: 'repeat' }), ...many]);
      expect(added).toBe(1 + many.length);
      const all = await subject.listBlockedHashes({ limit: 10_000 });
      expect(all).toHaveLength(2 + many.length);
      expect(all.filter((row) => row.sha256 === hash('1') || row.sha256 === hash('2'))).toEqual([entry(hash('1'), { reason: 'first' }), entry(hash('2'), { reason: 'kept' })]);
      expect(all.find((row) => row.sha256 === many[500]!.sha256)).toEqual(many[500]);
      expect(await subject.blockHashes(many)).toBe(0);
      expect(await subject.blockHashes([])).toBe(0);
    });

    it('imports nothing when any entry is malformed (all or nothing)', async (context) => {
      const subject = list(context);
      const good = Array.from({ length: 700 }, (_, index) => entry(index.toString(16).padStart(64, '0')));
      await expect(subject.blockHashes([...good, entry('G'.repeat(64))])).rejects.toThrow(TypeError);
      await expect(subject.blockHashes([entry(hash('a')), entry(hash('b'), { reason: 'x'.repeat(1001) })])).rejects.toThrow(TypeError);
      expect(await subject.listBlockedHashes({ limit: 10 })).toEqual([]);
      expect(await subject.isHashBlocked(good[0]!.sha256)).toBe(false);
    });

    it('searches by hash prefix or reason substring (ASCII case-insensitive, LIKE wildcards taken literally), with paging', async (context) => {
      const subject = list(context);
      await subject.blockHashes([
        entry(hash('a'), { reason: 'Spam wave' }),
        entry(`ab${hash('0').slice(2)}`, { reason: '100% sure_thing' }),
        entry(hash('b'), { reason: null }),
        entry(hash('c'), { reason: 'csam list' }),
      ]);
      const search = async (text: string, after?: string): Promise<string[]> =>
        (await subject.listBlockedHashes({ limit: 10, search: text, ...(after === undefined ? {} : { after }) })).map((row) => row.sha256.slice(0, 2));
      expect(await search('a')).toEqual(['aa', 'ab', 'cc']);
      expect(await search('AB')).toEqual(['ab']);
      expect(await search('SPAM')).toEqual(['aa']);
      expect(await search('100%')).toEqual(['ab']);
      expect(await search('0%')).toEqual(['ab']);
      expect(await search('%')).toEqual(['ab']);
      expect(await search('e_t')).toEqual(['ab']);
      expect(await search('_')).toEqual(['ab']);
      expect(await search('a', hash('a'))).toEqual(['ab', 'cc']);
      expect(await search('zz')).toEqual([]);
      await expect(subject.listBlockedHashes({ limit: 10, search: '' })).rejects.toThrow(TypeError);
      await expect(subject.listBlockedHashes({ limit: 10, search: 'x'.repeat(256) })).rejects.toThrow(TypeError);
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
