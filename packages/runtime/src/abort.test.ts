import { describe, expect, it } from 'vitest';
import { raceAbort, signalOf } from './index.js';

describe('signalOf', () => {
  it('gives a signal as it is, calls a function, keeps undefined', () => {
    const controller = new AbortController();
    expect(signalOf(controller.signal)).toBe(controller.signal);
    let calls = 0;
    expect(signalOf(() => (calls++, controller.signal))).toBe(controller.signal);
    expect(calls).toBe(1);
    expect(signalOf(undefined)).toBeUndefined();
  });
});

describe('raceAbort', () => {
  it('settles with the promise when the signal never fires', async () => {
    await expect(raceAbort(Promise.resolve(7), new AbortController().signal)).resolves.toBe(7);
    await expect(raceAbort(Promise.reject(new Error('boom')), undefined)).rejects.toThrow('boom');
  });
  it('rejects with the abort reason and leaves the shared work running', async () => {
    const controller = new AbortController();
    let finish!: (value: number) => void;
    const shared = new Promise<number>((resolve) => (finish = resolve));
    const waiting = raceAbort(shared, () => controller.signal);
    controller.abort(new Error('left'));
    await expect(waiting).rejects.toThrow('left');
    finish(3);
    await expect(shared).resolves.toBe(3);
  });
  it('rejects at once when already aborted', async () => {
    await expect(raceAbort(new Promise(() => undefined), AbortSignal.abort(new Error('gone')))).rejects.toThrow('gone');
  });
});
