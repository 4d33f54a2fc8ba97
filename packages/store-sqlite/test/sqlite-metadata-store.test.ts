import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MediaRecord } from '@hsmedia/media-core';
import { MIGRATION_NAMES } from '@hsmedia/store-knex';
import { createSqliteMetadataStore, type SqliteMetadataStore } from '@hsmedia/store-sqlite';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

function record(overrides: Partial<MediaRecord> = {}): MediaRecord {
  return {
    serverName: 'example.org',
    mediaId: 'abcDEF123',
    blobId: 'blob_1',
    contentType: 'image/png',
    uploadName: 'cat.png',
    size: 2 ** 33,
    sha256: 'f'.repeat(64),
    userId: '@alice:example.org',
    createdAt: 1_700_000_000_000,
    uploadedAt: 1_700_000_000_001,
    expiresAt: null,
    authenticated: true,
    quarantined: false,
    lastAccessAt: null,
    ...overrides,
  };
}

async function pragma(store: SqliteMetadataStore, name: string): Promise<unknown> {
  const rows = (await store.knex.raw(`pragma ${name}`)) as Record<string, unknown>[];
  // The result column is not always named after the pragma (busy_timeout → timeout).
  return Object.values(rows[0] ?? {})[0];
}

describe('createSqliteMetadataStore', () => {
  let dir: string;
  const opened: SqliteMetadataStore[] = [];
  async function open(path: string, options: { migrate?: boolean } = {}): Promise<SqliteMetadataStore> {
    const store = await createSqliteMetadataStore({ path, ...options });
    opened.push(store);
    return store;
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hsmedia-store-sqlite-'));
  });
  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('creates missing parent directories and the database file', async () => {
    const path = join(dir, 'nested', 'deeper', 'media.db');
    await open(path);
    expect((await stat(path)).isFile()).toBe(true);
  });

  it('sets WAL, synchronous NORMAL, a busy timeout and foreign keys', async () => {
    const store = await open(join(dir, 'media.db'));
    expect(await pragma(store, 'journal_mode')).toBe('wal');
    expect(await pragma(store, 'synchronous')).toBe(1); // NORMAL
    expect(await pragma(store, 'busy_timeout')).toBe(5000);
    expect(await pragma(store, 'foreign_keys')).toBe(1);
  });

  it('keeps data across close and reopen', async () => {
    const path = join(dir, 'media.db');
    const first = await createSqliteMetadataStore({ path });
    await first.insertMedia(record());
    await first.putServerKeys([
      { serverName: 'remote.example', keyId: 'ed25519:k', publicKey: 'cGs', validUntilTs: 2 ** 42, fetchedAt: 1 },
    ]);
    await first.close();

    const second = await open(path);
    expect(await second.getMedia('example.org', 'abcDEF123')).toStrictEqual(record());
    expect(await second.getServerKeys('remote.example')).toHaveLength(1);
  });

  it('runs migrations idempotently (twice on one store, and on reopen)', async () => {
    const path = join(dir, 'media.db');
    const store = await open(path);
    await store.insertMedia(record());
    await store.migrate();
    await store.migrate();
    const again = await open(path);
    const applied = (await again.knex('hsmedia_migrations').select('name')) as { name: string }[];
    expect(applied.map((row) => row.name)).toEqual([...MIGRATION_NAMES]);
    expect(await again.getMedia('example.org', 'abcDEF123')).not.toBeNull();
  });

  it('two stores (two knex instances) on one file see each other\'s writes', async () => {
    const path = join(dir, 'shared.db');
    const a = await open(path);
    const b = await open(path);
    expect(a.knex).not.toBe(b.knex);
    expect(await a.insertMedia(record({ mediaId: 'fromA', blobId: null, uploadedAt: null }))).toBe(true);
    expect(await b.insertMedia(record({ mediaId: 'fromA' }))).toBe(false);
    expect(await b.completeMedia('example.org', 'fromA', {
      blobId: 'blobB', contentType: 'text/plain', uploadName: null, size: 1, sha256: 'a'.repeat(64), uploadedAt: 5,
    })).toBe(true);
    expect((await a.getMedia('example.org', 'fromA'))?.blobId).toBe('blobB');
    // Interleaved writers on both connections: the busy timeout serialises them.
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).insertMedia(record({ mediaId: `m${i}` }))),
    );
    expect(await a.knex('media').count({ n: '*' })).toEqual([{ n: 21 }]);
    expect(await b.deleteMedia('example.org', 'm0')).toBe(true);
    expect(await a.getMedia('example.org', 'm0')).toBeNull();
  });

  it('several stores opening one fresh file at once all succeed', async () => {
    const path = join(dir, 'fresh.db');
    const stores = await Promise.all(Array.from({ length: 4 }, () => open(path)));
    const applied = (await stores[0]!.knex('hsmedia_migrations').select('name')) as { name: string }[];
    expect(applied.map((row) => row.name)).toEqual([...MIGRATION_NAMES]);
    expect(await stores[3]!.insertMedia(record())).toBe(true);
    expect(await stores[1]!.getMedia('example.org', 'abcDEF123')).not.toBeNull();
  });

  it('supports :memory: (kept alive by the single pooled connection)', async () => {
    const store = await open(':memory:');
    await store.insertMedia(record());
    expect(await store.getMedia('example.org', 'abcDEF123')).toStrictEqual(record());
  });

  it('migrate: false leaves the schema to the caller', async () => {
    const store = await open(join(dir, 'media.db'), { migrate: false });
    expect(await store.knex.schema.hasTable('media')).toBe(false);
    await store.migrate();
    expect(await store.knex.schema.hasTable('media')).toBe(true);
  });

  it('close() closes the database and may be called twice', async () => {
    const store = await createSqliteMetadataStore({ path: join(dir, 'media.db') });
    await store.close();
    await store.close();
    await expect(store.getMedia('example.org', 'abcDEF123')).rejects.toThrow();
  });

  it('database errors carry the SQL but not the caller\'s values', async () => {
    const store = await open(join(dir, 'media.db'));
    await store.knex.schema.dropTable('media');
    const failure = await store.getMedia('example.org', 'secretMediaId').catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).message).not.toContain('secretMediaId');
  });

  it('refuses a missing path or bad prefix with TypeError', async () => {
    await expect(createSqliteMetadataStore({ path: '' })).rejects.toBeInstanceOf(TypeError);
    await expect(createSqliteMetadataStore(undefined as unknown as { path: string })).rejects.toBeInstanceOf(TypeError);
    await expect(createSqliteMetadataStore({ path: join(dir, 'p.db'), tablePrefix: 'bad-prefix' })).rejects.toBeInstanceOf(TypeError);
  });

  it('fails (and releases the file) when the path is a directory', async () => {
    await expect(createSqliteMetadataStore({ path: dir })).rejects.toBeInstanceOf(Error);
  });
});
