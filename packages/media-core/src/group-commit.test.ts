import { describe, expect, it } from 'vitest';
import { GroupCommit } from './group-commit.js';

// The group commit of MediaImports (blob syncs and row inserts of an import): one flush for the items
// handed in together, later ones in the next flush, errors to all waiters of the failed flush.

function deferred(): { promise: Promise<void>; resolve(): void; reject(err: unknown): void } {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A group commit of blob syncs, as MediaImports makes one: no cap, no result per item. */
function syncs(flush: (ids: readonly string[]) => Promise<void>): GroupCommit<string, void> {
  return new GroupCommit<string, void>(async (ids) => {
    await flush(ids);
    return ids.map(() => undefined);
  }, Number.MAX_SAFE_INTEGER);
}

describe('GroupCommit', () => {
  it('flushes the blobs asked for together in one call', async () => {
    const calls: string[][] = [];
    const batcher = syncs(async (ids) => void calls.push([...ids]));
    await Promise.all(['a', 'b', 'c'].map((id) => batcher.submit(id)));
    expect(calls).toEqual([['a', 'b', 'c']]);
  });

  it('resolves a waiter only after the flush that covers its blob, and batches those arriving during a flush', async () => {
    const calls: string[][] = [];
    const gates: ReturnType<typeof deferred>[] = [];
    const batcher = syncs((ids) => {
      calls.push([...ids]);
      const gate = deferred();
      gates.push(gate);
      return gate.promise;
    });
    const done: string[] = [];
    const first = batcher.submit('a').then(() => done.push('a'));
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toEqual([['a']]);
    const later = [batcher.submit('b').then(() => done.push('b')), batcher.submit('c').then(() => done.push('c'))];
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
    const batcher = syncs(async () => {
      if (fail) throw new Error('EIO');
    });
    const results = await Promise.allSettled([batcher.submit('a'), batcher.submit('b')]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    fail = false;
    await expect(batcher.submit('c')).resolves.toBeUndefined();
  });

  it('answers each item its own result, at most maxBatch per flush, and refuses a flush that answers the wrong count', async () => {
    const sizes: number[] = [];
    const doubling = new GroupCommit<number, number>(async (items) => {
      sizes.push(items.length);
      return items.map((item) => item * 2);
    }, 2);
    expect(await Promise.all([1, 2, 3, 4, 5].map((item) => doubling.submit(item)))).toEqual([2, 4, 6, 8, 10]);
    expect(sizes).toEqual([2, 2, 1]);
    const short = new GroupCommit<number, number>(async () => [1], 10);
    await expect(Promise.all([short.submit(1), short.submit(2)])).rejects.toThrow(/answered 1 results for 2 items/);
    expect(() => new GroupCommit<number, number>(async () => [], 0)).toThrow(RangeError);
  });
});
