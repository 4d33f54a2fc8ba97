import { isMatrixError, type MatrixError } from '@hsmedia/errors';
import { describe, expect, it } from 'vitest';
import { RemoteMediaError } from './errors.js';
import { MediaService } from './media-service.js';
import { MemoryBlobStore, MemoryMetadataStore } from './memory/index.js';
import type { RemoteMedia, RemoteMediaRequest, RemoteMediaSource } from './ports/index.js';

// Two services over one store and one blob store stand for two processes of a deployment; the
// store's leases make one remote fetch per deployment. The remote answers when the test says so.

const REMOTE = 'remote.example';
const BYTES = new Uint8Array(100_000).fill(7);

class GatedRemote implements RemoteMediaSource {
  calls = 0;
  #open!: () => void;
  readonly gate = new Promise<void>((resolve) => {
    this.#open = resolve;
  });
  failFirst = false;
  open(): void {
    this.#open();
  }
  async fetchMedia(_request: RemoteMediaRequest): Promise<RemoteMedia> {
    this.calls++;
    await this.gate;
    if (this.failFirst && this.calls === 1) throw new RemoteMediaError('unreachable', 'down');
    return {
      contentType: 'application/octet-stream',
      contentDisposition: null,
      contentLength: BYTES.length,
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(BYTES);
          controller.close();
        },
      }),
    };
  }
}

function deployment(remote: RemoteMediaSource, leases = true) {
  const blobs = new MemoryBlobStore();
  const metadata = new MemoryMetadataStore();
  const service = (): MediaService =>
    new MediaService({
      serverName: 'example.org',
      blobs,
      metadata,
      maxUploadBytes: 1 << 20,
      remote,
      remoteFailureTtlMs: 0,
      touchIntervalMs: 0,
      ...(leases ? { remoteFetchLeases: metadata } : {}),
    });
  return { a: service(), b: service() };
}

async function statusOf(promise: Promise<unknown>): Promise<number> {
  try {
    await promise;
    return 200;
  } catch (error) {
    if (isMatrixError(error)) return (error as MatrixError).httpStatus;
    throw error;
  }
}

/** Lets pending callbacks and store calls run until `condition` holds (no timers involved). */
async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 10_000 && !condition(); i++) await new Promise((resolve) => setImmediate(resolve));
  expect(condition()).toBe(true);
}

describe('one remote fetch per deployment (remoteFetchLeases)', () => {
  it('two processes asking at once: one request to the origin, both answered with the stored bytes', async () => {
    const remote = new GatedRemote();
    const { a, b } = deployment(remote);
    const fromA = Array.from({ length: 5 }, () => a.getMedia(REMOTE, 'shared', { allowLive: false }));
    await until(() => remote.calls === 1);
    const fromB = Array.from({ length: 5 }, () => b.getMedia(REMOTE, 'shared', { allowLive: false }));
    remote.open();
    const handles = await Promise.all([...fromA, ...fromB]);
    expect(remote.calls).toBe(1);
    for (const handle of handles) expect(handle.size).toBe(BYTES.length);
  });

  it('without leases each process fetches for itself (what the lease prevents)', async () => {
    const remote = new GatedRemote();
    const { a, b } = deployment(remote, false);
    const both = [a.getMedia(REMOTE, 'twice', { allowLive: false }), b.getMedia(REMOTE, 'twice', { allowLive: false })];
    await until(() => remote.calls === 2);
    remote.open();
    await Promise.all(both);
    expect(remote.calls).toBe(2);
  });

  it('a waiting process gives up at its timeout with 504, and the holder still finishes', async () => {
    const remote = new GatedRemote();
    const { a, b } = deployment(remote);
    const holder = a.getMedia(REMOTE, 'slow', { allowLive: false });
    await until(() => remote.calls === 1);
    expect(await statusOf(b.getMedia(REMOTE, 'slow', { allowLive: false, timeoutMs: 50 }))).toBe(504);
    remote.open();
    expect(await statusOf(holder)).toBe(200);
    expect(remote.calls).toBe(1);
  });

  it('the holder failing frees the lease: a waiting process fetches itself', async () => {
    const remote = new GatedRemote();
    remote.failFirst = true;
    const { a, b } = deployment(remote);
    const holder = a.getMedia(REMOTE, 'flaky', { allowLive: false });
    await until(() => remote.calls === 1);
    const waiter = b.getMedia(REMOTE, 'flaky', { allowLive: false, timeoutMs: 20_000 });
    remote.open();
    expect(await statusOf(holder)).toBe(502);
    expect(await statusOf(waiter)).toBe(200);
    expect(remote.calls).toBe(2);
  });
});
