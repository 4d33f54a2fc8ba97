import { formatMxcUri, isValidMediaId, isValidServerName, SHA256_HEX_RE, type MediaCatalog } from '@hsmedia/media-core';
import pg from 'pg';
import { redactPostgresUrl } from '../database.js';
import type { MmrManifest } from './archive-mmr.js';
import type { ArchiveImportReport } from './archive-report.js';

/**
 * Quarantine and pins as matrix-media-repo's own database records them, for
 * `import-mmr --mmr-database`. Its export archives leave quarantined media
 * out and their manifest has no quarantine field, so the flag is read from
 * its `media` table (`quarantined`, added by its migration 3) instead:
 * read-only, all of it before anything is imported, so a database that
 * cannot be read leaves nothing imported.
 *
 * What is read, and only that: the quarantined rows of the export's entity
 * (`origin = entity` for a server export, `user_id = entity` for a user's,
 * as matrix-media-repo's exporter selects them) and of the items the
 * manifest lists (looked up by origin and media ID, whatever the entity).
 * Each is either in the archive (quarantined after the export was made: imported quarantined
 * through the import sink, which blocks its hash) or left out of it. A
 * left-out item has no bytes here, and the catalog records bytes-less rows
 * only as pending async uploads (`MediaImports` refuses others, as the
 * Synapse import reports a quarantined row without its file as
 * `missing-file`), so only its hash is blocked: the `mxc://` URI answers
 * 404 like any unknown local media, a re-upload of its bytes is refused, and
 * remote media fetched again is refused at admission by the same list.
 *
 * Pins: matrix-media-repo's `media_attributes` table gives an item a purpose,
 * `none` or `pinned`; a pinned item is one its admin API refuses to quarantine
 * and its purges skip. The manifest items pinned there are imported
 * `protected` (this server's exemption from quarantine, as Synapse's
 * `safe_from_quarantine`). A matrix-media-repo older than that table has no
 * pins: nothing is protected, and that is no error.
 */

/** One quarantined row of matrix-media-repo's `media` table. */
export interface MmrQuarantinedRow {
  readonly origin: string;
  readonly mediaId: string;
  /** `sha256_hash`, lower-cased (matrix-media-repo writes lower-case hex). */
  readonly sha256: string;
}

/** The quarantine of one export's entity in matrix-media-repo. */
export interface MmrQuarantine {
  /** Quarantined rows the archive holds, by `mxc://` URI. */
  readonly inArchive: ReadonlySet<string>;
  /** Quarantined rows the archive left out. */
  readonly leftOut: readonly MmrQuarantinedRow[];
  /** Items the archive holds that matrix-media-repo pinned (`media_attributes.purpose = 'pinned'`), by `mxc://` URI. */
  readonly pinned: ReadonlySet<string>;
}

/** matrix-media-repo's database cannot be read (unreachable, refused, not its schema). */
export class MmrDatabaseError extends Error {
  override readonly name = 'MmrDatabaseError';
}

/** The columns of matrix-media-repo's `media` table read here (migrations 1 and 3 there). */
const COLUMNS = ['origin', 'media_id', 'user_id', 'sha256_hash', 'quarantined'] as const;
/** The columns of its `media_attributes` table read here (a later migration there; absent before). */
const ATTRIBUTE_COLUMNS = ['origin', 'media_id', 'purpose'] as const;
/** matrix-media-repo's `Purpose` that exempts an item from quarantine and purges. */
const PURPOSE_PINNED = 'pinned';

function describe(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return describe(error.errors[0]);
  return error instanceof Error ? error.message : String(error);
}

/** The columns of `table` in the session's schema (none: no such table). */
async function columnsOf(client: pg.Client, table: string): Promise<Set<string>> {
  const present = await client.query<{ name: string }>(
    'SELECT column_name AS name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1',
    [table],
  );
  return new Set(present.rows.map((row) => row.name));
}

/**
 * Reads the quarantined rows of `manifest`'s entity, and the pins of its items, from matrix-media-repo's
 * PostgreSQL database at `url` (matrix-media-repo supports no other). The
 * session is read-only (`default_transaction_read_only`): no statement of
 * this importer can write there. Throws {@link MmrDatabaseError}.
 */
export async function readMmrQuarantine(url: string, manifest: MmrManifest): Promise<MmrQuarantine> {
  const where = redactPostgresUrl(url);
  const client = new pg.Client({ connectionString: url, application_name: 'hsmedia-import-mmr', options: '-c default_transaction_read_only=on', connectionTimeoutMillis: 30_000 });
  // A connection lost while idle must not crash the process: the query in flight fails instead.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    throw new MmrDatabaseError(`cannot connect to matrix-media-repo's database at ${where}: ${describe(error)}`);
  }
  try {
    const names = await columnsOf(client, 'media');
    const missing = COLUMNS.filter((column) => !names.has(column));
    if (missing.length > 0) {
      throw new MmrDatabaseError(`${where} is not a matrix-media-repo database: its media table ${names.size === 0 ? 'does not exist' : `has no ${missing.join(', ')}`}`);
    }
    // The entity of an export is a user ID (`@…`) or a server name, as matrix-media-repo's exporter reads it.
    const byUser = manifest.entityId.startsWith('@');
    const result = await client.query<{ origin: unknown; media_id: unknown; sha256_hash: unknown }>(
      `SELECT origin, media_id, sha256_hash FROM media WHERE quarantined = TRUE AND ${byUser ? 'user_id' : 'origin'} = $1 ORDER BY origin, media_id`,
      [manifest.entityId],
    );
    const archived = new Set<string>();
    for (const item of manifest.itemsByArchivedName.values()) archived.add(item.mxc);
    const inArchive = new Set<string>(await quarantinedOf(client, [...manifest.itemsByArchivedName.values()]));
    const leftOut: MmrQuarantinedRow[] = [];
    for (const row of result.rows) {
      const origin = String(row.origin);
      const mediaId = String(row.media_id);
      const sha256 = typeof row.sha256_hash === 'string' ? row.sha256_hash.toLowerCase() : '';
      const mxc = `mxc://${origin}/${mediaId}`;
      if (archived.has(mxc)) inArchive.add(mxc);
      else leftOut.push({ origin, mediaId, sha256 });
    }
    return { inArchive, leftOut, pinned: await pinnedOf(client, where, [...manifest.itemsByArchivedName.values()]) };
  } catch (error) {
    if (error instanceof MmrDatabaseError) throw error;
    throw new MmrDatabaseError(`cannot read matrix-media-repo's database at ${where}: ${describe(error)}`);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Manifest items looked up per query: a bounded parameter size. */
const LOOKUP_BATCH = 5000;

/** The `mxc://` URIs of the given items that matrix-media-repo has quarantined. */
async function quarantinedOf(client: pg.Client, items: readonly { readonly origin: string; readonly mediaId: string }[]): Promise<string[]> {
  const found: string[] = [];
  for (let start = 0; start < items.length; start += LOOKUP_BATCH) {
    const batch = items.slice(start, start + LOOKUP_BATCH);
    const result = await client.query<{ origin: string; media_id: string }>(
      'SELECT m.origin, m.media_id FROM media AS m JOIN unnest($1::text[], $2::text[]) AS k(origin, media_id) ON m.origin = k.origin AND m.media_id = k.media_id WHERE m.quarantined = TRUE',
      [batch.map((item) => item.origin), batch.map((item) => item.mediaId)],
    );
    for (const row of result.rows) found.push(`mxc://${row.origin}/${row.media_id}`);
  }
  return found;
}

/**
 * The `mxc://` URIs of the given items that matrix-media-repo pinned; none when
 * its database predates `media_attributes`.
 */
async function pinnedOf(client: pg.Client, where: string, items: readonly { readonly origin: string; readonly mediaId: string }[]): Promise<Set<string>> {
  const pinned = new Set<string>();
  const names = await columnsOf(client, 'media_attributes');
  if (names.size === 0) return pinned;
  const missing = ATTRIBUTE_COLUMNS.filter((column) => !names.has(column));
  if (missing.length > 0) throw new MmrDatabaseError(`${where} is not a matrix-media-repo database: its media_attributes table has no ${missing.join(', ')}`);
  for (let start = 0; start < items.length; start += LOOKUP_BATCH) {
    const batch = items.slice(start, start + LOOKUP_BATCH);
    const result = await client.query<{ origin: string; media_id: string }>(
      'SELECT a.origin, a.media_id FROM media_attributes AS a JOIN unnest($1::text[], $2::text[]) AS k(origin, media_id) ON a.origin = k.origin AND a.media_id = k.media_id WHERE a.purpose = $3',
      [batch.map((item) => item.origin), batch.map((item) => item.mediaId), PURPOSE_PINNED],
    );
    for (const row of result.rows) pinned.add(`mxc://${row.origin}/${row.media_id}`);
  }
  return pinned;
}

/** What the import needs of this server's catalog to apply a quarantine and pins. */
export type MmrQuarantineCatalog = Pick<MediaCatalog, 'records' | 'blockedHashes' | 'setQuarantined' | 'setProtected' | 'clock'>;

/** How many items the import quarantined (or, in a dry run, would). */
export class MmrQuarantineTally {
  /** Archive items imported quarantined. */
  imported = 0;
  /** Items already here, quarantined now (or already). */
  present = 0;
  /** Hashes of left-out items blocked now (or already blocked). */
  hashesBlocked = 0;
  /** Pinned archive items imported protected. */
  pinnedImported = 0;
  /** Pinned items already here, protected now (or already). */
  pinnedPresent = 0;

  line(dryRun: boolean): string {
    const [quarantine, block] = dryRun ? ['would quarantine', 'would block'] : ['quarantined', 'blocked'];
    return `${quarantine} as in matrix-media-repo: ${this.imported} imported, ${this.present} already here; ${block} the hashes of ${this.hashesBlocked} quarantined media left out of the export`;
  }

  pinLine(dryRun: boolean): string {
    return `${dryRun ? 'would protect' : 'protected'} as pinned in matrix-media-repo: ${this.pinnedImported} imported, ${this.pinnedPresent} already here`;
  }
}

/**
 * Applies matrix-media-repo's quarantine to this server, idempotently, with
 * the same effect as an admin quarantine here (the hash on the blocked-hash
 * list first, then the flag, so a run killed in between never leaves
 * quarantined bytes servable and unblocked). `reason` is kept with the hash.
 */
export class MmrQuarantineApplier {
  readonly #catalog: MmrQuarantineCatalog;
  readonly #actor: string;
  readonly #dryRun: boolean;
  readonly #report: ArchiveImportReport;
  readonly tally: MmrQuarantineTally = new MmrQuarantineTally();

  constructor(catalog: MmrQuarantineCatalog, actor: string, dryRun: boolean, report: ArchiveImportReport) {
    if (catalog.blockedHashes === undefined) throw new MmrDatabaseError('this metadata store has no blocked-hash list: quarantine cannot be imported');
    this.#catalog = catalog;
    this.#actor = actor;
    this.#dryRun = dryRun;
    this.#report = report;
  }

  /**
   * A quarantined item the archive left out: its hash blocked; a record of it
   * already here (from an earlier import) is quarantined too.
   */
  async leftOut(row: MmrQuarantinedRow): Promise<void> {
    const { origin, mediaId, sha256 } = row;
    if (!isValidServerName(origin) || !isValidMediaId(mediaId)) {
      this.#report.problem('invalid-entry', `quarantined in matrix-media-repo, but not a valid origin and media ID: ${JSON.stringify(origin)} ${JSON.stringify(mediaId)}`);
      return;
    }
    const mxc = formatMxcUri(origin, mediaId);
    if (!SHA256_HEX_RE.test(sha256)) {
      this.#report.problem('invalid-entry', `quarantined in matrix-media-repo and left out of the export, but its sha256_hash ${JSON.stringify(sha256)} is not a SHA-256: nothing blocked`, { mxc });
      return;
    }
    const existing = await this.#catalog.records.getMedia(origin, mediaId);
    if (existing !== null) {
      await this.present(origin, mediaId);
      return;
    }
    this.tally.hashesBlocked++;
    if (!this.#dryRun) await this.#block(sha256, `${mxc}: quarantined in matrix-media-repo (left out of its export)`);
  }

  /**
   * An item already here (imported before) that matrix-media-repo
   * quarantined: quarantined here too, unless an admin here protected it
   * (protected media is never quarantined, as by the admin API).
   */
  async present(origin: string, mediaId: string): Promise<void> {
    const record = await this.#catalog.records.getMedia(origin, mediaId);
    if (record === null || record.protected === true) return;
    this.tally.present++;
    if (this.#dryRun || record.quarantined) return;
    if (record.sha256 !== null) await this.#block(record.sha256, `${formatMxcUri(origin, mediaId)}: quarantined in matrix-media-repo`);
    await this.#catalog.setQuarantined(origin, mediaId, true);
  }

  /**
   * An item already here (imported before without `--mmr-database`) that
   * matrix-media-repo pinned: protected here too. Run after {@link present},
   * so a quarantine matrix-media-repo kept on a pinned item is kept here too.
   */
  async pinPresent(origin: string, mediaId: string): Promise<void> {
    const record = await this.#catalog.records.getMedia(origin, mediaId);
    if (record === null) return;
    this.tally.pinnedPresent++;
    if (this.#dryRun || record.protected === true) return;
    await this.#catalog.setProtected(origin, mediaId, true);
  }

  async #block(sha256: string, reason: string): Promise<void> {
    await this.#catalog.blockedHashes!.block({ sha256, reason, blockedBy: this.#actor, blockedAt: this.#catalog.clock.now() });
  }
}
