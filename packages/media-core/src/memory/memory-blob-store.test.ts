import { describe, expect, it } from 'vitest';
import { MemoryBlobStore } from './memory-blob-store.js';

// The port contract is checked by @hsmedia/conformance (packages/conformance/src/memory-stores.test.ts);
// these cases cover what is particular to the in-memory store.

async function bytesOf(stream: ReadableStream<Uint8Array>): Promise<number[]> {
  const out: number[] = [];
  for await (const chunk of stream) out.push(...chunk);
  return out;
}

describe('MemoryBlobStore', () => {
  it('hands out copies: a reader that writes into its chunk does not change the blob', async () => {
    const store = new MemoryBlobStore();
    const { blobId } = await store.put(ReadableStream.from([Uint8Array.of(1, 2, 3)]));
    const reader = (await store.open(blobId))!.getReader();
    const { value } = await reader.read();
    value!.fill(0);
    expect(await bytesOf((await store.open(blobId))!)).toEqual([1, 2, 3]);
  });

  it('counts its blobs, and a refused put adds none', async () => {
    const store = new MemoryBlobStore();
    expect(store.blobCount).toBe(0);
    await store.put(ReadableStream.from([Uint8Array.of(1)]));
    await expect(store.put(ReadableStream.from([Uint8Array.of(1, 2)]), { maxBytes: 1 })).rejects.toThrow();
    expect(store.blobCount).toBe(1);
  });

  it('refuses negative, fractional and inverted ranges', async () => {
    const store = new MemoryBlobStore();
    const { blobId } = await store.put(ReadableStream.from([Uint8Array.of(1, 2, 3)]));
    await expect(store.open(blobId, { start: -1 })).rejects.toBeInstanceOf(RangeError);
    await expect(store.open(blobId, { end: 1.5 })).rejects.toBeInstanceOf(RangeError);
    await expect(store.open(blobId, { start: 2, end: 1 })).rejects.toBeInstanceOf(RangeError);
    expect(await bytesOf((await store.open(blobId, { start: 1, end: 99 }))!)).toEqual([2, 3]);
  });
});
