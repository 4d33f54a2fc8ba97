import type { Knex } from 'knex';
import type { TableNames } from '../internal/table-names.js';
import type { StoreMigration } from './types.js';

/**
 * What several processes sharing one database coordinate on besides media:
 *
 * - `rate_limit_buckets`: one token bucket per limit and key (`create:@alice:example.org`),
 *   updated by one atomic statement per request, so every process draws from the
 *   same budget. Times are the database's clock, never a process's.
 * - `url_previews`: URL preview answers (Synapse's `local_media_repository_url_cache`),
 *   so a URL is fetched once per deployment within the cache time.
 *
 * Numbered 0011: 0009 and 0010 were reserved for other tables when this was written.
 */
export const clusterCoordinationMigration: StoreMigration = {
  name: '0011_cluster_coordination',
  async up(knex: Knex, tables: TableNames): Promise<void> {
    await knex.schema.createTable(tables.rateLimitBuckets, (table) => {
      table.string('key', 512).notNullable();
      table.double('tokens').notNullable();
      // Milliseconds since the epoch, by the database's clock.
      table.bigInteger('updated_at').notNullable();
      table.boolean('last_allowed').notNullable();
      table.primary(['key'], `${tables.rateLimitBuckets}_pkey`);
    });
    await knex.schema.createTable(tables.urlPreviews, (table) => {
      // SHA-256 (hex) of the previewed URL and the answer's variant (language), so long URLs fit a key.
      table.string('key', 64).notNullable();
      table.text('url').notNullable();
      // The Open Graph JSON answered for it.
      table.text('preview').notNullable();
      table.bigInteger('fetched_at').notNullable();
      table.bigInteger('expires_at').notNullable();
      table.primary(['key'], `${tables.urlPreviews}_pkey`);
      table.index(['expires_at'], `${tables.urlPreviews}_expires_at_idx`);
    });
  },
  async down(knex: Knex, tables: TableNames): Promise<void> {
    await knex.schema.dropTableIfExists(tables.urlPreviews);
    await knex.schema.dropTableIfExists(tables.rateLimitBuckets);
  },
};
