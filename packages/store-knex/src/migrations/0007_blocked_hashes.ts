import type { Knex } from 'knex';
import type { TableNames } from '../internal/table-names.js';
import type { StoreMigration } from './types.js';

/**
 * `blocked_hashes`: content hashes that are never stored or served again
 * (the `BlockedHashes` capability of `@hsmedia/media-core`: quarantine that
 * outlives every media row). Keyed by the SHA-256 hex of the bytes.
 */
export const blockedHashesMigration: StoreMigration = {
  name: '0007_blocked_hashes',
  async up(knex: Knex, tables: TableNames): Promise<void> {
    await knex.schema.createTable(tables.blockedHashes, (table) => {
      table.string('sha256', 64).notNullable();
      table.text('reason').nullable();
      table.string('blocked_by', 255).nullable();
      // Milliseconds since the epoch.
      table.bigInteger('blocked_at').notNullable();
      table.primary(['sha256'], `${tables.blockedHashes}_pkey`);
    });
  },
  async down(knex: Knex, tables: TableNames): Promise<void> {
    await knex.schema.dropTableIfExists(tables.blockedHashes);
  },
};
