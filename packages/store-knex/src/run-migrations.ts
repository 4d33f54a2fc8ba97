import type { Knex } from 'knex';
import { withMigrationLock } from './internal/migration-lock.js';
import { tableNamesFor, type TableNames } from './internal/table-names.js';
import { migrations, type StoreMigration } from './migrations/index.js';

/** Options for {@link runMigrations}. */
export interface RunMigrationsOptions {
  /** Prefix for every table this package creates (`[A-Za-z0-9_]{0,32}`); default none. */
  readonly tablePrefix?: string;
}

/**
 * Brings the schema up to date: runs every migration not yet recorded, in
 * order, in one transaction. Idempotent; safe to call on every start, also
 * from several processes at once (they take turns). The migrations live in
 * code (no directory lookup), so bundling works.
 *
 * Throws `TypeError` for an invalid `tablePrefix`; database errors propagate.
 */
export async function runMigrations(knex: Knex, options: RunMigrationsOptions = {}): Promise<void> {
  const tables = tableNamesFor(options.tablePrefix);
  const config: Knex.MigratorConfig = {
    tableName: tables.migrations,
    migrationSource: new InCodeMigrationSource(tables),
  };
  await withMigrationLock(knex, tables, async (trx) => {
    await trx.migrate.latest(config);
  });
}

/** Feeds knex's migrator from the {@link migrations} array, bound to one set of table names. */
class InCodeMigrationSource implements Knex.MigrationSource<StoreMigration> {
  readonly #tables: TableNames;

  constructor(tables: TableNames) {
    this.#tables = tables;
  }

  getMigrations(): Promise<StoreMigration[]> {
    return Promise.resolve([...migrations]);
  }

  getMigrationName(migration: StoreMigration): string {
    return migration.name;
  }

  getMigration(migration: StoreMigration): Promise<Knex.Migration> {
    const tables = this.#tables;
    return Promise.resolve({
      up: (knex: Knex) => migration.up(knex, tables),
      down: (knex: Knex) => migration.down(knex, tables),
    });
  }
}
