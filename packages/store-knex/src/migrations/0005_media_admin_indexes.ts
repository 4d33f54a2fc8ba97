import type { Knex } from 'knex';
import type { TableNames } from '../internal/table-names.js';
import type { StoreMigration } from './types.js';

/**
 * Indexes for the admin API and retention: quarantine by content hash looks
 * media up by `sha256`, and age-based clean-up and per-user listings order
 * by `created_at`.
 */
export const mediaAdminIndexesMigration: StoreMigration = {
  name: '0005_media_admin_indexes',
  async up(knex: Knex, tables: TableNames): Promise<void> {
    await knex.schema.alterTable(tables.media, (table) => {
      table.index(['sha256'], `${tables.media}_sha256_idx`);
      table.index(['created_at'], `${tables.media}_created_at_idx`);
    });
  },
  async down(knex: Knex, tables: TableNames): Promise<void> {
    await knex.schema.alterTable(tables.media, (table) => {
      table.dropIndex(['created_at'], `${tables.media}_created_at_idx`);
      table.dropIndex(['sha256'], `${tables.media}_sha256_idx`);
    });
  },
};
