import { describe, expect, it } from 'vitest';
import { ContentTooLargeError } from '@hsmedia/errors';
import { RemoteMediaError } from './errors.js';
import { takePushBody, type BodySink } from './file-body.js';
import { RemoteTee, type RemoteTeeOptions } from './remote-tee.js';

/** A remote body the test drives, recording whether it was cancelled. */
function scriptedBody(): {
  body: ReadableStream<Uint8Array>;
  push(n: number, fill?: number): void;
  end(): void;
  fail(error: unknown): void;
  cancelled: () => unknown;
} {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let cancelReason: unknown = undefined;
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
    cancel(reason) {
      cancelReason = reason ?? 'cancelled';
    },
  });
  return {
    body,
    push: (n, fill = 1) => controller.enqueue(new Uint8Array(n).fill(fill)),
    end: () => controller.close(),
    fail: (error) => controller.error(error),
    cancelled: () => cancelReason,
  };
}

function tee(body: ReadableStream<Uint8Array>, overrides: Partial<RemoteTeeOptions> = {}): { tee: RemoteTee; windows: () => number } {
  let windows = 0;
  const t = new RemoteTee(body, {
    maxBytes: 1000,
    liveBufferBytes: 100,
    storeBufferBytes: 100,
    windowBytes: 50,
    onWindow: () => void windows++,
    ...overrides,
  });
  return { tee: t, windows: () => windows };
}

async function collect(source: AsyncIterable<Uint8Array>): Promise<number> {
  let n = 0;
  for await (const chunk of source) n += chunk.byteLength;
  return n;
}

describe('RemoteTee', () => {
  it('gives every byte to both consumers, goes live once past the window, closes live at the end', async () => {
    const remote = scriptedBody();
    const { tee: t, windows } = tee(remote.body);
    const stored = collect(t.source());
    const live = collect(t.live);
    for (let i = 0; i < 10; i++) remote.push(30);
    remote.end();
    expect(await stored).toBe(300);
    expect(await live).toBe(300);
    expect(windows()).toBe(1);
  });

  it('never goes live for a body that ends within the window', async () => {
    const remote = scriptedBody();
    const { tee: t, windows } = tee(remote.body);
    remote.push(20);
    remote.end();
    expect(await collect(t.source())).toBe(20);
    expect(windows()).toBe(0);
  });

  it('errors both sides past maxBytes and cancels the remote', async () => {
    const remote = scriptedBody();
    const { tee: t } = tee(remote.body, { maxBytes: 100 });
    const live = collect(t.live);
    const stored = collect(t.source());
    remote.push(60);
    remote.push(60);
    await expect(stored).rejects.toBeInstanceOf(ContentTooLargeError);
    t.fail(new Error('too large'));
    await expect(live).rejects.toThrow('too large');
    expect(remote.cancelled()).toBeInstanceOf(ContentTooLargeError);
  });

  it('a remote failure errors the store side', async () => {
    const remote = scriptedBody();
    const { tee: t } = tee(remote.body);
    const stored = collect(t.source());
    remote.push(10);
    remote.fail(new Error('reset'));
    await expect(stored).rejects.toThrow('reset');
  });

  it('a live reader that leaves does not hold the store back, even past its buffer', async () => {
    const remote = scriptedBody();
    const { tee: t } = tee(remote.body, { liveBufferBytes: 10, maxBytes: 10_000 });
    const reader = t.live.getReader();
    const stored = collect(t.source());
    remote.push(60);
    await reader.cancel('client left');
    for (let i = 0; i < 20; i++) remote.push(60);
    remote.end();
    expect(await stored).toBe(21 * 60);
  });

  it('cancel() before the store ever read cancels the remote body', async () => {
    const remote = scriptedBody();
    const { tee: t } = tee(remote.body);
    const live = t.live.getReader();
    t.cancel(new Error('store unavailable'));
    expect(remote.cancelled()).toBeInstanceOf(Error);
    await expect(live.read()).rejects.toThrow('store unavailable');
  });

  it('an abandoned source (the store gave up) cancels the remote', async () => {
    const remote = scriptedBody();
    const { tee: t } = tee(remote.body);
    remote.push(10);
    remote.push(10);
    const source = t.source();
    await source.next();
    await source.return(undefined);
    expect(remote.cancelled()).not.toBeUndefined();
  });

  describe('declared length (a response carries exactly its Content-Length)', () => {
    /** Reads the live side, keeping what arrived before it ended or failed. */
    async function readLive(live: ReadableStream<Uint8Array>): Promise<{ bytes: number; error: unknown }> {
      let bytes = 0;
      try {
        for await (const chunk of live) bytes += chunk.byteLength;
        return { bytes, error: undefined };
      } catch (error) {
        return { bytes, error };
      }
    }

    it('a body of exactly the declared length goes to both sides', async () => {
      const remote = scriptedBody();
      const { tee: t } = tee(remote.body, { declaredLength: 120 });
      const live = readLive(t.live);
      const stored = collect(t.source());
      remote.push(60);
      remote.push(60);
      remote.end();
      expect(await stored).toBe(120);
      expect(await live).toEqual({ bytes: 120, error: undefined });
    });

    it('more than declared: bad_response, no byte past it anywhere, the live reader never complete', async () => {
      const remote = scriptedBody();
      const { tee: t } = tee(remote.body, { declaredLength: 120 });
      const live = readLive(t.live);
      const stored = collect(t.source());
      remote.push(60);
      remote.push(60); // completes the declared length: held back from the live reader
      remote.push(1);
      const error = await stored.then(() => undefined, (reason: unknown) => reason);
      expect(error).toBeInstanceOf(RemoteMediaError);
      expect((error as RemoteMediaError).code).toBe('bad_response');
      t.cancel(error);
      const seen = await live;
      expect(seen.bytes).toBeLessThan(120);
      expect(seen.error).toBe(error);
      expect(remote.cancelled()).toBe(error);
    });

    it('a chunk that overshoots the declared length is never passed on', async () => {
      const remote = scriptedBody();
      const { tee: t } = tee(remote.body, { declaredLength: 100 });
      const live = readLive(t.live);
      const stored = collect(t.source());
      remote.push(60);
      remote.push(60);
      await expect(stored).rejects.toMatchObject({ code: 'bad_response' });
      t.cancel(new Error('aborted'));
      expect((await live).bytes).toBe(60);
    });

    it('fewer than declared, then a clean end: bad_response, the live reader errors', async () => {
      const remote = scriptedBody();
      const { tee: t } = tee(remote.body, { declaredLength: 200 });
      const live = readLive(t.live);
      const stored = collect(t.source());
      remote.push(60);
      remote.push(60);
      remote.end();
      await expect(stored).rejects.toMatchObject({ code: 'bad_response' });
      t.cancel(new Error('aborted'));
      expect(await live).toMatchObject({ bytes: 120, error: new Error('aborted') });
    });
  });

  describe('the live side as a push body (written straight to the socket)', () => {
    /** A sink like a socket: `write` answers false while `full`; records what it saw. */
    function recordingSink(): BodySink & { bytes: number; ended: boolean; aborted: unknown; full: boolean; writes: number } {
      const sink = {
        bytes: 0,
        writes: 0,
        ended: false,
        aborted: undefined as unknown,
        full: false,
        write(chunk: Uint8Array): boolean {
          sink.bytes += chunk.byteLength;
          sink.writes++;
          return !sink.full;
        },
        end(): void {
          sink.ended = true;
        },
        abort(reason: unknown): void {
          sink.aborted = reason;
        },
      };
      return sink;
    }
    const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

    it('writes every chunk to the sink and ends it; the store gets them all too', async () => {
      const remote = scriptedBody();
      const { tee: t } = tee(remote.body, { declaredLength: 300 });
      const push = takePushBody(t.live);
      expect(push).toBeDefined();
      const sink = recordingSink();
      push!.attach(sink);
      const stored = collect(t.source());
      for (let i = 0; i < 10; i++) remote.push(30);
      remote.end();
      expect(await stored).toBe(300);
      expect(sink).toMatchObject({ bytes: 300, ended: true, aborted: undefined });
    });

    it('a full sink holds the remote back at liveBufferBytes until drained', async () => {
      const remote = scriptedBody();
      const { tee: t } = tee(remote.body, { liveBufferBytes: 100, storeBufferBytes: 10_000, maxBytes: 10_000 });
      const sink = recordingSink();
      sink.full = true;
      const controls = takePushBody(t.live)!.attach(sink);
      const stored = collect(t.source());
      for (let i = 0; i < 20; i++) remote.push(50);
      remote.end();
      for (let i = 0; i < 10; i++) await settle();
      // One chunk in the socket, then at most liveBufferBytes queued: reading waits.
      expect(sink.bytes).toBe(50);
      expect(t.received).toBeLessThanOrEqual(50 + 100 + 50);
      sink.full = false;
      controls.drained();
      expect(await stored).toBe(1000);
      expect(sink).toMatchObject({ bytes: 1000, ended: true });
    });

    it('a sink that goes away does not hold the store back', async () => {
      const remote = scriptedBody();
      const { tee: t } = tee(remote.body, { liveBufferBytes: 10, maxBytes: 10_000 });
      const sink = recordingSink();
      sink.full = true;
      const controls = takePushBody(t.live)!.attach(sink);
      const stored = collect(t.source());
      remote.push(60);
      await settle();
      controls.gone(new Error('client left'));
      for (let i = 0; i < 20; i++) remote.push(60);
      remote.end();
      expect(await stored).toBe(21 * 60);
      expect(sink).toMatchObject({ bytes: 60, ended: false });
    });

    it('a remote that fails aborts the sink, never ends it', async () => {
      const remote = scriptedBody();
      const { tee: t } = tee(remote.body, { declaredLength: 200 });
      const sink = recordingSink();
      takePushBody(t.live)!.attach(sink);
      const stored = collect(t.source());
      remote.push(60);
      remote.push(60);
      remote.end();
      const error = await stored.then(() => undefined, (reason: unknown) => reason);
      expect(error).toMatchObject({ code: 'bad_response' });
      t.cancel(error);
      expect(sink).toMatchObject({ bytes: 120, ended: false, aborted: error });
    });

    it('the chunk completing the declared length reaches the sink only once the body really ended', async () => {
      const remote = scriptedBody();
      const { tee: t } = tee(remote.body, { declaredLength: 120 });
      const sink = recordingSink();
      takePushBody(t.live)!.attach(sink);
      const stored = collect(t.source());
      remote.push(60);
      remote.push(60);
      for (let i = 0; i < 5; i++) await settle();
      expect(sink.bytes).toBe(60);
      remote.end();
      expect(await stored).toBe(120);
      expect(sink).toMatchObject({ bytes: 120, ended: true });
    });

    it('is not offered once the live stream was read, nor after the live reader was detached', async () => {
      const remote = scriptedBody();
      const { tee: read } = tee(remote.body);
      const reader = read.live.getReader();
      expect(takePushBody(read.live)).toBeUndefined();
      reader.releaseLock();
      const { tee: detached } = tee(scriptedBody().body);
      detached.detach(new Error('never opened'));
      expect(takePushBody(detached.live)).toBeUndefined();
    });
  });
});
