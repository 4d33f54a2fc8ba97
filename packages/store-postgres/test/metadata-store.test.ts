import { describeMetadataStore } from '@hsmedia/conformance';
import type { MediaRecord } from '@hsmedia/media-core';
import { createPostgresMetadataStore, type PostgresMetadataStore } from '@hsmedia/store-postgres';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PG_URL, openPostgresTestEnv } from '@hsmedia/test-fixtures/postgres';

// Every metadata-store test against a real PostgreSQL, in one fresh schema for
// this file (`t_<random>`, dropped in afterAll). Each test gets its own table
// prefix inside it, so tests start empty without a schema apiece.
const env = await openPostgresTestEnv();
const schema = env.unavailable === undefined ? await env.createSchema() : 't_unused';
afterAll(() => env.dispose());

let prefixCounter = 0;
async function freshStore(): Promise<PostgresMetadataStore> {
  prefixCounter += 1;
  return createPostgresMetadataStore({
    url: PG_URL,
    searchPath: schema,
    tablePrefix: `p${prefixCounter}_`,
    pool: { max: 4 },
  });
}

describe.skipIf(env.unavailable !== undefined)('PostgresMetadataStore', () => {
  // Tables stay in the file's schema until afterAll drops it.
  describeMetadataStore('PostgresMetadataStore', async () => {
    const store = await freshStore();
    return { store, cleanup: () => store.close() };
  });

  describe('through createPostgresMetadataStore', () => {
    let store: PostgresMetadataStore;
    beforeEach(async () => {
      store = await freshStore();
    });
    afterEach(async () => {
      await store.close();
    });

    const record = (overrides: Partial<MediaRecord> = {}): MediaRecord => ({
      serverName: 'example.org',
      mediaId: 'abcDEF123',
      blobId: null,
      contentType: null,
      uploadName: null,
      size: null,
      sha256: null,
      userId: '@alice:example.org',
      createdAt: 1_700_000_000_000,
      uploadedAt: null,
      expiresAt: null,
      authenticated: true,
      quarantined: false,
      lastAccessAt: null,
      ...overrides,
    });

    it('round-trips records with bigint columns read back as numbers', async () => {
      const full = record({
        mediaId: 'full',
        blobId: 'blob_1',
        contentType: 'image/png',
        uploadName: 'naïve ☃.png',
        size: 2 ** 40 + 7,
        sha256: 'f'.repeat(64),
        uploadedAt: 2 ** 45,
        lastAccessAt: 1_700_000_000_001,
      });
      expect(await store.insertMedia(full)).toBe(true);
      expect(await store.getMedia('example.org', 'full')).toStrictEqual(full);
      expect(await store.getMedia('example.org', 'missing')).toBeNull();
    });

    it('inserts, completes and deletes once each, under concurrency', async () => {
      const inserts = await Promise.all(Array.from({ length: 8 }, () => store.insertMedia(record())));
      expect(inserts.filter(Boolean)).toHaveLength(1);
      const completions = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          store.completeMedia('example.org', 'abcDEF123', {
            blobId: `blob${i}`,
            contentType: 'text/plain',
            uploadName: null,
            size: 3,
            sha256: 'a'.repeat(64),
            uploadedAt: 1_700_000_000_500,
          }),
        ),
      );
      expect(completions.filter(Boolean)).toHaveLength(1);
      const blobId = (await store.getMedia('example.org', 'abcDEF123'))?.blobId;
      expect(await store.isBlobReferenced(blobId!)).toBe(true);
      const deletes = await Promise.all(Array.from({ length: 4 }, () => store.deleteMedia('example.org', 'abcDEF123')));
      expect(deletes.filter(Boolean)).toHaveLength(1);
      expect(await store.isBlobReferenced(blobId!)).toBe(false);
    });

    it('touchMedia only moves forward; server keys upsert', async () => {
      await store.insertMedia(record());
      await store.touchMedia('example.org', 'abcDEF123', 2_000);
      await store.touchMedia('example.org', 'abcDEF123', 1_000);
      expect((await store.getMedia('example.org', 'abcDEF123'))?.lastAccessAt).toBe(2_000);
      const key = { serverName: 'remote.example', keyId: 'ed25519:a', publicKey: 'cHVi', validUntilTs: 2 ** 42, fetchedAt: 1 };
      await store.putServerKeys([key]);
      await store.putServerKeys([{ ...key, publicKey: 'bmV3' }]);
      expect(await store.getServerKeys('remote.example')).toStrictEqual([{ ...key, publicKey: 'bmV3' }]);
    });

    it('creates its tables in the configured schema only', async () => {
      const rows = (await env.admin.raw(
        "select schemaname from pg_tables where tablename = ? order by schemaname",
        [`p${prefixCounter}_media`],
      )) as { rows: { schemaname: string }[] };
      expect(rows.rows.map((row) => row.schemaname)).toEqual([schema]);
    });

    it('close() ends its connections and is idempotent', async () => {
      await store.getMedia('example.org', 'x');
      await store.close();
      await store.close();
      await expect(store.getMedia('example.org', 'x')).rejects.toThrow();
    });
  });
});

describe.skipIf(env.unavailable !== undefined)('createPostgresMetadataStore: migrate option', () => {
  it('migrate: false opens without touching the schema; migrate() then creates it', async () => {
    const tablePrefix = 'nomigrate_';
    const store = await createPostgresMetadataStore({ url: PG_URL, searchPath: schema, tablePrefix, migrate: false });
    try {
      expect(await env.admin.schema.withSchema(schema).hasTable(`${tablePrefix}media`)).toBe(false);
      await expect(store.getMedia('example.org', 'x')).rejects.toThrow();
      await store.migrate();
      expect(await store.getMedia('example.org', 'x')).toBeNull();
    } finally {
      await store.close();
    }
  });
});
