import Database from 'better-sqlite3';
import pg from 'pg';

/** Where Synapse's database is: its SQLite file, or a PostgreSQL connection string. */
export type SynapseDatabaseLocation = { readonly sqlite: string } | { readonly postgres: string };

/** A row as the drivers give it: PostgreSQL `bigint` comes as a string, SQLite booleans as 0/1. */
export type Row = Record<string, unknown>;

/**
 * The few queries the reader runs, over either driver, always read-only:
 * SQLite is opened `readonly` (no journal written beside Synapse's file);
 * PostgreSQL sessions start with `default_transaction_read_only`, so no
 * statement of ours can write to Synapse's database.
 *
 * SQL is written once with `?` placeholders; PostgreSQL gets `$1, $2, …`.
 */
export interface SynapseDatabase {
  readonly dialect: 'sqlite' | 'postgres';
  query(sql: string, params?: readonly unknown[]): Promise<Row[]>;
  /** The column names of `table`; empty when the table does not exist. */
  columns(table: string): Promise<Set<string>>;
  close(): Promise<void>;
}

class SqliteSynapseDatabase implements SynapseDatabase {
  readonly dialect = 'sqlite' as const;
  readonly #db: Database.Database;

  constructor(path: string) {
    this.#db = new Database(path, { readonly: true, fileMustExist: true });
    // Wait for Synapse's own writes rather than failing when it still runs.
    this.#db.pragma('busy_timeout = 5000');
  }

  async query(sql: string, params: readonly unknown[] = []): Promise<Row[]> {
    return this.#db.prepare(sql).all(...params) as Row[];
  }

  async columns(table: string): Promise<Set<string>> {
    const rows = this.#db.prepare('SELECT name FROM pragma_table_info(?)').all(table) as { name: string }[];
    return new Set(rows.map((row) => row.name));
  }

  async close(): Promise<void> {
    this.#db.close();
  }
}

class PostgresSynapseDatabase implements SynapseDatabase {
  readonly dialect = 'postgres' as const;
  readonly #pool: pg.Pool;

  constructor(connectionString: string) {
    this.#pool = new pg.Pool({
      connectionString,
      max: 2,
      application_name: 'hsmedia-synapse-import',
      options: '-c default_transaction_read_only=on',
      connectionTimeoutMillis: 30_000,
    });
    // An idle client losing its server must not crash the process: the next query fails instead.
    this.#pool.on('error', () => {});
  }

  async query(sql: string, params: readonly unknown[] = []): Promise<Row[]> {
    let n = 0;
    const text = sql.replace(/\?/g, () => `$${++n}`);
    return (await this.#pool.query(text, params as unknown[])).rows as Row[];
  }

  async columns(table: string): Promise<Set<string>> {
    const rows = await this.query('SELECT column_name AS name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ?', [table]);
    return new Set(rows.map((row) => String(row.name)));
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}

/** Opens Synapse's database read-only. */
export async function openSynapseDatabase(location: SynapseDatabaseLocation): Promise<SynapseDatabase> {
  if ('sqlite' in location) return new SqliteSynapseDatabase(location.sqlite);
  const db = new PostgresSynapseDatabase(location.postgres);
  try {
    await db.query('SELECT 1');
  } catch (err) {
    await db.close().catch(() => {});
    throw err;
  }
  return db;
}

/** A nullable integer column (PostgreSQL `bigint` arrives as a string). */
export function intOrNull(value: unknown): number | null {
  if (value === null || value === undefined) return null;
  const n = typeof value === 'number' ? value : Number(value);
  return Number.isFinite(n) ? n : null;
}

/** A boolean column (SQLite keeps 0/1). */
export function bool(value: unknown): boolean {
  return value === true || value === 1 || value === '1' || value === 't';
}

/** A nullable text column. */
export function textOrNull(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}
