import type { Knex } from 'knex';
import type { TableNames } from './table-names.js';

/** First key of the two-key advisory lock: a fixed int4 naming this package ("hsmk"). */
const ADVISORY_LOCK_NAMESPACE = 0x68736d6b;

/**
 * Runs `body` in one transaction that first takes a migration lock, so
 * processes starting at the same time migrate one after another.
 *
 * knex's own lock is not enough on a fresh database: two processes can both
 * see no bookkeeping tables and race to create them (one fails), or both
 * insert a lock row, after which knex reports "already locked" forever.
 * Serialising the whole run, bookkeeping included, avoids both; the lock goes
 * with the transaction, so a crash cannot leave it behind.
 */
export async function withMigrationLock(
  knex: Knex,
  tables: TableNames,
  body: (trx: Knex.Transaction) => Promise<void>,
): Promise<void> {
  // Dialect-specific by necessity: neither SQL nor knex has a portable lock.
  const dialect = (knex.client as { dialect?: unknown }).dialect;
  if (dialect === 'postgresql') {
    // Keyed by schema and table, so separate schemas of one database migrate independently.
    await knex.transaction(async (trx) => {
      await trx.raw("select pg_advisory_xact_lock(?, hashtext(coalesce(current_schema(), '') || '.' || ?))", [
        ADVISORY_LOCK_NAMESPACE,
        tables.migrations,
      ]);
      await body(trx);
    });
    return;
  }
  if (dialect === 'sqlite3') {
    // SQLite locks the whole file on the first write of a transaction (waiting
    // for busy_timeout), so make that write come first. `IF NOT EXISTS` is
    // race-free here: SQLite re-checks the schema when it runs the statement.
    const mutex = `${tables.migrations}_mutex`;
    await knex.raw('create table if not exists ?? (id integer primary key)', [mutex]);
    await knex.transaction(async (trx) => {
      await trx.raw('insert or replace into ?? (id) values (1)', [mutex]);
      await body(trx);
    });
    return;
  }
  // Other dialects: knex's own migration lock only.
  await knex.transaction(body);
}
