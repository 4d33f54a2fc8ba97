import { describe, expect, it } from 'vitest';
import { UploadWaiters } from './upload-waiters.js';

describe('UploadWaiters', () => {
  it('wakes every waiter of a key at once and only that key', async () => {
    const waiters = new UploadWaiters();
    let woken = 0;
    const a1 = waiters.wait('a', 600_000).then(() => woken++);
    const a2 = waiters.wait('a', 600_000).then(() => woken++);
    const b = waiters.wait('b', 10);
    expect(waiters.size).toBe(3);
    waiters.notify('a');
    await Promise.all([a1, a2]);
    expect(woken).toBe(2);
    await b;
    expect(waiters.size).toBe(0);
  });

  it('resolves after the time limit when nobody notifies', async () => {
    const waiters = new UploadWaiters();
    await waiters.wait('a', 5);
    expect(waiters.size).toBe(0);
  });

  it('rejects with the abort reason and unregisters', async () => {
    const waiters = new UploadWaiters();
    const controller = new AbortController();
    const waiting = waiters.wait('a', 600_000, controller.signal);
    controller.abort(new Error('gone'));
    await expect(waiting).rejects.toThrow('gone');
    expect(waiters.size).toBe(0);
    await expect(waiters.wait('a', 600_000, controller.signal)).rejects.toThrow('gone');
  });

  it('ignores notifications nobody waits for', () => {
    expect(() => new UploadWaiters().notify('nobody')).not.toThrow();
  });
});
