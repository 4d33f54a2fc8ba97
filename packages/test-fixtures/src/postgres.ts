import { randomBytes } from 'node:crypto';
import knexFactory, { type Knex } from 'knex';

/**
 * Shared by every test file that needs PostgreSQL (store-knex, store-postgres,
 * media-server). Imported as `@hsmedia/test-fixtures/postgres` so tests that
 * do not need it never load knex.
 *
 * The PostgreSQL the tests run against. A laptop without one skips the files
 * that need it, with a message; in CI (`process.env.CI`) a missing server is a
 * failure, so a broken service never passes silently.
 */
export const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

function connectionRefused(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if ((error as { code?: unknown }).code === 'ECONNREFUSED') return true;
  // Node reports a refused dual-stack connect as an AggregateError of ECONNREFUSED.
  return error instanceof AggregateError && error.errors.some(connectionRefused);
}

/** The URL without its password, for messages. */
function redacted(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparsable PG_URL)';
  }
}

/** An admin connection (schema set-up, pg_stat_activity, pg_terminate_backend) and the schemas it made. */
export interface PostgresTestEnv {
  /** Why the PostgreSQL tests are skipped, or undefined when they run. */
  readonly unavailable: string | undefined;
  readonly admin: Knex;
  /** Creates a fresh schema `t_<random>` (dropped by {@link PostgresTestEnv.dispose}). */
  createSchema(): Promise<string>;
  /** Drops every schema created here and closes the admin connection. */
  dispose(): Promise<void>;
}

/**
 * Connects an admin session to {@link PG_URL}. Without a server, tests are
 * skipped locally with a message naming `label`; with `CI` set, a missing
 * server fails the run.
 */
export async function openPostgresTestEnv(label = 'PostgreSQL tests'): Promise<PostgresTestEnv> {
  const admin = knexFactory({ client: 'pg', connection: PG_URL, pool: { min: 0, max: 2 } });
  let unavailable: string | undefined;
  try {
    await admin.raw('select 1');
  } catch (error) {
    if (!connectionRefused(error) || process.env.CI) {
      await admin.destroy();
      throw error;
    }
    unavailable = `PostgreSQL at ${redacted(PG_URL)} refused the connection`;
    // eslint-disable-next-line no-console -- the only way to say why a file is skipped
    console.warn(`Skipping ${label}: ${unavailable} (set PG_URL, or CI=1 to fail instead)`);
  }
  const schemas: string[] = [];
  return {
    unavailable,
    admin,
    async createSchema() {
      const schema = `t_${randomBytes(6).toString('hex')}`;
      await admin.raw('create schema ??', [schema]);
      schemas.push(schema);
      return schema;
    },
    async dispose() {
      if (unavailable === undefined) {
        for (const schema of schemas.splice(0)) await dropSchema(admin, schema);
      }
      await admin.destroy();
    },
  };
}

/** PostgreSQL's "out of shared memory" (SQLSTATE 53200): more locks than the server-wide lock table holds. */
const OUT_OF_SHARED_MEMORY = '53200';

/**
 * Drops a test schema. `drop ... cascade` locks every object of the schema in
 * one transaction; a schema that held many stores (one table prefix per test)
 * has more objects than the server's lock table (max_locks_per_transaction ×
 * max_connections) can lock at once. Then its tables are dropped one by one,
 * each in its own transaction, before the schema.
 */
async function dropSchema(admin: Knex, schema: string): Promise<void> {
  try {
    await admin.raw('drop schema if exists ?? cascade', [schema]);
    return;
  } catch (error) {
    if ((error as { code?: string }).code !== OUT_OF_SHARED_MEMORY) throw error;
  }
  const tables = await admin.select('tablename').from('pg_tables').where({ schemaname: schema });
  for (const { tablename } of tables as { tablename: string }[]) {
    await admin.raw('drop table if exists ??.?? cascade', [schema, tablename]);
  }
  await admin.raw('drop schema if exists ?? cascade', [schema]);
}

/** A unique `application_name`, so a test can find (and terminate) exactly its store's sessions. */
export function uniqueApplicationName(label: string): string {
  return `hsmedia-test-${label}-${randomBytes(4).toString('hex')}`;
}
