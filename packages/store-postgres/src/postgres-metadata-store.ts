import { KnexMetadataStore, type KnexMetadataStoreOptions } from '@hsmedia/store-knex';
import knexFactory, { type Knex } from 'knex';
import {
  checkApplicationName,
  checkNonNegativeInteger,
  checkPositiveInteger,
  checkSchemaName,
  checkUrl,
} from './internal/options.js';
import { ConnectionGenerations, isConnectionLost } from './internal/connection-loss.js';

/** Options for {@link createPostgresMetadataStore}. */
export interface PostgresMetadataStoreOptions {
  /**
   * Connection URL, `postgres://user:password@host:port/database` (query
   * parameters such as `sslmode` are passed to `pg`). Never logged or echoed.
   */
  readonly url: string;
  /** Connection pool size. Default `{ min: 0, max: 10 }`. */
  readonly pool?: {
    /** Connections kept open while idle. Default 0 (idle connections close after 30 s). */
    readonly min?: number;
    /** Most connections this store opens at once. Default 10. */
    readonly max?: number;
  };
  /**
   * `statement_timeout` of every pooled connection, in milliseconds: a
   * statement running longer is cancelled and its call rejects. 0 disables.
   * Default 30 000. Applies to migrations too.
   */
  readonly statementTimeoutMs?: number;
  /**
   * How long a call waits for a pooled connection (pool exhausted, or the
   * database not accepting connections) before it rejects. Default 5 000.
   */
  readonly acquireConnectionTimeoutMs?: number;
  /** How long opening one connection may take. Default 5 000. */
  readonly connectTimeoutMs?: number;
  /** Schema to create and use the tables in (sets `search_path`). Default: the role's `search_path`. */
  readonly searchPath?: string;
  /** Prefix for every table (`[A-Za-z0-9_]{0,32}`); default none. */
  readonly tablePrefix?: string;
  /** Run migrations before returning. Default true. */
  readonly migrate?: boolean;
  /** `application_name` of the connections (shows in `pg_stat_activity`). Default `hsmedia`. */
  readonly applicationName?: string;
  /**
   * Where knex's connection warnings go (one per failed connection attempt
   * while the database is down, with the driver's message). Default: the console.
   */
  readonly log?: PostgresStoreLog;
}

/** Receiver of knex's diagnostics, pino-shaped: the `Logger` of `@hsmedia/media-core` and pino loggers fit. */
export interface PostgresStoreLog {
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const LOG_CONTEXT = { component: 'store-postgres' } as const;

/** The subset of a `pg` client the store talks to directly. */
interface PgConnection {
  query(sql: string, values?: readonly unknown[]): Promise<unknown>;
}

const DEFAULT_POOL_MAX = 10;
const DEFAULT_STATEMENT_TIMEOUT_MS = 30_000;
const DEFAULT_ACQUIRE_TIMEOUT_MS = 5_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
const DEFAULT_APPLICATION_NAME = 'hsmedia';

/**
 * First key of the two-key advisory lock that serialises migrations ("hsmd").
 * The second key hashes the schema and table prefix, so stores in different
 * schemas of one database migrate independently.
 */
const MIGRATION_LOCK_CLASS = 0x68736d64;
const LOCK_SQL = "select pg_advisory_lock($1, hashtext(coalesce(current_schema(), '') || '.' || $2))";
const UNLOCK_SQL = "select pg_advisory_unlock($1, hashtext(coalesce(current_schema(), '') || '.' || $2))";

/**
 * A {@link KnexMetadataStore} on PostgreSQL whose {@link PostgresMetadataStore.migrate}
 * is safe to run from several processes at once.
 */
export class PostgresMetadataStore extends KnexMetadataStore {
  readonly #tablePrefix: string;

  /** Same options as {@link KnexMetadataStore}; `knex` must use the `pg` client. */
  constructor(options: KnexMetadataStoreOptions) {
    super(options);
    this.#tablePrefix = options.tablePrefix ?? '';
  }

  /**
   * Creates or upgrades the schema while holding a PostgreSQL advisory lock on
   * a dedicated connection. knex's own migration lock does not cover creating
   * its bookkeeping tables: on a fresh schema, instances starting together
   * fail with "relation already exists" (see the concurrent-migrations test).
   * The lock wait is not bounded by `statementTimeoutMs` (the dedicated
   * connection bypasses the pool); a session that dies releases its lock.
   */
  override async migrate(): Promise<void> {
    // Outside the pool: with `pool.max = 1` the migrations need the one pooled connection.
    const connection = (await this.knex.client.acquireRawConnection()) as PgConnection;
    try {
      await connection.query(LOCK_SQL, [MIGRATION_LOCK_CLASS, this.#tablePrefix]);
      try {
        await super.migrate();
      } finally {
        // Best effort: closing the session below releases the lock anyway.
        await connection.query(UNLOCK_SQL, [MIGRATION_LOCK_CLASS, this.#tablePrefix]).catch(() => undefined);
      }
    } finally {
      await this.knex.client.destroyRawConnection(connection);
    }
  }
}

/**
 * Opens a pooled PostgreSQL metadata store (knex on `pg`) and, unless
 * `migrate: false`, brings its schema up to date before returning.
 *
 * Resilience: every pooled connection sets `statement_timeout`; `pg` clients
 * get an `'error'` listener (a backend terminated while idle must not crash
 * the process) and dead connections are discarded when next acquired. While
 * the database is down, calls reject (connection refused, or after
 * `acquireConnectionTimeoutMs`); once it is back, new connections are opened
 * on demand: the store recovers without being recreated. A read whose
 * connection was terminated under it (SQLSTATE 57P01/57P02, a reset socket)
 * runs once more on a connection opened after the failure; writes are never
 * retried (the database may have applied them).
 *
 * Throws `TypeError` for invalid options (never echoing the URL); a database
 * that is unreachable or fails to migrate rejects, and nothing stays open.
 */
export async function createPostgresMetadataStore(
  options: PostgresMetadataStoreOptions,
): Promise<PostgresMetadataStore> {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('createPostgresMetadataStore: options must be an object');
  }
  const url = checkUrl(options.url);
  const poolMin = checkNonNegativeInteger('pool.min', options.pool?.min ?? 0);
  const poolMax = checkPositiveInteger('pool.max', options.pool?.max ?? DEFAULT_POOL_MAX);
  if (poolMin > poolMax) throw new TypeError('createPostgresMetadataStore: pool.min must not exceed pool.max');
  const statementTimeoutMs = checkNonNegativeInteger(
    'statementTimeoutMs',
    options.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS,
  );
  const acquireTimeoutMs = checkPositiveInteger(
    'acquireConnectionTimeoutMs',
    options.acquireConnectionTimeoutMs ?? DEFAULT_ACQUIRE_TIMEOUT_MS,
  );
  const connectTimeoutMs = checkPositiveInteger('connectTimeoutMs', options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
  const searchPath = options.searchPath === undefined ? undefined : checkSchemaName(options.searchPath);
  const applicationName = checkApplicationName(options.applicationName ?? DEFAULT_APPLICATION_NAME);

  const generations = new ConnectionGenerations();
  const config: Knex.Config = {
    client: 'pg',
    connection: {
      connectionString: url,
      application_name: applicationName,
      connectionTimeoutMillis: connectTimeoutMs,
      // Notice a peer that vanished without closing the socket (host down, NAT timeout).
      keepAlive: true,
    } as Knex.PgConnectionConfig,
    acquireConnectionTimeout: acquireTimeoutMs,
    // Error messages then carry the SQL with placeholders, not the bound
    // values (media IDs, file names): they may end up in logs.
    compileSqlOnError: false,
    pool: {
      min: poolMin,
      max: poolMax,
      afterCreate(connection: PgConnection, done: (error: Error | null, connection: unknown) => void) {
        generations.stamp(connection);
        // An integer from checkNonNegativeInteger, so inlining is safe (SET takes no parameters).
        connection.query(`set statement_timeout = ${statementTimeoutMs}`).then(
          () => done(null, connection),
          (error: unknown) => done(error as Error, connection),
        );
      },
      validate: (connection: PgConnection) => generations.isCurrent(connection),
    },
  };
  if (searchPath !== undefined) config.searchPath = [searchPath];
  const log = options.log;
  if (log !== undefined) {
    config.log = {
      warn: (message: string) => log.warn(LOG_CONTEXT, String(message)),
      error: (message: string) => log.error(LOG_CONTEXT, String(message)),
      deprecate: (method: string, alternative: string) =>
        log.warn(LOG_CONTEXT, `${method} is deprecated, use ${alternative}`),
      debug: () => undefined,
    };
  }
  // A read that failed because its connection died runs once more, on a
  // connection opened after the failure (see ConnectionGenerations).
  const retryRead = (error: unknown): boolean => {
    if (!isConnectionLost(error)) return false;
    generations.retireAll();
    return true;
  };
  const knex = knexFactory(config);

  let store: PostgresMetadataStore;
  try {
    store = new PostgresMetadataStore({
      knex,
      destroyKnexOnClose: true,
      retryRead,
      ...(options.tablePrefix !== undefined ? { tablePrefix: options.tablePrefix } : {}),
    });
    if (options.migrate ?? true) await store.migrate();
  } catch (error) {
    await knex.destroy();
    throw error;
  }
  return store;
}
