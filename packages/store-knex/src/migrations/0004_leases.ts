import type { Knex } from 'knex';
import type { TableNames } from '../internal/table-names.js';
import type { StoreMigration } from './types.js';

/**
 * `job_leases`: named, expiring leases (the `JobLeases` capability of
 * `@hsmedia/media-core`), so that instances sharing one database run a
 * periodic job one at a time. Numbered 0004: 0002 and 0003 were reserved
 * for other tables when this was written; knex runs whichever are missing.
 */
export const leasesMigration: StoreMigration = {
  name: '0004_leases',
  async up(knex: Knex, tables: TableNames): Promise<void> {
    await knex.schema.createTable(tables.jobLeases, (table) => {
      table.string('name', 255).notNullable();
      table.string('holder', 255).notNullable();
      // Milliseconds since the epoch, by the clock of the process that took the lease.
      table.bigInteger('expires_at').notNullable();
      table.primary(['name'], `${tables.jobLeases}_pkey`);
    });
  },
  async down(knex: Knex, tables: TableNames): Promise<void> {
    await knex.schema.dropTableIfExists(tables.jobLeases);
  },
};
