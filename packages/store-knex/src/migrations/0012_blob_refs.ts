import type { Knex } from 'knex';
import type { TableNames } from '../internal/table-names.js';
import type { StoreMigration } from './types.js';

/**
 * `blob_refs`: the reference ledger of content-addressed blobs (media-core's
 * `BlobReferenceLedger`), one row per blob. `ref_count` is kept by triggers on
 * `media` and `thumbnails`, in the transaction of every insert, `blob_id`
 * update and delete, so no code path (uploads, async completion, remote cache,
 * thumbnails, deletions, purges, importers, a copy of the tables) can forget to
 * count; a new reference also consumes one pin (`pin_count`) of the put that
 * stored the bytes. `deleting_since` marks a deletion of the object in flight.
 * Existing rows are counted once, here.
 */
export const blobRefsMigration: StoreMigration = {
  name: '0012_blob_refs',
  async up(knex: Knex, tables: TableNames): Promise<void> {
    const refs = tables.blobRefs;
    await knex.schema.createTable(refs, (table) => {
      table.string('blob_id', 255).notNullable();
      table.bigInteger('size').notNullable();
      table.integer('ref_count').notNullable();
      table.integer('pin_count').notNullable();
      // Milliseconds since the epoch, by the clock of the process that pinned or began deleting.
      table.bigInteger('pinned_at').notNullable();
      table.bigInteger('deleting_since').nullable();
      table.primary(['blob_id'], `${refs}_pkey`);
    });
    await knex.raw(
      `INSERT INTO ${refs} (blob_id, size, ref_count, pin_count, pinned_at)
       SELECT blob_id, MAX(size), COUNT(*), 0, 0 FROM (
         SELECT blob_id, COALESCE(size, 0) AS size FROM ${tables.media} WHERE blob_id IS NOT NULL
         UNION ALL SELECT blob_id, size FROM ${tables.thumbnails}
       ) AS uses GROUP BY blob_id`,
    );
    const dialect = (knex.client as { dialect?: unknown }).dialect;
    if (dialect === 'postgresql') await createPostgresTriggers(knex, tables);
    else await createSqliteTriggers(knex, tables);
  },
  async down(knex: Knex, tables: TableNames): Promise<void> {
    const dialect = (knex.client as { dialect?: unknown }).dialect;
    for (const table of [tables.media, tables.thumbnails]) {
      if (dialect === 'postgresql') {
        await knex.raw(`DROP TRIGGER IF EXISTS ${table}_blob_refs ON ${table}`);
        await knex.raw(`DROP FUNCTION IF EXISTS ${table}_blob_refs()`);
      } else {
        for (const event of ['insert', 'update_old', 'update_new', 'delete']) await knex.raw(`DROP TRIGGER IF EXISTS ${table}_blob_refs_${event}`);
      }
    }
    await knex.schema.dropTableIfExists(tables.blobRefs);
  },
};

/** The upsert of one new reference: count it and consume one pin. */
function addReferenceSql(refs: string, blobId: string, size: string, greatest: string): string {
  return `INSERT INTO ${refs} (blob_id, size, ref_count, pin_count, pinned_at) VALUES (${blobId}, ${size}, 1, 0, 0)
    ON CONFLICT (blob_id) DO UPDATE SET ref_count = ${refs}.ref_count + 1, pin_count = ${greatest}(${refs}.pin_count - 1, 0)`;
}

async function createPostgresTriggers(knex: Knex, tables: TableNames): Promise<void> {
  const refs = tables.blobRefs;
  for (const table of [tables.media, tables.thumbnails]) {
    await knex.raw(`CREATE FUNCTION ${table}_blob_refs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND OLD.blob_id IS NOT DISTINCT FROM NEW.blob_id THEN
    RETURN NULL;
  END IF;
  IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.blob_id IS NOT NULL THEN
    UPDATE ${refs} SET ref_count = GREATEST(ref_count - 1, 0) WHERE blob_id = OLD.blob_id;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.blob_id IS NOT NULL THEN
    ${addReferenceSql(refs, 'NEW.blob_id', 'COALESCE(NEW.size, 0)', 'GREATEST')};
  END IF;
  RETURN NULL;
END $$`);
    // EXECUTE PROCEDURE: the spelling every supported PostgreSQL accepts (FUNCTION needs 11+).
    await knex.raw(
      `CREATE TRIGGER ${table}_blob_refs AFTER INSERT OR DELETE OR UPDATE OF blob_id ON ${table} FOR EACH ROW EXECUTE PROCEDURE ${table}_blob_refs()`,
    );
  }
}

async function createSqliteTriggers(knex: Knex, tables: TableNames): Promise<void> {
  const refs = tables.blobRefs;
  const drop = `UPDATE ${refs} SET ref_count = MAX(ref_count - 1, 0) WHERE blob_id = OLD.blob_id`;
  for (const table of [tables.media, tables.thumbnails]) {
    await knex.raw(`CREATE TRIGGER ${table}_blob_refs_insert AFTER INSERT ON ${table} WHEN NEW.blob_id IS NOT NULL
BEGIN ${addReferenceSql(refs, 'NEW.blob_id', 'COALESCE(NEW.size, 0)', 'MAX')}; END`);
    await knex.raw(`CREATE TRIGGER ${table}_blob_refs_delete AFTER DELETE ON ${table} WHEN OLD.blob_id IS NOT NULL
BEGIN ${drop}; END`);
    await knex.raw(`CREATE TRIGGER ${table}_blob_refs_update_old AFTER UPDATE OF blob_id ON ${table}
WHEN OLD.blob_id IS NOT NULL AND OLD.blob_id IS NOT NEW.blob_id BEGIN ${drop}; END`);
    await knex.raw(`CREATE TRIGGER ${table}_blob_refs_update_new AFTER UPDATE OF blob_id ON ${table}
WHEN NEW.blob_id IS NOT NULL AND OLD.blob_id IS NOT NEW.blob_id
BEGIN ${addReferenceSql(refs, 'NEW.blob_id', 'COALESCE(NEW.size, 0)', 'MAX')}; END`);
  }
}
