import type { Knex } from 'knex';
import { tableNamesFor, type TableNames } from './internal/table-names.js';
import { migrations, type StoreMigration } from './migrations/index.js';

/** Options for {@link runMigrations}. */
export interface RunMigrationsOptions {
  /** Prefix for every table this package creates (`[A-Za-z0-9_]{0,32}`); default none. */
  readonly tablePrefix?: string;
}

// Another process (a second replica starting at the same time) may hold knex's
// migration lock for the few milliseconds its migrations take. Wait for it a
// bounded number of times instead of failing start-up; a lock left behind by a
// crash still surfaces as an error.
const LOCK_RETRIES = 20;
const LOCK_RETRY_DELAY_MS = 250;

/**
 * Brings the schema up to date: runs every migration not yet recorded, in
 * order, each in its own transaction. Idempotent; safe to call on every start.
 * The migrations live in code (no directory lookup), so bundling works.
 */
export async function runMigrations(knex: Knex, options: RunMigrationsOptions = {}): Promise<void> {
  const tables = tableNamesFor(options.tablePrefix);
  const config: Knex.MigratorConfig = {
    tableName: tables.migrations,
    migrationSource: new InCodeMigrationSource(tables),
  };
  for (let attempt = 0; ; attempt++) {
    try {
      await knex.migrate.latest(config);
      return;
    } catch (error) {
      if (!isMigrationLocked(error) || attempt >= LOCK_RETRIES) throw error;
      await new Promise((resolve) => setTimeout(resolve, LOCK_RETRY_DELAY_MS));
    }
  }
}

function isMigrationLocked(error: unknown): boolean {
  return error instanceof Error && error.name === 'MigrationLocked';
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
