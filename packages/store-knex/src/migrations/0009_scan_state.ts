import type { Knex } from 'knex';
import type { TableNames } from '../internal/table-names.js';
import type { StoreMigration } from './types.js';

/**
 * `media.scan_state`: where the virus scan of the bytes stands
 * (`MediaRecord.scanState`: pending, clean, infected, failed, oversize).
 * Existing rows get null: stored while scanning was off, served as before.
 * Indexed because the retry job looks for `failed` and old `pending` rows.
 */
export const scanStateMigration: StoreMigration = {
  name: '0009_scan_state',
  async up(knex: Knex, tables: TableNames): Promise<void> {
    await knex.schema.alterTable(tables.media, (table) => {
      table.string('scan_state', 16).nullable();
      table.index(['scan_state', 'created_at'], `${tables.media}_scan_state_idx`);
    });
  },
  async down(knex: Knex, tables: TableNames): Promise<void> {
    await knex.schema.alterTable(tables.media, (table) => {
      table.dropIndex(['scan_state', 'created_at'], `${tables.media}_scan_state_idx`);
      table.dropColumn('scan_state');
    });
  },
};
