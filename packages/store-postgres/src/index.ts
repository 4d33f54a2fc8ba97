/**
 * `@hsmedia/store-postgres`: the knex metadata store on PostgreSQL (`pg`),
 * with pool settings, statement timeouts, recovery after database restarts and
 * migrations that are safe when several instances start at once.
 */
export {
  createPostgresMetadataStore,
  PostgresMetadataStore,
  type PostgresMetadataStoreOptions,
  type PostgresStoreLog,
} from './postgres-metadata-store.js';
export {
  PostgresMediaChangeFeed,
  mediaChangeChannel,
  type PostgresMediaChangeFeedOptions,
  type PostgresChangeFeedLog,
} from './postgres-change-feed.js';
export { PostgresTokenBuckets, type PostgresTokenBucketsOptions, type TokenBucketRate } from './postgres-token-buckets.js';
