import { readdirSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { takeFileBody } from '@hsmedia/media-core';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FsBlobStore } from './fs-blob-store.js';

// A blob stream offers its open file to a server (takeFileBody) until it is first read:
// the file is then the taker's, the stream ends, and nothing is closed twice or leaked.

let root: string;
let store: FsBlobStore;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'hsmedia-file-body-'));
  store = new FsBlobStore({ root, fsync: false });
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const bytes = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz');

/** Descriptors of this process that point into the store. */
function openFiles(): string[] {
  const open: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(root)) open.push(target);
    } catch {
      // closed while listing
    }
  }
  return open;
}

async function* once(chunk: Uint8Array): AsyncGenerator<Uint8Array> {
  yield chunk;
}

describe.runIf(process.platform === 'linux')('FsBlobStore streams offer their file', () => {
  it('gives the file and the range once; the stream then ends and closing is the taker’s', async () => {
    const { blobId } = await store.put(once(bytes));
    const stream = (await store.open(blobId, { start: 3, end: 9 }))!;
    const body = takeFileBody(stream)!;
    expect(body).toBeDefined();
    expect([body.start, body.end, body.signal]).toEqual([3, 9, undefined]);
    expect(takeFileBody(stream)).toBeUndefined();
    const buffer = Buffer.alloc(7);
    const { bytesRead } = await body.file.read(buffer, 0, 7, body.start);
    expect(buffer.subarray(0, bytesRead).toString()).toBe('3456789');
    // The stream is over without having read, and did not close the file the taker holds.
    expect((await stream.getReader().read()).done).toBe(true);
    expect(openFiles()).toHaveLength(1);
    await body.close();
    await body.close();
    expect(openFiles()).toEqual([]);
  });

  it('is not offered once the stream has been read, which then closes the file itself', async () => {
    const { blobId } = await store.put(once(bytes));
    const stream = (await store.open(blobId))!;
    const reader = stream.getReader();
    expect(Buffer.from((await reader.read()).value!).toString()).toBe(bytes.toString());
    reader.releaseLock();
    expect(takeFileBody(stream)).toBeUndefined();
    await stream.cancel();
    expect(openFiles()).toEqual([]);
  });

  it('is not offered after the signal aborted, and the file is closed', async () => {
    const { blobId } = await store.put(once(bytes));
    const controller = new AbortController();
    const stream = (await store.open(blobId, { signal: controller.signal }))!;
    controller.abort();
    expect(takeFileBody(stream)).toBeUndefined();
    // The abort closes the file asynchronously (close waits for nothing else here).
    await vi.waitFor(() => expect(openFiles()).toEqual([]), { timeout: 10_000, interval: 10 });
  });

  it('a stream nobody offers a file for answers undefined', () => {
    expect(takeFileBody(new Response('x').body!)).toBeUndefined();
  });

  it('hashes inline or on the worker alike (offloadHashing)', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024 + 5, 7);
    const inline = await store.put(once(big));
    const offloaded = await store.put(once(big), { offloadHashing: true });
    expect(offloaded.sha256).toBe(inline.sha256);
    expect(inline.sha256).toMatch(/^[0-9a-f]{64}$/);
  });
});
