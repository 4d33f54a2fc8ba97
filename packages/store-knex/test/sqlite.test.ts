import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KnexMetadataStore, runMigrations } from '@hsmedia/store-knex';
import knexFactory, { type Knex } from 'knex';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeBlobReferenceLedger } from './blob-refs-behaviour.js';
import { describeKnexStoreBehaviour, type KnexTestDatabase } from './knex-store-behaviour.js';

/** A plain better-sqlite3 knex on a fresh file (store-sqlite adds pragmas on top). */
async function openSqliteDatabase(): Promise<KnexTestDatabase> {
  const dir = await mkdtemp(join(tmpdir(), 'hsmedia-store-knex-'));
  const knex = knexFactory({
    client: 'better-sqlite3',
    connection: { filename: join(dir, 'media.db') },
    useNullAsDefault: true,
    compileSqlOnError: false,
  });
  return {
    knex,
    async dispose() {
      await knex.destroy();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

describeKnexStoreBehaviour('SQLite (better-sqlite3)', openSqliteDatabase);
describeBlobReferenceLedger('SQLite (better-sqlite3)', openSqliteDatabase);

describe('KnexMetadataStore on SQLite: schema', () => {
  let db: KnexTestDatabase;
  beforeEach(async () => {
    db = await openSqliteDatabase();
  });
  afterEach(async () => {
    await db.dispose();
  });

  async function indexedColumns(knex: Knex, table: string): Promise<string[][]> {
    const indexes = (await knex.raw(`pragma index_list(${table})`)) as { name: string }[];
    const columns: string[][] = [];
    for (const index of indexes) {
      const info = (await knex.raw(`pragma index_info(${index.name})`)) as { name: string }[];
      columns.push(info.map((column) => column.name));
    }
    return columns;
  }

  it('creates the media and server_keys tables with their keys and indexes', async () => {
    await runMigrations(db.knex);
    const media = await indexedColumns(db.knex, 'media');
    expect(media).toEqual(
      expect.arrayContaining([['server_name', 'media_id'], ['blob_id'], ['user_id'], ['last_access_at']]),
    );
    expect(await indexedColumns(db.knex, 'server_keys')).toEqual([['server_name', 'key_id']]);
  });

  it('getMedia is a primary-key lookup, isBlobReferenced uses the blob_id index', async () => {
    const store = new KnexMetadataStore({ knex: db.knex });
    await store.migrate();
    const planOf = async (query: Knex.QueryBuilder): Promise<string> => {
      const { sql, bindings } = query.toSQL();
      const rows = (await db.knex.raw(`explain query plan ${sql}`, bindings)) as { detail: string }[];
      return rows.map((row) => row.detail).join('\n');
    };
    const getMediaPlan = await planOf(
      db.knex('media').select('*').where({ server_name: 'a', media_id: 'b' }).first(),
    );
    expect(getMediaPlan).toMatch(/SEARCH media USING INDEX sqlite_autoindex_media_1 \(server_name=\? AND media_id=\?\)/);
    const blobPlan = await planOf(db.knex('media').select('media_id').where({ blob_id: 'x' }).first());
    expect(blobPlan).toMatch(/USING INDEX media_blob_id_idx/);
    await store.close();
  });

  it('prefixes tables, indexes and the migrations table', async () => {
    await runMigrations(db.knex, { tablePrefix: 'hs_' });
    const tables = (await db.knex('sqlite_master').select('name').orderBy('name')) as { name: string }[];
    const names = tables.map((row) => row.name).filter((name) => !name.startsWith('sqlite_'));
    expect(names).toEqual([
      'hs_admin_audit',
      'hs_admin_audit_action_idx',
      'hs_admin_audit_target_idx',
      'hs_blob_refs',
      'hs_blocked_hashes',
      'hs_hsmedia_migrations',
      'hs_hsmedia_migrations_lock',
      'hs_hsmedia_migrations_mutex',
      'hs_import_cursors',
      'hs_job_leases',
      'hs_media',
      'hs_media_blob_id_idx',
      'hs_media_blob_refs_delete',
      'hs_media_blob_refs_insert',
      'hs_media_blob_refs_update_new',
      'hs_media_blob_refs_update_old',
      'hs_media_created_at_idx',
      'hs_media_last_access_at_idx',
      'hs_media_scan_state_idx',
      'hs_media_sha256_idx',
      'hs_media_user_id_idx',
      'hs_rate_limit_buckets',
      'hs_server_keys',
      'hs_thumbnails',
      'hs_thumbnails_blob_id_idx',
      'hs_thumbnails_blob_refs_delete',
      'hs_thumbnails_blob_refs_insert',
      'hs_thumbnails_blob_refs_update_new',
      'hs_thumbnails_blob_refs_update_old',
      'hs_url_previews',
      'hs_url_previews_expires_at_idx',
    ]);
  });

  it('coexists with a host application that uses knex_migrations itself', async () => {
    await db.knex.schema.createTable('knex_migrations', (table) => {
      table.increments('id');
      table.string('name');
    });
    await db.knex('knex_migrations').insert({ name: '20240101_host_app.js' });
    await runMigrations(db.knex);
    expect(await db.knex('knex_migrations').count({ n: '*' })).toEqual([{ n: 1 }]);
  });

  it('refuses a bad tablePrefix or a missing knex with TypeError', () => {
    for (const tablePrefix of ['bad-prefix', 'x; drop table media', 'ü', 'a'.repeat(33)]) {
      expect(() => new KnexMetadataStore({ knex: db.knex, tablePrefix })).toThrow(TypeError);
    }
    expect(() => new KnexMetadataStore({ knex: undefined as unknown as Knex })).toThrow(TypeError);
    expect(() => new KnexMetadataStore({ knex: db.knex, tablePrefix: 'ok_Prefix_1' })).not.toThrow();
  });

  it('rejects runMigrations with a bad tablePrefix before touching the database', async () => {
    await expect(runMigrations(db.knex, { tablePrefix: 'no-dash' })).rejects.toBeInstanceOf(TypeError);
    expect(await db.knex.schema.hasTable('hsmedia_migrations')).toBe(false);
  });

  it('destroyKnexOnClose: close() destroys the knex instance', async () => {
    const owned = await openSqliteDatabase();
    const store = new KnexMetadataStore({ knex: owned.knex, destroyKnexOnClose: true });
    await store.migrate();
    await store.close();
    await expect(owned.knex.raw('select 1')).rejects.toThrow();
    await owned.dispose();
  });
});

describe('KnexMetadataStore retryRead', () => {
  let db: KnexTestDatabase;
  beforeEach(async () => {
    db = await openSqliteDatabase();
  });
  afterEach(async () => {
    await db.dispose();
  });

  const record = {
    serverName: 'example.org',
    mediaId: 'retried',
    blobId: 'blob_r',
    contentType: 'text/plain',
    uploadName: null,
    size: 3,
    sha256: 'a'.repeat(64),
    userId: '@alice:example.org',
    createdAt: 1_700_000_000_000,
    uploadedAt: 1_700_000_000_000,
    expiresAt: null,
    authenticated: true,
    quarantined: false,
    lastAccessAt: null,
  };

  // The media table is renamed away so statements on it fail for real; the
  // knex 'query' event counts the statements each call sends.
  async function storeWithMissingTable() {
    const consulted: unknown[] = [];
    const store = new KnexMetadataStore({
      knex: db.knex,
      retryRead: (error) => {
        consulted.push(error);
        return true;
      },
    });
    await store.migrate();
    await store.insertMedia(record);
    await db.knex.schema.renameTable('media', 'media_away');
    let statements = 0;
    db.knex.on('query', () => {
      statements += 1;
    });
    return {
      store,
      consulted,
      /** Statements sent since the last call. */
      sent(): number {
        const n = statements;
        statements = 0;
        return n;
      },
    };
  }

  it('a failed read runs once more when the policy says so, and only once', async () => {
    const { store, consulted, sent } = await storeWithMissingTable();
    await expect(store.getMedia(record.serverName, record.mediaId)).rejects.toThrow(/no such table/);
    expect(sent()).toBe(2);
    expect(consulted).toHaveLength(1);
    expect(String(consulted[0])).toMatch(/no such table/);
    await expect(store.getUserUsage(record.userId, 0)).rejects.toThrow(/no such table/);
    expect(sent()).toBe(2);
    await expect(store.listMedia({}, { limit: 10 })).rejects.toThrow(/no such table/);
    expect(sent()).toBe(2);
    await db.knex.schema.renameTable('media_away', 'media');
    sent();
    expect(await store.getMedia(record.serverName, record.mediaId)).toMatchObject({ mediaId: 'retried' });
    expect(sent()).toBe(1);
    expect(consulted).toHaveLength(3);
  });

  it('writes never consult the policy; a read it declines rejects after one attempt', async () => {
    const { store, consulted, sent } = await storeWithMissingTable();
    await expect(store.insertMedia({ ...record, mediaId: 'other' })).rejects.toThrow(/no such table/);
    await expect(store.touchMedia(record.serverName, record.mediaId, 5)).rejects.toThrow(/no such table/);
    await expect(store.deleteMedia(record.serverName, record.mediaId)).rejects.toThrow(/no such table/);
    expect(sent()).toBe(3);
    expect(consulted).toHaveLength(0);

    const declined: unknown[] = [];
    const declining = new KnexMetadataStore({
      knex: db.knex,
      retryRead: (error) => {
        declined.push(error);
        return false;
      },
    });
    await expect(declining.getMedia(record.serverName, record.mediaId)).rejects.toThrow(/no such table/);
    expect(sent()).toBe(1);
    expect(declined).toHaveLength(1);
  });
});
