import { randomBytes } from 'node:crypto';
import knexFactory, { type Knex } from 'knex';
import { afterAll, describe, expect, it } from 'vitest';
import { describeKnexStoreBehaviour, type KnexTestDatabase } from './knex-store-behaviour.js';

// PostgreSQL smoke run: the same suites as SQLite, in a fresh schema per test
// file. Without a reachable server the file is skipped locally, but fails in CI
// (process.env.CI) so a broken service never passes silently.
const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

function connectionRefused(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (code === 'ECONNREFUSED') return true;
  // Node reports a refused dual-stack connect as an AggregateError of ECONNREFUSED.
  return error instanceof AggregateError && error.errors.some(connectionRefused);
}

/** The URL without its password, for messages. */
function redacted(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparsable PG_URL)';
  }
}

const admin = knexFactory({ client: 'pg', connection: PG_URL, pool: { min: 0, max: 1 } });
let unavailable: string | undefined;
try {
  await admin.raw('select 1');
} catch (error) {
  if (!connectionRefused(error) || process.env.CI) throw error;
  unavailable = `PostgreSQL at ${redacted(PG_URL)} refused the connection`;
}
if (unavailable !== undefined) {
  // eslint-disable-next-line no-console -- the only way to say why a file is skipped
  console.warn(`Skipping PostgreSQL tests: ${unavailable} (set PG_URL, or CI=1 to fail instead)`);
}

const schemas: string[] = [];
afterAll(async () => {
  for (const schema of schemas) await admin.raw('drop schema if exists ?? cascade', [schema]);
  await admin.destroy();
});

async function openPostgresDatabase(): Promise<KnexTestDatabase> {
  const schema = `t_${randomBytes(6).toString('hex')}`;
  schemas.push(schema);
  await admin.raw('create schema ??', [schema]);
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
      'hsmedia_migrations',
      'hsmedia_migrations_lock',
      'job_leases',
      'media',
      'server_keys',
      'thumbnails',
    ]);
    const indexes = (await admin.raw('select indexname from pg_indexes where schemaname = ? order by indexname', [
      schema,
    ])) as { rows: { indexname: string }[] };
    expect(indexes.rows.map((row) => row.indexname)).toEqual(
      expect.arrayContaining(['media_blob_id_idx', 'media_last_access_at_idx', 'media_pkey', 'media_user_id_idx', 'server_keys_pkey']),
    );
    await db.dispose();
  });
});
