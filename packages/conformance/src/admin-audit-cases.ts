import type { AdminAction, AdminAuditLog } from '@hsmedia/media-core';
import { describe, expect, it, type TestContext } from 'vitest';

function entry(overrides: Partial<AdminAction> = {}): AdminAction {
  return { action: 'quarantine', actor: '@admin:example.org', target: 'mxc://example.org/abc', reason: null, at: 1_700_000_000_000, ...overrides };
}

/**
 * Cases for the {@link AdminAuditLog} capability, run by
 * `describeAdminAuditLog` and, for stores that have it,
 * `describeMetadataStore` (which skips them otherwise).
 */
export function describeAdminAuditCases(log: (context: TestContext) => AdminAuditLog): void {
  describe('admin audit log (optional AdminAuditLog capability)', () => {
    it('records an action and reads it back exactly, with an ID', async (context) => {
      const subject = log(context);
      const full = entry({ reason: 'abuse ✓ \'; DROP TABLE x; --', at: 2 ** 53 - 1, target: 'x'.repeat(512) });
      const recorded = await subject.recordAdminAction(full);
      expect(recorded).toEqual({ ...full, id: expect.any(Number) as number });
      expect(await subject.listAdminActions({ limit: 10 })).toEqual([recorded]);
      const nulls = await subject.recordAdminAction(entry({ actor: null, reason: null, action: 'purge', target: 'remote_cache' }));
      expect(nulls.id).toBeGreaterThan(recorded.id);
      expect(await subject.listAdminActions({ limit: 10 })).toEqual([nulls, recorded]);
    });

    it('pages newest first, before a given ID', async (context) => {
      const subject = log(context);
      const ids: number[] = [];
      for (let index = 0; index < 5; index++) ids.push((await subject.recordAdminAction(entry({ at: index }))).id);
      const first = await subject.listAdminActions({ limit: 2 });
      expect(first.map((row) => row.id)).toEqual([ids[4], ids[3]]);
      const rest = await subject.listAdminActions({ limit: 10, before: first[1]!.id });
      expect(rest.map((row) => row.id)).toEqual([ids[2], ids[1], ids[0]]);
      expect(await subject.listAdminActions({ limit: 10, before: ids[0] })).toEqual([]);
    });

    it('filters by action and by target, together with paging', async (context) => {
      const subject = log(context);
      await subject.recordAdminAction(entry({ action: 'quarantine', target: 'mxc://example.org/a' }));
      await subject.recordAdminAction(entry({ action: 'delete', target: 'mxc://example.org/a' }));
      await subject.recordAdminAction(entry({ action: 'quarantine', target: '@bob:example.org' }));
      await subject.recordAdminAction(entry({ action: 'block_hash', target: 'f'.repeat(64) }));
      const quarantines = await subject.listAdminActions({ limit: 10, action: 'quarantine' });
      expect(quarantines.map((row) => row.target)).toEqual(['@bob:example.org', 'mxc://example.org/a']);
      const ofA = await subject.listAdminActions({ limit: 10, target: 'mxc://example.org/a' });
      expect(ofA.map((row) => row.action)).toEqual(['delete', 'quarantine']);
      const both = await subject.listAdminActions({ limit: 10, action: 'quarantine', target: 'mxc://example.org/a' });
      expect(both).toHaveLength(1);
      const paged = await subject.listAdminActions({ limit: 1, target: 'mxc://example.org/a', before: ofA[0]!.id });
      expect(paged.map((row) => row.action)).toEqual(['quarantine']);
      // Targets match exactly: no LIKE patterns, no case folding.
      expect(await subject.listAdminActions({ limit: 10, target: 'mxc://example.org/%' })).toEqual([]);
      expect(await subject.listAdminActions({ limit: 10, target: 'MXC://example.org/a' })).toEqual([]);
    });

    it('gives concurrent records distinct IDs', async (context) => {
      const subject = log(context);
      const recorded = await Promise.all(Array.from({ length: 8 }, (_, index) => subject.recordAdminAction(entry({ at: index }))));
      expect(new Set(recorded.map((row) => row.id)).size).toBe(8);
      expect(await subject.listAdminActions({ limit: 100 })).toHaveLength(8);
    });

    it('refuses malformed entries and queries and writes nothing', async (context) => {
      const subject = log(context);
      await expect(subject.recordAdminAction(entry({ action: 'nope' as AdminAction['action'] }))).rejects.toThrow(TypeError);
      await expect(subject.recordAdminAction(entry({ target: '' }))).rejects.toThrow(TypeError);
      await expect(subject.recordAdminAction(entry({ target: 'x'.repeat(513) }))).rejects.toThrow(TypeError);
      await expect(subject.recordAdminAction(entry({ reason: 'nul\0' }))).rejects.toThrow(TypeError);
      await expect(subject.recordAdminAction(entry({ actor: 'x'.repeat(256) }))).rejects.toThrow(TypeError);
      await expect(subject.recordAdminAction(entry({ at: 1.5 }))).rejects.toThrow(TypeError);
      await expect(subject.listAdminActions({ limit: 0 })).rejects.toThrow(TypeError);
      await expect(subject.listAdminActions({ limit: 10, before: 0 })).rejects.toThrow(TypeError);
      await expect(subject.listAdminActions({ limit: 10, action: 'nope' as AdminAction['action'] })).rejects.toThrow(TypeError);
      expect(await subject.listAdminActions({ limit: 10 })).toEqual([]);
    });
  });
}
