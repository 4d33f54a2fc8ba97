import type { Knex } from 'knex';
import type { TableNames } from '../internal/table-names.js';
import type { StoreMigration } from './types.js';

/**
 * `thumbnails`: one row per stored thumbnail of a media item (https://spec.matrix.org/v1.12/client-server-api/#thumbnails),
 * keyed by what selection compares (real size, method, animation, type).
 * The bytes are a blob of the blob store; each row owns its blob.
 */
export const thumbnailsMigration: StoreMigration = {
  name: '0002_thumbnails',
  async up(knex: Knex, tables: TableNames): Promise<void> {
    await knex.schema.createTable(tables.thumbnails, (table) => {
      table.string('server_name', 255).notNullable();
      table.string('media_id', 255).notNullable();
      table.integer('width').notNullable();
      table.integer('height').notNullable();
      table.string('method', 16).notNullable();
      table.boolean('animated').notNullable();
      table.string('content_type', 255).notNullable();
      table.string('blob_id', 255).notNullable();
      table.bigInteger('size').notNullable();
      table.bigInteger('created_at').notNullable();
      // Leading (server_name, media_id) also serves listThumbnails and deleteThumbnails.
      table.primary(
        ['server_name', 'media_id', 'width', 'height', 'method', 'animated', 'content_type'],
        `${tables.thumbnails}_pkey`,
      );
      // isBlobReferenced looks thumbnails' blobs up too (orphan clean-up must not take them).
      table.index(['blob_id'], `${tables.thumbnails}_blob_id_idx`);
    });
  },
  async down(knex: Knex, tables: TableNames): Promise<void> {
    await knex.schema.dropTableIfExists(tables.thumbnails);
  },
};
