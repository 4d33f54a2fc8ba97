import { access } from 'node:fs/promises';
import { createPostgresMetadataStore } from '@hsmedia/store-postgres';
import { createSqliteMetadataStore } from '@hsmedia/store-sqlite';
import type { Knex } from 'knex';
import { redactPostgresUrl } from '../database.js';

/** Options of {@link migrateSqliteToPostgres}. */
export interface SqliteToPostgresOptions {
  /** The SQLite database file (it must exist). */
  readonly from: string;
  /** The PostgreSQL URL (a secret: never printed). */
  readonly to: string;
  /** Schema in PostgreSQL; default the role's search_path. */
  readonly schema?: string | undefined;
  /** Rows per read and per insert. Default 500. */
  readonly batchSize?: number;
  /** Progress lines (one per table). */
  readonly progress?: (line: string) => void;
}

/** What was copied, per table. */
export interface TableCopyReport {
  readonly table: string;
  /** Rows in SQLite. */
  readonly source: number;
  /** Rows inserted into PostgreSQL by this run. */
  readonly inserted: number;
  /** Rows that were already there (same primary key) and were left alone. */
  readonly skipped: number;
  /** Rows in PostgreSQL afterwards (may exceed `source` when PostgreSQL already had its own). */
  readonly target: number;
}

/** Tables never copied: migration bookkeeping (each side has its own) and leases (ephemeral). */
const SKIPPED_TABLE_RE = /(^sqlite_|hsmedia_migrations|job_leases$)/;

/** Why {@link migrateSqliteToPostgres} refused or failed; the message is safe to print. */
export class MetadataMigrationError extends Error {
  override readonly name = 'MetadataMigrationError';
}

/**
 * Copies every metadata table (media, server keys, thumbnails and whatever
 * later migrations add) from a SQLite database to PostgreSQL, in batches.
 * Both schemas are migrated to the current version first. Idempotent: rows
 * whose primary key already exists in PostgreSQL are skipped, so a run that
 * was interrupted can simply be repeated. Afterwards every table is counted
 * on both sides; fewer rows in PostgreSQL than in SQLite is an error.
 * Blobs are not touched: point the PostgreSQL instances at the same media
 * directory.
 */
export async function migrateSqliteToPostgres(options: SqliteToPostgresOptions): Promise<TableCopyReport[]> {
  const batchSize = options.batchSize ?? 500;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1 || batchSize > 10_000) {
    throw new MetadataMigrationError('--batch-size must be an integer from 1 to 10000');
  }
  try {
    await access(options.from);
  } catch {
    throw new MetadataMigrationError(`SQLite database not found: ${options.from}`);
  }
  const progress = options.progress ?? (() => undefined);
  const sqlite = await createSqliteMetadataStore({ path: options.from, migrate: true });
  let postgres;
  try {
    postgres = await createPostgresMetadataStore({
      url: options.to,
      migrate: true,
      applicationName: 'hsmedia-migrate',
      ...(options.schema === undefined ? {} : { searchPath: options.schema }),
    });
  } catch (error) {
    await sqlite.close();
    throw new MetadataMigrationError(
      `cannot open PostgreSQL at ${redactPostgresUrl(options.to)}: ${(error as Error).message}`,
    );
  }
  try {
    const reports: TableCopyReport[] = [];
    for (const table of await sqliteTables(sqlite.knex)) {
      if (SKIPPED_TABLE_RE.test(table)) continue;
      const columns = await commonColumns(sqlite.knex, postgres.knex, table);
      if (columns === null) {
        progress(`${table}: not in the PostgreSQL schema, skipped`);
        continue;
      }
      const report = await copyTable(sqlite.knex, postgres.knex, table, columns, batchSize);
      progress(
        `${table}: ${report.source} rows in SQLite, ${report.inserted} inserted, ${report.skipped} already present, ${report.target} in PostgreSQL`,
      );
      if (report.target < report.source) {
        throw new MetadataMigrationError(`${table}: PostgreSQL has ${report.target} rows, fewer than the ${report.source} in SQLite`);
      }
      reports.push(report);
    }
    return reports;
  } finally {
    await postgres.close();
    await sqlite.close();
  }
}

async function sqliteTables(knex: Knex): Promise<string[]> {
  const rows = (await knex('sqlite_master').select('name').where({ type: 'table' }).orderBy('name')) as { name: string }[];
  return rows.map((row) => row.name);
}

interface ColumnInfo {
  readonly name: string;
  readonly boolean: boolean;
}

/** Columns both sides have (by name), or null when PostgreSQL lacks the table. */
async function commonColumns(sqlite: Knex, postgres: Knex, table: string): Promise<ColumnInfo[] | null> {
  const target = (await postgres.raw(
    'select column_name, data_type from information_schema.columns where table_schema = current_schema() and table_name = ?',
    [table],
  )) as { rows: { column_name: string; data_type: string }[] };
  if (target.rows.length === 0) return null;
  const types = new Map(target.rows.map((row) => [row.column_name, row.data_type]));
  const source = (await sqlite.raw('select name from pragma_table_info(?)', [table])) as { name: string }[];
  return source
    .filter((column) => types.has(column.name))
    .map((column) => ({ name: column.name, boolean: types.get(column.name) === 'boolean' }));
}

async function copyTable(
  sqlite: Knex,
  postgres: Knex,
  table: string,
  columns: readonly ColumnInfo[],
  batchSize: number,
): Promise<TableCopyReport> {
  const names = columns.map((column) => column.name);
  let lastRowid = Number.NEGATIVE_INFINITY;
  let source = 0;
  let inserted = 0;
  for (;;) {
    // Keyset paging on SQLite's rowid: stable and cheap however large the table.
    const rows = (await sqlite(table)
      .select(sqlite.raw('rowid as "__rowid"'), ...names)
      .where('rowid', '>', lastRowid)
      .orderBy('rowid')
      .limit(batchSize)) as Record<string, unknown>[];
    if (rows.length === 0) break;
    lastRowid = Number(rows.at(-1)!['__rowid']);
    source += rows.length;
    const values = rows.map((row) => {
      const value: Record<string, unknown> = {};
      // SQLite keeps booleans as 0/1; PostgreSQL wants true/false.
      for (const column of columns) {
        const cell = row[column.name];
        value[column.name] = column.boolean && cell !== null ? cell === 1 || cell === true : cell;
      }
      return value;
    });
    // ON CONFLICT DO NOTHING on any unique key: a rerun skips what is there.
    const result = (await postgres(table).insert(values).onConflict().ignore().returning(postgres.raw('1 as "one"'))) as unknown[];
    inserted += result.length;
  }
  const counted = (await postgres(table).count({ n: '*' })) as { n: string | number }[];
  const target = Number(counted[0]?.n ?? 0);
  return { table, source, inserted, skipped: source - inserted, target };
}
