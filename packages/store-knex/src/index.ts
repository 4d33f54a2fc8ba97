/**
 * `@hsmedia/store-knex`: a `MediaMetadataStore` on knex, with one schema and
 * in-code migrations that run on SQLite (better-sqlite3) and PostgreSQL (pg).
 */
export { KnexMetadataStore, type KnexMetadataStoreOptions } from './knex-metadata-store.js';
export { KnexUrlPreviewCache, type KnexUrlPreviewCacheOptions } from './knex-url-preview-cache.js';
export { runMigrations, type RunMigrationsOptions } from './run-migrations.js';
export { MIGRATION_NAMES } from './migrations/index.js';
