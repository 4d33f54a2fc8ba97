import type { MediaMetadataStore } from '@hsmedia/media-core';
import type { ServerKeyStore } from '@hsmedia/signing';
import { createPostgresMetadataStore } from '@hsmedia/store-postgres';
import { createSqliteMetadataStore } from '@hsmedia/store-sqlite';
import type { DatabaseConfig } from './database-config.js';

export {
  DEFAULT_APPLICATION_NAME,
  POSTGRES_DEFAULTS,
  describeDatabase,
  redactPostgresUrl,
  resolvePostgresDatabase,
  type DatabaseConfig,
  type PostgresDatabaseSection,
} from './database-config.js';

/** Diagnostics sink of the PostgreSQL pool (a pino logger fits). */
export interface DatabaseLog {
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/**
 * Opens the configured metadata store and brings its schema up to date.
 * PostgreSQL migrations hold an advisory lock, so instances starting
 * together migrate one after another; SQLite serialises on its file lock.
 */
export async function openMetadataStore(
  database: DatabaseConfig,
  log?: DatabaseLog,
): Promise<MediaMetadataStore & ServerKeyStore> {
  if (database.kind === 'sqlite') return createSqliteMetadataStore({ path: database.path, migrate: true });
  return createPostgresMetadataStore({
    url: database.url,
    pool: database.pool,
    statementTimeoutMs: database.statementTimeoutMs,
    applicationName: database.applicationName,
    migrate: true,
    ...(database.schema === undefined ? {} : { searchPath: database.schema }),
    ...(log === undefined ? {} : { log }),
  });
}
