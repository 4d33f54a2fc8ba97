import type { Knex } from 'knex';
import type { TableNames } from '../internal/table-names.js';
import type { StoreMigration } from './types.js';

/**
 * `media.profile_media`: media the homeserver or an admin flagged as profile
 * media (an avatar; `MediaRecord.profile`), kept by purges, retention and
 * bulk deletions unless asked (Synapse's `keep_profiles`). Existing rows are
 * not flagged. (0009 is taken by the scan-state migration of another branch.)
 */
export const profileMediaMigration: StoreMigration = {
  name: '0010_profile_media',
  async up(knex: Knex, tables: TableNames): Promise<void> {
    await knex.schema.alterTable(tables.media, (table) => {
      table.boolean('profile_media').notNullable().defaultTo(false);
    });
  },
  async down(knex: Knex, tables: TableNames): Promise<void> {
    await knex.schema.alterTable(tables.media, (table) => {
      table.dropColumn('profile_media');
    });
  },
};
