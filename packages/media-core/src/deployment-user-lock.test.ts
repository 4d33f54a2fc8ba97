import { systemClock } from '@hsmedia/runtime';
import { describe, expect, it } from 'vitest';
import { DeploymentUserLock } from './deployment-user-lock.js';
import { MemoryMetadataStore } from './memory/memory-metadata-store.js';

// Two locks with different holders on one lease store stand for two processes of a deployment.

describe('DeploymentUserLock', () => {
  it('runs the steps of one key one at a time across holders, and of different keys side by side', async () => {
    const leases = new MemoryMetadataStore();
    const processes = [1, 2].map((n) => new DeploymentUserLock({ leases, holder: `process-${n}`, clock: systemClock }));
    let inside = 0;
    let most = 0;
    const step = async (): Promise<void> => {
      inside++;
      most = Math.max(most, inside);
      await new Promise((resolve) => setTimeout(resolve, 2));
      inside--;
    };
    await Promise.all(Array.from({ length: 20 }, (_, i) => processes[i % 2]!.run('quota:@alice:example.org', step)));
    expect(most).toBe(1);
    // Released after each step: nothing is left held.
    expect(await leases.tryAcquireLease('user:quota:@alice:example.org', 'someone-else', 1_000)).toBe(true);

    let together = 0;
    let bothInside = false;
    let meetAll: () => void = () => undefined;
    const met = new Promise<void>((resolve) => (meetAll = resolve));
    const meet = async (): Promise<void> => {
      together++;
      if (together === 2) {
        bothInside = true;
        meetAll();
      }
      await met;
    };
    await Promise.all([processes[0]!.run('quota:@bob:example.org', meet), processes[1]!.run('quota:@carol:example.org', meet)]);
    expect(bothInside).toBe(true);
  });

  it('refuses with 429 M_LIMIT_EXCEEDED, without running the step, while another holder keeps the lease past maxWaitMs', async () => {
    const leases = new MemoryMetadataStore();
    expect(await leases.tryAcquireLease('user:quota:@alice:example.org', 'stuck-process', 60_000)).toBe(true);
    const lock = new DeploymentUserLock({ leases, holder: 'me', clock: systemClock, maxWaitMs: 50 });
    let ran = false;
    const refused = await lock
      .run('quota:@alice:example.org', async () => {
        ran = true;
      })
      .catch((error: unknown) => error);
    expect(ran).toBe(false);
    expect(refused).toMatchObject({ errcode: 'M_LIMIT_EXCEEDED', httpStatus: 429 });
  });

  it('takes over the lease of a holder that died once its TTL ran out', async () => {
    const leases = new MemoryMetadataStore();
    expect(await leases.tryAcquireLease('user:quota:@alice:example.org', 'dead-process', 30)).toBe(true);
    const lock = new DeploymentUserLock({ leases, holder: 'me', clock: systemClock, maxWaitMs: 10_000 });
    await expect(lock.run('quota:@alice:example.org', () => Promise.resolve('ran'))).resolves.toBe('ran');
  });

  it('names over-long keys by their SHA-256, so any user ID fits the lease table', async () => {
    const leases = new MemoryMetadataStore();
    const lock = new DeploymentUserLock({ leases, holder: 'me', clock: systemClock });
    const longUser = `@${'a'.repeat(250)}:example.org`;
    await expect(lock.run(`quota:${longUser}`, () => Promise.resolve(1))).resolves.toBe(1);
  });
});
