import { mkdir, utimes, writeFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { noopLogger } from '@hsmedia/runtime';
import { createSqliteMetadataStore } from '@hsmedia/store-sqlite';
import { describe, expect, it } from 'vitest';
import { createJobScheduler } from '../src/background-jobs.js';
import { sweepStaleStaging } from '../src/staging-sweep.js';
import { tempDir } from './helpers.js';

describe('sweepStaleStaging', () => {
  it('removes only stale files named like the store writes them, and answers 0 without a staging directory', async () => {
    const dir = await tempDir();
    try {
      expect(await sweepStaleStaging(dir.path, 1000)).toBe(0);
      const staging = join(dir.path, 'staging');
      await mkdir(staging);
      const now = Date.now();
      await writeFile(join(staging, 'oldUpload_1.tmp'), 'x');
      await writeFile(join(staging, 'liveUpload_2.tmp'), 'x');
      await writeFile(join(staging, 'not-ours.txt'), 'x');
      await mkdir(join(staging, 'dir.tmp'));
      const old = new Date(now - 2 * 3600_000);
      await utimes(join(staging, 'oldUpload_1.tmp'), old, old);
      await utimes(join(staging, 'not-ours.txt'), old, old);
      await utimes(join(staging, 'dir.tmp'), old, old);
      expect(await sweepStaleStaging(dir.path, 3600_000, now)).toBe(1);
      expect((await readdir(staging)).sort()).toEqual(['dir.tmp', 'liveUpload_2.tmp', 'not-ours.txt']);
    } finally {
      await dir.cleanup();
    }
  });
});

describe('createJobScheduler', () => {
  it('runs a job on one of two schedulers sharing a store, and again after the holder closes', async () => {
    const dir = await tempDir();
    const store = await createSqliteMetadataStore({ path: join(dir.path, 'media.db') });
    try {
      const first = createJobScheduler(store, noopLogger);
      const second = createJobScheduler(store, noopLogger);
      expect(first.holder).not.toBe(second.holder);
      const runs: string[] = [];
      const job = (who: string) => async () => {
        runs.push(who);
        return {};
      };
      expect(await first.runOnce('sweep', 60_000, job('first'))).toBe(true);
      expect(await second.runOnce('sweep', 60_000, job('second'))).toBe(false);
      // The holder renews its own lease.
      expect(await first.runOnce('sweep', 60_000, job('first'))).toBe(true);
      await first.close();
      expect(await second.runOnce('sweep', 60_000, job('second'))).toBe(true);
      expect(runs).toEqual(['first', 'first', 'second']);
      // A failing job is logged, not thrown, and still counts as run.
      expect(await second.runOnce('failing', 60_000, async () => Promise.reject(new Error('boom')))).toBe(true);
      await second.close();
      expect(await second.runOnce('sweep', 60_000, job('second'))).toBe(false);
    } finally {
      await store.close();
      await dir.cleanup();
    }
  });
});
