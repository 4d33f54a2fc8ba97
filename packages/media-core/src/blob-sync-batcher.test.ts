import { describe, expect, it } from 'vitest';
import { BlobSyncBatcher } from './blob-sync-batcher.js';

// The group commit of MediaImports (issue 24's import speed): one flush for
// the blobs asked for together, later ones in the next flush, errors to all
// waiters of the failed flush.

function deferred(): { promise: Promise<void>; resolve(): void; reject(err: unknown): void } {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('BlobSyncBatcher', () => {
  it('flushes the blobs asked for together in one call', async () => {
    const calls: string[][] = [];
    const batcher = new BlobSyncBatcher(async (ids) => void calls.push([...ids]));
    await Promise.all(['a', 'b', 'c'].map((id) => batcher.sync(id)));
    expect(calls).toEqual([['a', 'b', 'c']]);
  });

  it('resolves a waiter only after the flush that covers its blob, and batches those arriving during a flush', async () => {
    const calls: string[][] = [];
    const gates: ReturnType<typeof deferred>[] = [];
    const batcher = new BlobSyncBatcher((ids) => {
      calls.push([...ids]);
      const gate = deferred();
      gates.push(gate);
      return gate.promise;
    });
    const done: string[] = [];
    const first = batcher.sync('a').then(() => done.push('a'));
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toEqual([['a']]);
    const later = [batcher.sync('b').then(() => done.push('b')), batcher.sync('c').then(() => done.push('c'))];
    expect(done).toEqual([]);
    gates[0]!.resolve();
    await first;
    expect(done).toEqual(['a']);
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toEqual([['a'], ['b', 'c']]);
    expect(done).toEqual(['a']);
    gates[1]!.resolve();
    await Promise.all(later);
    expect(done).toEqual(['a', 'b', 'c']);
  });

  it('rejects every waiter of a failed flush, and flushes again for the next', async () => {
    let fail = true;
    const batcher = new BlobSyncBatcher(async () => {
      if (fail) throw new Error('EIO');
    });
    const results = await Promise.allSettled([batcher.sync('a'), batcher.sync('b')]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    fail = false;
    await expect(batcher.sync('c')).resolves.toBeUndefined();
  });
});
