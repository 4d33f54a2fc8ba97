import type { Knex } from 'knex';
import type { TableNames } from '../internal/table-names.js';
import type { StoreMigration } from './types.js';

/**
 * `import_cursors`: where a long-running import keeps its place (the
 * `ImportCursors` capability of `@hsmedia/media-core`; the read-through
 * backfill from Synapse), one opaque state per named import. Numbered 0014:
 * 0012 and 0013 were assigned to other features at the time; knex runs whichever are missing.
 */
export const importCursorsMigration: StoreMigration = {
  name: '0014_import_cursors',
  async up(knex: Knex, tables: TableNames): Promise<void> {
    await knex.schema.createTable(tables.importCursors, (table) => {
      table.string('name', 255).notNullable();
      table.text('state').notNullable();
      // Milliseconds since the epoch of the last write (for operators reading the table).
      table.bigInteger('updated_at').notNullable();
      table.primary(['name'], `${tables.importCursors}_pkey`);
    });
  },
  async down(knex: Knex, tables: TableNames): Promise<void> {
    await knex.schema.dropTableIfExists(tables.importCursors);
  },
};
