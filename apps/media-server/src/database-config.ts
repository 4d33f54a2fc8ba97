/**
 * The `database:` config section resolved: defaults, `DatabaseConfig` and
 * its one-line description (`check-config`). Pure data: the config loader imports this module; the stores are opened
 * by `database.ts` (which loads the SQL drivers) when a command needs them.
 */

/** `application_name` of the server's PostgreSQL sessions unless configured. */
export const DEFAULT_APPLICATION_NAME = 'hsmedia-server';

/** Defaults of `database.postgres` (config.ts writes them into the schema). */
export const POSTGRES_DEFAULTS: {
  readonly pool_min: number;
  readonly pool_max: number;
  readonly statement_timeout_ms: number;
} = { pool_min: 0, pool_max: 10, statement_timeout_ms: 30_000 };

/** `database.postgres` of the config file after validation and defaults. */
export interface PostgresDatabaseSection {
  readonly url: string;
  readonly pool: { readonly min: number; readonly max: number };
  readonly statement_timeout_ms: number;
  readonly schema?: string | undefined;
  readonly application_name: string;
}

/** Where media metadata lives, resolved. */
export type DatabaseConfig =
  | { readonly kind: 'sqlite'; readonly path: string }
  | {
      readonly kind: 'postgres';
      /** Secret: never log it; see {@link describeDatabase}. */
      readonly url: string;
      readonly pool: { readonly min: number; readonly max: number };
      readonly statementTimeoutMs: number;
      readonly schema: string | undefined;
      readonly applicationName: string;
    };

/** Turns the validated `database.postgres` section into its {@link DatabaseConfig}. */
export function resolvePostgresDatabase(section: PostgresDatabaseSection): DatabaseConfig {
  return {
    kind: 'postgres',
    url: section.url,
    pool: { min: section.pool.min, max: section.pool.max },
    statementTimeoutMs: section.statement_timeout_ms,
    schema: section.schema,
    applicationName: section.application_name,
  };
}

/** The URL without its password (and query, which may carry secrets), for messages. */
export function redactPostgresUrl(url: string): string {
  try {
    const parsed = new URL(url);
    const user = parsed.username === '' ? '' : `${parsed.username}@`;
    return `${parsed.protocol}//${user}${parsed.host}${parsed.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

/** One line naming the database, safe to print and log. */
export function describeDatabase(database: DatabaseConfig): string {
  if (database.kind === 'sqlite') return `sqlite ${database.path}`;
  const schema = database.schema === undefined ? '' : ` schema ${database.schema}`;
  return `postgres ${redactPostgresUrl(database.url)}${schema} (pool ${database.pool.min}..${database.pool.max})`;
}
