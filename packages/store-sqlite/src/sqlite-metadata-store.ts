import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { KnexMetadataStore } from '@hsmedia/store-knex';
import knexFactory, { type Knex } from 'knex';

/** Options for {@link createSqliteMetadataStore}. */
export interface SqliteMetadataStoreOptions {
  /** Database file (its parent directory is created), or `':memory:'`. */
  readonly path: string;
  /** Run migrations before returning. Default true. */
  readonly migrate?: boolean;
  /** Prefix for every table (`[A-Za-z0-9_]{0,32}`); default none. */
  readonly tablePrefix?: string;
}

/** A {@link KnexMetadataStore} whose `close()` also closes the SQLite database. */
export type SqliteMetadataStore = KnexMetadataStore & { readonly knex: Knex };

/** The subset of a better-sqlite3 `Database` the connection hook uses. */
interface BetterSqliteConnection {
  pragma(source: string): unknown;
}

/**
 * Opens (creating if needed) a SQLite metadata database with better-sqlite3.
 *
 * One connection: SQLite serialises writers anyway, and a single connection
 * keeps a `:memory:` database alive for the store's lifetime. Pragmas:
 * `journal_mode = WAL` (readers never block the writer, and other processes
 * may read), `synchronous = NORMAL` (durable at checkpoints, safe with WAL),
 * `busy_timeout = 5000` (wait for another process's write lock instead of
 * failing at once) and `foreign_keys = ON`.
 *
 * Throws `TypeError` for a missing path; file-system and SQLite errors propagate.
 */
export async function createSqliteMetadataStore(
  options: SqliteMetadataStoreOptions,
): Promise<SqliteMetadataStore> {
  if (typeof options?.path !== 'string' || options.path.length === 0) {
    throw new TypeError('createSqliteMetadataStore: options.path must be a file path or ":memory:"');
  }
  const inMemory = options.path === ':memory:';
  const filename = inMemory ? options.path : resolve(options.path);
  if (!inMemory) await mkdir(dirname(filename), { recursive: true });

  const knex = knexFactory({
    client: 'better-sqlite3',
    connection: { filename },
    useNullAsDefault: true,
    // Error messages then carry the SQL with `?` placeholders, not the bound
    // values (media IDs, file names): they may end up in logs.
    compileSqlOnError: false,
    pool: {
      min: 1,
      max: 1,
      afterCreate(connection: BetterSqliteConnection, done: (error: Error | null, connection: unknown) => void) {
        try {
          connection.pragma('journal_mode = WAL');
          connection.pragma('synchronous = NORMAL');
          connection.pragma('busy_timeout = 5000');
          connection.pragma('foreign_keys = ON');
          done(null, connection);
        } catch (error) {
          done(error as Error, connection);
        }
      },
    },
  });

  const store = new KnexMetadataStore({
    knex,
    destroyKnexOnClose: true,
    ...(options.tablePrefix !== undefined ? { tablePrefix: options.tablePrefix } : {}),
  });
  if (options.migrate ?? true) {
    try {
      await store.migrate();
    } catch (error) {
      await knex.destroy();
      throw error;
    }
  }
  return store;
}
