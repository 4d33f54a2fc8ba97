/**
 * `@hsmedia/store-sqlite`: the knex metadata store on a local SQLite file
 * (better-sqlite3, WAL, busy timeout).
 */
export {
  createSqliteMetadataStore,
  type SqliteMetadataStoreOptions,
  type SqliteMetadataStore,
} from './sqlite-metadata-store.js';
