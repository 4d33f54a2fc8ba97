import type { JobLeases } from '@hsmedia/media-core';
import { describe, expect, it, type TestContext } from 'vitest';

/** Waits `ms` of real time (lease expiry uses the store's own clock). */
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Cases for the {@link JobLeases} capability, run by `describeJobLeases` and,
 * for stores that have it, `describeMetadataStore` (which skips them otherwise).
 */
export function describeJobLeaseCases(leases: (context: TestContext) => JobLeases): void {
  describe('job leases (optional JobLeases capability)', () => {

    it('grants a free lease, refuses it to a second holder, renews it for the first', async (context) => {
      const subject = leases(context);
      expect(await subject.tryAcquireLease('cleanup', 'instance-a', 60_000)).toBe(true);
      expect(await subject.tryAcquireLease('cleanup', 'instance-b', 60_000)).toBe(false);
      expect(await subject.tryAcquireLease('cleanup', 'instance-a', 60_000)).toBe(true);
      expect(await subject.tryAcquireLease('cleanup', 'instance-b', 60_000)).toBe(false);
    });

    it('keeps leases of different names apart', async (context) => {
      const subject = leases(context);
      expect(await subject.tryAcquireLease('job-one', 'instance-a', 60_000)).toBe(true);
      expect(await subject.tryAcquireLease('job-two', 'instance-b', 60_000)).toBe(true);
      expect(await subject.tryAcquireLease('Job-One', 'instance-b', 60_000)).toBe(true);
    });

    it('releases only for the holder, then lets another holder take it', async (context) => {
      const subject = leases(context);
      expect(await subject.tryAcquireLease('cleanup', 'instance-a', 60_000)).toBe(true);
      expect(await subject.releaseLease('cleanup', 'instance-b')).toBe(false);
      expect(await subject.tryAcquireLease('cleanup', 'instance-b', 60_000)).toBe(false);
      expect(await subject.releaseLease('cleanup', 'instance-a')).toBe(true);
      expect(await subject.releaseLease('cleanup', 'instance-a')).toBe(false);
      expect(await subject.tryAcquireLease('cleanup', 'instance-b', 60_000)).toBe(true);
    });

    it('answers false when releasing a lease that never existed', async (context) => {
      expect(await leases(context).releaseLease('never-taken', 'instance-a')).toBe(false);
    });

    it('lets another holder take an expired lease, after which the old holder is refused', async (context) => {
      const subject = leases(context);
      expect(await subject.tryAcquireLease('cleanup', 'crashed', 1)).toBe(true);
      await sleep(20);
      expect(await subject.tryAcquireLease('cleanup', 'instance-b', 60_000)).toBe(true);
      expect(await subject.tryAcquireLease('cleanup', 'crashed', 60_000)).toBe(false);
      expect(await subject.releaseLease('cleanup', 'crashed')).toBe(false);
    });

    it('grants a contended lease to exactly one of several concurrent holders', async (context) => {
      const subject = leases(context);
      const holders = Array.from({ length: 8 }, (_, index) => `instance-${index}`);
      const results = await Promise.all(holders.map((holder) => subject.tryAcquireLease('contended', holder, 60_000)));
      expect(results.filter(Boolean)).toHaveLength(1);
      const winner = holders[results.indexOf(true)]!;
      expect(await subject.tryAcquireLease('contended', winner, 60_000)).toBe(true);
    });

    it('refuses an empty name or holder and a ttl that is not a positive integer', async (context) => {
      const subject = leases(context);
      await expect(subject.tryAcquireLease('', 'instance-a', 1000)).rejects.toThrow();
      await expect(subject.tryAcquireLease('cleanup', '', 1000)).rejects.toThrow();
      await expect(subject.tryAcquireLease('bad\0name', 'instance-a', 1000)).rejects.toThrow();
      await expect(subject.tryAcquireLease('x'.repeat(256), 'instance-a', 1000)).rejects.toThrow();
      await expect(subject.tryAcquireLease('cleanup', 'instance-a', 0)).rejects.toThrow();
      await expect(subject.tryAcquireLease('cleanup', 'instance-a', -5)).rejects.toThrow();
      await expect(subject.tryAcquireLease('cleanup', 'instance-a', 1.5)).rejects.toThrow();
      await expect(subject.releaseLease('', 'instance-a')).rejects.toThrow();
      // Nothing was taken by the refused calls.
      expect(await subject.tryAcquireLease('cleanup', 'instance-b', 1000)).toBe(true);
    });
  });
}
