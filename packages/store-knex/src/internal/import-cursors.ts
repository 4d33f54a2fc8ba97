import type { Knex } from 'knex';
import { isStorableKey, MAX_KEY_LENGTH } from './validate.js';

/** Largest state kept per import (a cursor and a few counters need far less). */
const MAX_STATE_LENGTH = 64 * 1024;

function checkName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0 || !isStorableKey(name)) {
    throw new TypeError(`import cursor name must be a non-empty string of at most ${MAX_KEY_LENGTH} characters without NUL`);
  }
}

export async function readImportCursor(knex: Knex, table: string, name: string): Promise<string | null> {
  checkName(name);
  const row = (await knex(table).where({ name }).first('state')) as { state: string } | undefined;
  return row?.state ?? null;
}

/** Upsert in one statement, so concurrent writers never fail on the primary key. */
export async function writeImportCursor(knex: Knex, table: string, name: string, state: string, now: number): Promise<void> {
  checkName(name);
  if (typeof state !== 'string' || state.length > MAX_STATE_LENGTH || state.includes('\u0000')) {
    throw new TypeError(`import cursor state must be a string of at most ${MAX_STATE_LENGTH} characters without NUL`);
  }
  await knex(table).insert({ name, state, updated_at: now }).onConflict('name').merge(['state', 'updated_at']);
}
