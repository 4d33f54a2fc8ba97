import { MIGRATION_NAMES } from '@hsmedia/store-knex';
import { createPostgresMetadataStore, type PostgresMetadataStore } from '@hsmedia/store-postgres';
import { afterAll, describe, expect, it } from 'vitest';
import { PG_URL, openPostgresTestEnv } from '@hsmedia/test-fixtures/postgres';

const env = await openPostgresTestEnv();
afterAll(() => env.dispose());

const INSTANCES = 4;

async function appliedMigrations(schema: string, tablePrefix = ''): Promise<string[]> {
  const rows = (await env.admin
    .withSchema(schema)
    .table(`${tablePrefix}hsmedia_migrations`)
    .select('name')
    .orderBy('id')) as { name: string }[];
  return rows.map((row) => row.name);
}

/** Opens `INSTANCES` stores at once, each its own knex and pool, as replicas starting together would. */
async function startInstances(schema: string, tablePrefix?: string): Promise<PostgresMetadataStore[]> {
  const outcomes = await Promise.allSettled(
    Array.from({ length: INSTANCES }, () =>
      createPostgresMetadataStore({
        url: PG_URL,
        searchPath: schema,
        // One pooled connection each: the advisory lock must not need a second one.
        pool: { max: 1 },
        ...(tablePrefix !== undefined ? { tablePrefix } : {}),
      }),
    ),
  );
  const stores = outcomes.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value] : []));
  const failures = outcomes.flatMap((outcome) => (outcome.status === 'rejected' ? [String(outcome.reason)] : []));
  if (failures.length > 0) {
    await Promise.all(stores.map((store) => store.close()));
    expect(failures).toEqual([]);
  }
  return stores;
}

describe.skipIf(env.unavailable !== undefined)('migrations on PostgreSQL', () => {
  it(`${INSTANCES} instances migrating a fresh schema at once all start, and migrate once`, async () => {
    // Without the advisory lock this fails most runs: knex creates its
    // bookkeeping tables before taking its own lock ("relation already exists").
    for (let round = 0; round < 3; round++) {
      const schema = await env.createSchema();
      const stores = await startInstances(schema);
      expect(stores).toHaveLength(INSTANCES);
      expect(await appliedMigrations(schema)).toEqual([...MIGRATION_NAMES]);
      // They share one schema: what one writes, the others read.
      const record = {
        serverName: 'example.org',
        mediaId: `round${round}`,
        blobId: null,
        contentType: null,
        uploadName: null,
        size: null,
        sha256: null,
        userId: null,
        createdAt: 1,
        uploadedAt: null,
        expiresAt: null,
        authenticated: false,
        quarantined: false,
        lastAccessAt: null,
      };
      expect(await stores[0]!.insertMedia(record)).toBe(true);
      for (const store of stores) expect(await store.getMedia('example.org', `round${round}`)).toStrictEqual(record);
      await Promise.all(stores.map((store) => store.close()));
    }
  });

  it('instances restarting against an up-to-date schema start without migrating again', async () => {
    const schema = await env.createSchema();
    for (const store of await startInstances(schema, 'hs_')) await store.close();
    for (const store of await startInstances(schema, 'hs_')) await store.close();
    expect(await appliedMigrations(schema, 'hs_')).toEqual([...MIGRATION_NAMES]);
    // knex's own lock is left released.
    const lock = (await env.admin.withSchema(schema).table('hs_hsmedia_migrations_lock').select('is_locked')) as {
      is_locked: number;
    }[];
    expect(lock).toEqual([{ is_locked: 0 }]);
  });

  it('stores in different schemas migrate independently (the lock is per schema and prefix)', async () => {
    const first = await env.createSchema();
    const second = await env.createSchema();
    const stores = await Promise.all(
      [first, second].map((searchPath) => createPostgresMetadataStore({ url: PG_URL, searchPath })),
    );
    expect(await appliedMigrations(first)).toEqual([...MIGRATION_NAMES]);
    expect(await appliedMigrations(second)).toEqual([...MIGRATION_NAMES]);
    await Promise.all(stores.map((store) => store.close()));
  });

  it('a store that fails to migrate rejects and leaves no connection open', async () => {
    const schema = await env.createSchema();
    const warnings: string[] = [];
    // A table named like the store's, but not the store's: the migration's CREATE TABLE fails.
    await env.admin.schema.withSchema(schema).createTable('media', (table) => table.integer('id'));
    const failure = await createPostgresMetadataStore({
      url: PG_URL,
      searchPath: schema,
      applicationName: 'hsmedia-test-failing-migration',
      log: { warn: (_context, message) => warnings.push(message ?? ''), error: (_context, message) => warnings.push(message ?? '') },
    }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(Error);
    expect(warnings.join('\n')).toMatch(/relation "media" already exists/);
    // A backend leaves pg_stat_activity shortly after its client disconnects.
    const deadline = Date.now() + 10_000;
    let open = -1;
    while (open !== 0 && Date.now() < deadline) {
      const sessions = (await env.admin.raw(
        'select count(*)::int as n from pg_stat_activity where application_name = ?',
        ['hsmedia-test-failing-migration'],
      )) as { rows: { n: number }[] };
      open = sessions.rows[0]?.n ?? -1;
      if (open !== 0) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(open).toBe(0);
  });
});
