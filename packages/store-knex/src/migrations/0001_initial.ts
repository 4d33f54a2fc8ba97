import type { Knex } from 'knex';
import type { TableNames } from '../internal/table-names.js';
import type { StoreMigration } from './types.js';

/**
 * The initial schema: `media` and `server_keys`. Written with the portable
 * schema builder only, so the same migration runs on SQLite and PostgreSQL.
 * Times are milliseconds since the epoch in `bigint` columns (pg returns them
 * as strings; the row mapper converts).
 */
export const initialMigration: StoreMigration = {
  name: '0001_initial',
  async up(knex: Knex, tables: TableNames): Promise<void> {
    await knex.schema.createTable(tables.media, (table) => {
      // 255 matches the media-id and server-name length caps in @hsmedia/media-core.
      table.string('server_name', 255).notNullable();
      table.string('media_id', 255).notNullable();
      table.string('blob_id', 255).nullable();
      table.text('content_type').nullable();
      table.text('upload_name').nullable();
      table.bigInteger('size').nullable();
      table.string('sha256', 64).nullable();
      table.string('user_id', 255).nullable();
      table.bigInteger('created_at').notNullable();
      table.bigInteger('uploaded_at').nullable();
      table.bigInteger('expires_at').nullable();
      table.boolean('authenticated').notNullable().defaultTo(false);
      table.boolean('quarantined').notNullable().defaultTo(false);
      table.bigInteger('last_access_at').nullable();
      table.primary(['server_name', 'media_id'], `${tables.media}_pkey`);
      // Index names are schema-global in PostgreSQL, hence the table-name prefix.
      table.index(['blob_id'], `${tables.media}_blob_id_idx`);
      table.index(['user_id'], `${tables.media}_user_id_idx`);
      table.index(['last_access_at'], `${tables.media}_last_access_at_idx`);
    });
    await knex.schema.createTable(tables.serverKeys, (table) => {
      table.string('server_name', 255).notNullable();
      table.string('key_id', 255).notNullable();
      table.text('public_key').notNullable();
      table.bigInteger('valid_until_ts').notNullable();
      table.bigInteger('fetched_at').notNullable();
      table.primary(['server_name', 'key_id'], `${tables.serverKeys}_pkey`);
    });
  },
  async down(knex: Knex, tables: TableNames): Promise<void> {
    await knex.schema.dropTableIfExists(tables.serverKeys);
    await knex.schema.dropTableIfExists(tables.media);
  },
};
