import { describe, expect, it } from 'vitest';
import type { MediaRecord } from '../ports/index.js';
import { MemoryMetadataStore } from './memory-metadata-store.js';

// The port contract is checked by @hsmedia/conformance (packages/conformance/src/memory-stores.test.ts);
// these cases cover what is particular to the in-memory store.

const record: MediaRecord = {
  serverName: 'example.org',
  mediaId: 'abc',
  blobId: 'blob_abc',
  contentType: 'text/plain',
  uploadName: null,
  size: 3,
  sha256: 'a'.repeat(64),
  userId: '@alice:example.org',
  createdAt: 1_000,
  uploadedAt: 1_000,
  expiresAt: null,
  authenticated: true,
  quarantined: false,
  lastAccessAt: null,
};

describe('MemoryMetadataStore', () => {
  it('expires leases by the clock it is given', async () => {
    let now = 10_000;
    const store = new MemoryMetadataStore({ clock: { now: () => now } });
    expect(await store.tryAcquireLease('cleanup', 'a', 1_000)).toBe(true);
    now = 10_999;
    expect(await store.tryAcquireLease('cleanup', 'b', 1_000)).toBe(false);
    now = 11_000;
    expect(await store.tryAcquireLease('cleanup', 'b', 1_000)).toBe(true);
    expect(await store.releaseLease('cleanup', 'a')).toBe(false);
  });

  it('keeps only the record fields, and no protected field unless it is true', async () => {
    const store = new MemoryMetadataStore();
    const extra = { ...record, protected: false, note: 'not a column' } as MediaRecord;
    expect(await store.insertMedia(extra)).toBe(true);
    const stored = await store.getMedia('example.org', 'abc');
    expect(stored).toStrictEqual(record);
    expect(await store.listMedia({}, { limit: 10 })).toStrictEqual([record]);
  });

  it('rejects every call once closed', async () => {
    const store = new MemoryMetadataStore();
    await store.insertMedia(record);
    await store.close();
    await expect(store.getMedia('example.org', 'abc')).rejects.toThrow(/closed/);
    await expect(store.insertMedia(record)).rejects.toThrow(/closed/);
    await expect(store.getServerKeys('example.org')).rejects.toThrow(/closed/);
    await expect(store.tryAcquireLease('cleanup', 'a', 1_000)).rejects.toThrow(/closed/);
  });
});
