import type { Knex } from 'knex';
import type { TableNames } from '../internal/table-names.js';
import type { StoreMigration } from './types.js';

/**
 * `media.safe_from_quarantine`: media an admin protected from bulk
 * quarantine (Synapse's column of the same name; `MediaRecord.protected`).
 * Existing rows are unprotected.
 */
export const mediaProtectionMigration: StoreMigration = {
  name: '0006_media_protection',
  async up(knex: Knex, tables: TableNames): Promise<void> {
    await knex.schema.alterTable(tables.media, (table) => {
      table.boolean('safe_from_quarantine').notNullable().defaultTo(false);
    });
  },
  async down(knex: Knex, tables: TableNames): Promise<void> {
    await knex.schema.alterTable(tables.media, (table) => {
      table.dropColumn('safe_from_quarantine');
    });
  },
};
