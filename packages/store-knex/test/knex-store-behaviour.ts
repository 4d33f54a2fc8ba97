import { describeMetadataStore } from '@hsmedia/conformance';
import { KnexMetadataStore, KnexUrlPreviewCache, MIGRATION_NAMES, runMigrations } from '@hsmedia/store-knex';
import type { Knex } from 'knex';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { completeRecord, completion, pendingRecord, serverKey } from './fixtures.js';

/** A fresh, empty database for one test, and how to dispose of it. */
export interface KnexTestDatabase {
  readonly knex: Knex;
  dispose(): Promise<void>;
}

/**
 * The shared conformance suite, then backend behaviour beyond it: type
 * fidelity of what each driver returns, races decided by the database,
 * prefixes and migrations. Runs against SQLite and PostgreSQL alike.
 */
export function describeKnexStoreBehaviour(label: string, openDatabase: () => Promise<KnexTestDatabase>): void {
  describeMetadataStore(`KnexMetadataStore on ${label}`, async () => {
    const db = await openDatabase();
    const store = new KnexMetadataStore({ knex: db.knex });
    await store.migrate();
    return {
      store,
      async cleanup() {
        await store.close();
        await db.dispose();
      },
    };
  });

  describe(`KnexMetadataStore on ${label}`, () => {
    let db: KnexTestDatabase;
    let store: KnexMetadataStore;

    beforeEach(async () => {
      db = await openDatabase();
      store = new KnexMetadataStore({ knex: db.knex });
      await store.migrate();
    });
    afterEach(async () => {
      await store.close();
      await db.dispose();
    });

    it('KnexUrlPreviewCache (the README example): a preview set by one process is read by another until it expires; sweep deletes it', async () => {
      const previews = new KnexUrlPreviewCache({ knex: store.knex });
      const other = new KnexUrlPreviewCache({ knex: store.knex });
      const now = Date.now();
      await previews.set('https://example.org/', { 'og:title': 'Example' }, now, now + 3_600_000);
      expect(await other.get('https://example.org/', now)).toEqual({ 'og:title': 'Example' });
      expect(await other.get('https://example.org/other', now)).toBeUndefined();
      // A later fetch replaces it.
      await other.set('https://example.org/', { 'og:title': 'Again' }, now + 1, now + 3_600_001);
      expect(await previews.get('https://example.org/', now + 2)).toEqual({ 'og:title': 'Again' });
      expect(await previews.get('https://example.org/', now + 3_600_001)).toBeUndefined();
      expect(await previews.sweep(now + 3_600_001)).toBe(1);
      expect(await previews.sweep(now + 3_600_001)).toBe(0);
    });

    it('round-trips every field with JS types (numbers, booleans, nulls)', async () => {
      const record = completeRecord();
      expect(await store.insertMedia(record)).toBe(true);
      const read = await store.getMedia(record.serverName, record.mediaId);
      expect(read).toStrictEqual(record);
      expect(typeof read?.size).toBe('number');
      expect(typeof read?.createdAt).toBe('number');
      expect(typeof read?.quarantined).toBe('boolean');

      const pending = pendingRecord();
      expect(await store.insertMedia(pending)).toBe(true);
      expect(await store.getMedia(pending.serverName, pending.mediaId)).toStrictEqual(pending);
    });

    it('import cursors: null until written, then the last state written; names are separate; bad input refused', async () => {
      expect(await store.readImportCursor('synapse-backfill')).toBeNull();
      await store.writeImportCursor('synapse-backfill', '{"cursor":null}');
      await store.writeImportCursor('synapse-backfill', '{"cursor":"a"}');
      await store.writeImportCursor('other', '{}');
      expect(await store.readImportCursor('synapse-backfill')).toBe('{"cursor":"a"}');
      expect(await store.readImportCursor('other')).toBe('{}');
      await Promise.all([store.writeImportCursor('race', '1'), store.writeImportCursor('race', '2')]);
      expect(['1', '2']).toContain(await store.readImportCursor('race'));
      await expect(store.writeImportCursor('', '{}')).rejects.toThrow(TypeError);
      await expect(store.writeImportCursor('x', 'a\u0000b')).rejects.toThrow(TypeError);
      await expect(store.writeImportCursor('x', 'a'.repeat(64 * 1024 + 1))).rejects.toThrow(TypeError);
    });

    it('returns null for unknown media, and keys are (serverName, mediaId)', async () => {
      await store.insertMedia(pendingRecord({ serverName: 'a.example', mediaId: 'same' }));
      expect(await store.insertMedia(pendingRecord({ serverName: 'b.example', mediaId: 'same' }))).toBe(true);
      expect(await store.getMedia('c.example', 'same')).toBeNull();
      expect(await store.getMedia('a.example', 'SAME')).toBeNull();
      expect((await store.getMedia('b.example', 'same'))?.serverName).toBe('b.example');
    });

    it('insertMedia returns false on an existing key and changes nothing', async () => {
      const original = pendingRecord();
      expect(await store.insertMedia(original)).toBe(true);
      expect(await store.insertMedia(completeRecord({ serverName: original.serverName, mediaId: original.mediaId }))).toBe(false);
      expect(await store.getMedia(original.serverName, original.mediaId)).toStrictEqual(original);
    });

    it('concurrent inserts of one key: exactly one wins', async () => {
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => store.insertMedia(pendingRecord({ userId: `@u${i}:example.org` }))),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
    });

    it('completeMedia fills a pending record once and leaves the other fields alone', async () => {
      const pending = pendingRecord();
      await store.insertMedia(pending);
      const done = completion();
      expect(await store.completeMedia(pending.serverName, pending.mediaId, done)).toBe(true);
      expect(await store.getMedia(pending.serverName, pending.mediaId)).toStrictEqual({ ...pending, ...done });
      expect(await store.completeMedia(pending.serverName, pending.mediaId, completion({ blobId: 'other' }))).toBe(false);
      expect((await store.getMedia(pending.serverName, pending.mediaId))?.blobId).toBe(done.blobId);
    });

    it('completeMedia returns false for unknown media and creates nothing', async () => {
      expect(await store.completeMedia('example.org', 'missing', completion())).toBe(false);
      expect(await store.getMedia('example.org', 'missing')).toBeNull();
    });

    it('concurrent completions of one record: exactly one wins', async () => {
      await store.insertMedia(pendingRecord());
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          store.completeMedia('example.org', 'pendingMediaId', completion({ blobId: `blob${i}` })),
        ),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
    });

    it('deleteMedia reports whether the record existed', async () => {
      const record = completeRecord();
      await store.insertMedia(record);
      expect(await store.deleteMedia(record.serverName, record.mediaId)).toBe(true);
      expect(await store.getMedia(record.serverName, record.mediaId)).toBeNull();
      expect(await store.deleteMedia(record.serverName, record.mediaId)).toBe(false);
    });

    it('deleteExpiredPendingMedia refuses a bad now or limit with TypeError and deletes nothing', async () => {
      const record = pendingRecord({ expiresAt: 1_000 });
      await store.insertMedia(record);
      for (const [now, limit] of [[2_000, 0], [2_000, -1], [2_000, 1.5], [2_000, Number.NaN], [1.5, 10], [Number.POSITIVE_INFINITY, 10]]) {
        await expect(store.deleteExpiredPendingMedia(now!, limit!)).rejects.toThrow(TypeError);
      }
      expect(await store.getMedia(record.serverName, record.mediaId)).not.toBeNull();
      expect(await store.deleteExpiredPendingMedia(2_000, 10)).toBe(1);
    });

    it('touchMedia records accesses and only moves forward', async () => {
      const record = pendingRecord();
      await store.insertMedia(record);
      await store.touchMedia(record.serverName, record.mediaId, 2_000);
      expect((await store.getMedia(record.serverName, record.mediaId))?.lastAccessAt).toBe(2_000);
      await store.touchMedia(record.serverName, record.mediaId, 1_000);
      expect((await store.getMedia(record.serverName, record.mediaId))?.lastAccessAt).toBe(2_000);
      await store.touchMedia(record.serverName, record.mediaId, 2 ** 45);
      expect((await store.getMedia(record.serverName, record.mediaId))?.lastAccessAt).toBe(2 ** 45);
      await expect(store.touchMedia('example.org', 'missing', 5)).resolves.toBeUndefined();
      expect(await store.getMedia('example.org', 'missing')).toBeNull();
    });

    it('isBlobReferenced sees every record sharing a blob', async () => {
      await store.insertMedia(completeRecord({ mediaId: 'one', blobId: 'shared' }));
      await store.insertMedia(completeRecord({ mediaId: 'two', blobId: 'shared' }));
      await store.insertMedia(pendingRecord());
      expect(await store.isBlobReferenced('shared')).toBe(true);
      expect(await store.isBlobReferenced('unknown')).toBe(false);
      await store.deleteMedia('remote.example:8448', 'one');
      expect(await store.isBlobReferenced('shared')).toBe(true);
      await store.deleteMedia('remote.example:8448', 'two');
      expect(await store.isBlobReferenced('shared')).toBe(false);
    });

    it('server keys: upsert by (serverName, keyId), per server, in key order', async () => {
      expect(await store.getServerKeys('remote.example')).toEqual([]);
      await store.putServerKeys([]);
      await store.putServerKeys([
        serverKey({ keyId: 'ed25519:b' }),
        serverKey({ keyId: 'ed25519:a' }),
        serverKey({ serverName: 'other.example' }),
      ]);
      await store.putServerKeys([serverKey({ keyId: 'ed25519:b', publicKey: 'bmV3', validUntilTs: 5, fetchedAt: 6 })]);
      const keys = await store.getServerKeys('remote.example');
      expect(keys).toStrictEqual([
        serverKey({ keyId: 'ed25519:a' }),
        serverKey({ keyId: 'ed25519:b', publicKey: 'bmV3', validUntilTs: 5, fetchedAt: 6 }),
      ]);
      expect(typeof keys[0]?.validUntilTs).toBe('number');
      expect(await store.getServerKeys('other.example')).toHaveLength(1);
    });

    it('putServerKeys with the same key twice in one call keeps the last', async () => {
      await store.putServerKeys([serverKey({ publicKey: 'Zmlyc3Q' }), serverKey({ publicKey: 'bGFzdA' })]);
      expect(await store.getServerKeys('remote.example')).toStrictEqual([serverKey({ publicKey: 'bGFzdA' })]);
    });

    it('migrations are idempotent', async () => {
      await store.insertMedia(completeRecord());
      await store.migrate();
      await runMigrations(db.knex);
      expect(await store.getMedia('remote.example:8448', 'Complete_Media-ID')).toStrictEqual(completeRecord());
      const applied = await db.knex('hsmedia_migrations').select('name');
      expect(applied.map((row: { name: string }) => row.name)).toEqual([...MIGRATION_NAMES]);
    });

    it('stores with different table prefixes share a database without seeing each other', async () => {
      const tenant = new KnexMetadataStore({ knex: db.knex, tablePrefix: 'tenant_' });
      await tenant.migrate();
      await store.insertMedia(pendingRecord());
      expect(await tenant.getMedia('example.org', 'pendingMediaId')).toBeNull();
      expect(await tenant.insertMedia(pendingRecord({ userId: '@bob:example.org' }))).toBe(true);
      expect((await store.getMedia('example.org', 'pendingMediaId'))?.userId).toBe('@alice:example.org');
      await tenant.putServerKeys([serverKey()]);
      expect(await store.getServerKeys('remote.example')).toEqual([]);
      await tenant.close();
    });

    it('close() leaves a knex it does not own usable, and is idempotent', async () => {
      await store.close();
      await store.close();
      await expect(db.knex.raw('select 1')).resolves.toBeDefined();
    });

    it('database errors propagate as Error without the caller\'s values (compileSqlOnError: false)', async () => {
      await db.knex.schema.dropTable('media');
      const failure = await store.getMedia('example.org', 'secretMediaId').then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(failure).toBeInstanceOf(Error);
      expect((failure as Error).message).not.toContain('secretMediaId');
    });

    it('keys no backend can store read as absent (NUL, over-long)', async () => {
      await store.insertMedia(completeRecord({ blobId: 'b' }));
      for (const bad of ['a\0b', 'x'.repeat(256)]) {
        expect(await store.getMedia(bad, 'm')).toBeNull();
        expect(await store.getMedia('example.org', bad)).toBeNull();
        expect(await store.completeMedia('example.org', bad, completion())).toBe(false);
        expect(await store.deleteMedia(bad, 'm')).toBe(false);
        await expect(store.touchMedia('example.org', bad, 1)).resolves.toBeUndefined();
        expect(await store.isBlobReferenced(bad)).toBe(false);
        expect(await store.getServerKeys(bad)).toEqual([]);
      }
    });

    it('refuses values a backend would store differently, with TypeError naming only the field', async () => {
      const cases: [string, Parameters<typeof pendingRecord>[0]][] = [
        ['mediaId', { mediaId: 'm'.repeat(256) }],
        ['serverName', { serverName: 'bad\0server' }],
        ['uploadName', { uploadName: 'secret\0name' }],
        ['size', { size: 1.5 }],
        ['createdAt', { createdAt: Number.NaN }],
        ['expiresAt', { expiresAt: 2 ** 53 }],
        ['authenticated', { authenticated: 1 as unknown as boolean }],
      ];
      for (const [field, overrides] of cases) {
        const failure = await store.insertMedia(pendingRecord(overrides)).catch((error: unknown) => error);
        expect(failure, field).toBeInstanceOf(TypeError);
        expect((failure as Error).message).toContain(field);
        expect((failure as Error).message).not.toContain('secret');
      }
      await expect(store.completeMedia('example.org', 'pendingMediaId', completion({ size: -0.5 }))).rejects.toBeInstanceOf(TypeError);
      await expect(store.touchMedia('example.org', 'pendingMediaId', Number.POSITIVE_INFINITY)).rejects.toBeInstanceOf(TypeError);
      await expect(store.putServerKeys([serverKey({ keyId: 'k\0' })])).rejects.toBeInstanceOf(TypeError);
      await expect(store.putServerKeys([serverKey(), serverKey({ fetchedAt: 0.1 })])).rejects.toBeInstanceOf(TypeError);
      // Nothing was written by any refused call.
      expect(await store.getMedia('example.org', 'pendingMediaId')).toBeNull();
      expect(await store.getServerKeys('remote.example')).toEqual([]);
    });

    it('accepts the longest keys the schema allows on every backend', async () => {
      const record = pendingRecord({ serverName: 's'.repeat(255), mediaId: 'm'.repeat(255), userId: 'u'.repeat(255) });
      expect(await store.insertMedia(record)).toBe(true);
      expect(await store.getMedia(record.serverName, record.mediaId)).toStrictEqual(record);
    });
  });
}
