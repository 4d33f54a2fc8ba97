import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { createSqliteMetadataStore } from '@hsmedia/store-sqlite';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hsmedia-sqlite-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

it('smoke', async () => {
  const store = await createSqliteMetadataStore({ path: join(dir, 'a', 'b.db') });
  const rec = {
    serverName: 'example.org', mediaId: 'abc', blobId: null, contentType: null, uploadName: null,
    size: null, sha256: null, userId: '@a:example.org', createdAt: 1, uploadedAt: null, expiresAt: 5,
    authenticated: true, quarantined: false, lastAccessAt: null,
  };
  expect(await store.insertMedia(rec)).toBe(true);
  expect(await store.insertMedia(rec)).toBe(false);
  expect(await store.getMedia('example.org', 'abc')).toEqual(rec);
  expect(await store.completeMedia('example.org', 'abc', { blobId: 'b1', contentType: 'text/plain', uploadName: null, size: 3, sha256: 'x', uploadedAt: 2 })).toBe(true);
  expect(await store.completeMedia('example.org', 'abc', { blobId: 'b1', contentType: 'text/plain', uploadName: null, size: 3, sha256: 'x', uploadedAt: 2 })).toBe(false);
  expect(await store.isBlobReferenced('b1')).toBe(true);
  await store.putServerKeys([{ serverName: 's', keyId: 'ed25519:a', publicKey: 'p', validUntilTs: 1, fetchedAt: 2 }]);
  await store.putServerKeys([{ serverName: 's', keyId: 'ed25519:a', publicKey: 'q', validUntilTs: 3, fetchedAt: 4 }]);
  expect(await store.getServerKeys('s')).toEqual([{ serverName: 's', keyId: 'ed25519:a', publicKey: 'q', validUntilTs: 3, fetchedAt: 4 }]);
  await store.close();
  const again = await createSqliteMetadataStore({ path: join(dir, 'a', 'b.db') });
  expect((await again.getMedia('example.org', 'abc'))?.blobId).toBe('b1');
  await again.close();
});
