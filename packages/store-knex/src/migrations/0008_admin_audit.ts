import type { Knex } from 'knex';
import type { TableNames } from '../internal/table-names.js';
import type { StoreMigration } from './types.js';

/**
 * `admin_audit`: the audit trail of admin actions (the `AdminAuditLog`
 * capability of `@hsmedia/media-core`). Append only; read newest first by
 * `id`, optionally narrowed to one action or one target.
 */
export const adminAuditMigration: StoreMigration = {
  name: '0008_admin_audit',
  async up(knex: Knex, tables: TableNames): Promise<void> {
    await knex.schema.createTable(tables.adminAudit, (table) => {
      table.bigIncrements('id', { primaryKey: true });
      table.string('action', 32).notNullable();
      table.string('actor', 255).nullable();
      table.string('target', 512).notNullable();
      table.text('reason').nullable();
      // Milliseconds since the epoch.
      table.bigInteger('at').notNullable();
      // The admin API filters by target (one item's or user's history) and by action, newest first.
      table.index(['target', 'id'], `${tables.adminAudit}_target_idx`);
      table.index(['action', 'id'], `${tables.adminAudit}_action_idx`);
    });
  },
  async down(knex: Knex, tables: TableNames): Promise<void> {
    await knex.schema.dropTableIfExists(tables.adminAudit);
  },
};
