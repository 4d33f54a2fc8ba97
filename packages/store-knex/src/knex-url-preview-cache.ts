import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import { tableNamesFor } from './internal/table-names.js';

/** Options for {@link KnexUrlPreviewCache}. */
export interface KnexUrlPreviewCacheOptions {
  /** The store's knex instance (`KnexMetadataStore.knex`: PostgreSQL or SQLite), migrated to 0011. */
  readonly knex: Knex;
  /** The store's table prefix; default none. */
  readonly tablePrefix?: string;
}

interface PreviewRow {
  readonly preview: string;
}

/** Key of a URL: its SHA-256, so URLs of any length fit the primary key. */
function keyOf(url: string): string {
  return createHash('sha256').update(url).digest('hex');
}

/**
 * URL previews in the shared database (the `url_previews` table, Synapse's
 * `local_media_repository_url_cache`): the `SharedPreviewCache` of
 * `@hsmedia/url-preview`, so every process of a deployment answers a URL
 * another one previewed without fetching it again: instances on one
 * PostgreSQL, or the workers of one server on one SQLite file. Expired rows
 * are ignored and removed by {@link sweep}.
 */
export class KnexUrlPreviewCache {
  readonly #knex: Knex;
  readonly #table: string;

  constructor(options: KnexUrlPreviewCacheOptions) {
    this.#knex = options.knex;
    this.#table = tableNamesFor(options.tablePrefix).urlPreviews;
  }

  async get(url: string, now: number): Promise<Readonly<Record<string, unknown>> | undefined> {
    const row = (await this.#knex(this.#table).where({ key: keyOf(url), url }).andWhere('expires_at', '>', now).first('preview')) as
      | PreviewRow
      | undefined;
    if (row === undefined) return undefined;
    const parsed: unknown = JSON.parse(row.preview);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  }

  async set(url: string, preview: Readonly<Record<string, unknown>>, fetchedAt: number, expiresAt: number): Promise<void> {
    await this.#knex(this.#table)
      .insert({ key: keyOf(url), url, preview: JSON.stringify(preview), fetched_at: fetchedAt, expires_at: expiresAt })
      .onConflict('key')
      .merge(['url', 'preview', 'fetched_at', 'expires_at']);
  }

  /** Deletes previews expired at `now`; the number deleted. */
  sweep(now: number): Promise<number> {
    return this.#knex(this.#table).where('expires_at', '<=', now).delete();
  }
}
