import type { Knex } from 'knex';
import { isStorableKey, MAX_KEY_LENGTH } from './validate.js';

function checkLeaseKey(field: string, value: unknown): asserts value is string {
  if (typeof value !== 'string' || value.length === 0 || !isStorableKey(value)) {
    throw new TypeError(`${field} must be a non-empty string of at most ${MAX_KEY_LENGTH} characters without NUL`);
  }
}

/**
 * Takes the lease when it is free, expired or already ours, in one statement:
 * `INSERT ... ON CONFLICT (name) DO UPDATE ... WHERE (expired or ours)
 * RETURNING`. The conditional upsert yields a row only when this holder ends
 * up holding the lease, and the database decides races between processes
 * (SQLite ≥ 3.35 and PostgreSQL both support it).
 */
export async function tryAcquireLease(
  knex: Knex,
  table: string,
  name: string,
  holder: string,
  ttlMs: number,
  now: number,
): Promise<boolean> {
  checkLeaseKey('name', name);
  checkLeaseKey('holder', holder);
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) throw new TypeError('ttlMs must be a positive safe integer');
  const expiresAt = now + ttlMs;
  const rows = await knex(table)
    .insert({ name, holder, expires_at: expiresAt })
    .onConflict('name')
    .merge(['holder', 'expires_at'])
    .where((query) => query.where(`${table}.expires_at`, '<=', now).orWhere(`${table}.holder`, holder))
    .returning('name');
  return rows.length === 1;
}

/** Deletes the lease if `holder` holds it; true when it did. */
export async function releaseLease(knex: Knex, table: string, name: string, holder: string): Promise<boolean> {
  checkLeaseKey('name', name);
  checkLeaseKey('holder', holder);
  const deleted = await knex(table).where({ name, holder }).delete();
  return deleted > 0;
}
