import knexFactory, { type Knex } from 'knex';
import { afterAll, describe, expect, it } from 'vitest';
import { PG_URL, openPostgresTestEnv } from '@hsmedia/test-fixtures/postgres';
import { describeBlobReferenceLedger } from './blob-refs-behaviour.js';
import { describeKnexStoreBehaviour, type KnexTestDatabase } from './knex-store-behaviour.js';

// PostgreSQL smoke run: the same suites as SQLite, in a fresh schema per test
// file. Without a reachable server the file is skipped locally, but fails in CI
// (process.env.CI) so a broken service never passes silently.
const env = await openPostgresTestEnv('PostgreSQL tests of store-knex');
const { admin, unavailable } = env;
const schemas: string[] = [];
afterAll(() => env.dispose());

async function openPostgresDatabase(): Promise<KnexTestDatabase> {
  const schema = await env.createSchema();
  schemas.push(schema);
  const knex: Knex = knexFactory({
    client: 'pg',
    connection: PG_URL,
    searchPath: [schema],
    pool: { min: 0, max: 4 },
    compileSqlOnError: false,
  });
  return {
    knex,
    async dispose() {
      await knex.destroy();
    },
  };
}

describe.skipIf(unavailable !== undefined)('PostgreSQL', () => {
  describeKnexStoreBehaviour('PostgreSQL (pg)', openPostgresDatabase);
  describeBlobReferenceLedger('PostgreSQL (pg)', openPostgresDatabase);

  it('several processes migrating one fresh schema at the same time all succeed', async () => {
    const { runMigrations, MIGRATION_NAMES } = await import('@hsmedia/store-knex');
    const first = await openPostgresDatabase();
    const schema = schemas.at(-1)!;
    const others = Array.from({ length: 3 }, () =>
      knexFactory({ client: 'pg', connection: PG_URL, searchPath: [schema], compileSqlOnError: false }),
    );
    await Promise.all([first.knex, ...others].map((knex) => runMigrations(knex)));
    const applied = (await first.knex('hsmedia_migrations').select('name')) as { name: string }[];
    expect(applied.map((row) => row.name)).toEqual([...MIGRATION_NAMES]);
    expect(await first.knex('hsmedia_migrations_lock').count({ n: '*' })).toEqual([{ n: '1' }]);
    for (const knex of others) await knex.destroy();
    await first.dispose();
  });

  it('creates the schema in the configured search path only', async () => {
    const db = await openPostgresDatabase();
    const { runMigrations } = await import('@hsmedia/store-knex');
    await runMigrations(db.knex);
    const schema = schemas.at(-1)!;
    const result = (await admin.raw(
      'select tablename from pg_tables where schemaname = ? order by tablename',
      [schema],
    )) as { rows: { tablename: string }[] };
    expect(result.rows.map((row) => row.tablename)).toEqual([
      'admin_audit',
      'blob_refs',
      'blocked_hashes',
      'hsmedia_migrations',
      'hsmedia_migrations_lock',
      'import_cursors',
      'job_leases',
      'media',
      'rate_limit_buckets',
      'server_keys',
      'thumbnails',
      'url_previews',
    ]);
    const indexes = (await admin.raw('select indexname from pg_indexes where schemaname = ? order by indexname', [
      schema,
    ])) as { rows: { indexname: string }[] };
    expect(indexes.rows.map((row) => row.indexname)).toEqual(
      expect.arrayContaining(['admin_audit_pkey', 'admin_audit_target_idx', 'blocked_hashes_pkey', 'media_blob_id_idx', 'media_last_access_at_idx', 'media_pkey', 'media_user_id_idx', 'server_keys_pkey']),
    );
    await db.dispose();
  });
});
