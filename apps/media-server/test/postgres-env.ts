import { randomBytes } from 'node:crypto';
import knexFactory, { type Knex } from 'knex';

/** The PostgreSQL of the tests (trust auth on loopback). */
export const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

function connectionRefused(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if ((error as { code?: unknown }).code === 'ECONNREFUSED') return true;
  return error instanceof AggregateError && error.errors.some(connectionRefused);
}

/** An admin connection and the schemas it created. */
export interface PostgresTestEnv {
  /** Why the tests are skipped, or undefined when they run. */
  readonly unavailable: string | undefined;
  readonly admin: Knex;
  createSchema(): Promise<string>;
  dispose(): Promise<void>;
}

/**
 * Connects to {@link PG_URL}. Without a server, tests are skipped locally with
 * a message; with `CI` set, a missing server fails the run.
 */
export async function openPostgresTestEnv(): Promise<PostgresTestEnv> {
  const admin = knexFactory({ client: 'pg', connection: PG_URL, pool: { min: 0, max: 2 } });
  let unavailable: string | undefined;
  try {
    await admin.raw('select 1');
  } catch (error) {
    if (!connectionRefused(error) || process.env.CI) throw error;
    unavailable = 'PostgreSQL at 127.0.0.1:5432 refused the connection';
    // eslint-disable-next-line no-console -- the only way to say why a file is skipped
    console.warn(`Skipping PostgreSQL tests of media-server: ${unavailable} (set PG_URL, or CI=1 to fail instead)`);
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
        for (const schema of schemas) await admin.raw('drop schema if exists ?? cascade', [schema]);
      }
      await admin.destroy();
    },
  };
}
