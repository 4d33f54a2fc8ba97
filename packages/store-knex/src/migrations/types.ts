import type { Knex } from 'knex';
import type { TableNames } from '../internal/table-names.js';

/**
 * One schema migration. Unlike a plain knex migration it receives the table
 * names, so one migration serves every `tablePrefix`.
 */
export interface StoreMigration {
  /** Recorded in the migrations table; never rename a released migration. */
  readonly name: string;
  up(knex: Knex, tables: TableNames): Promise<void>;
  down(knex: Knex, tables: TableNames): Promise<void>;
}
