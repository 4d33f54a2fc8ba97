import Database from 'better-sqlite3';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import pg from 'pg';

/**
 * Generated Synapse media fixtures (issue 24): a database with Synapse's own
 * media table definitions (synapse/storage/schema/main/full_schemas/72 and
 * deltas 86/01_authenticate_media, 91/01_media_hash) and a `media_store`
 * tree in its layout (synapse/media/filepath.py), for the import tests and
 * the benchmark. Fixtures from a real running Synapse are built elsewhere;
 * these cover what a live Synapse cannot give: PostgreSQL on demand, the
 * older schema era, missing files, wrong sizes, paths that leave the store.
 */

/** `current`: schema 94 (with `authenticated` and `sha256`); `legacy`: the schema-72 era without them. */
export type SynapseSchemaEra = 'current' | 'legacy';

export interface FixtureThumbnail {
  readonly width: number;
  readonly height: number;
  readonly type: string;
  readonly method: 'crop' | 'scale';
  readonly bytes: Uint8Array;
  /** Row written, file not. */
  readonly noFile?: boolean;
  /** Remote only: written under the older file name without the method. */
  readonly legacyName?: boolean;
}

export interface FixtureLocalMedia {
  readonly mediaId: string;
  readonly type: string | null;
  /** Null: created but never uploaded (NULL value columns, no file). */
  readonly bytes: Uint8Array | null;
  readonly createdTs: number;
  readonly uploadName?: string | null;
  readonly userId: string;
  readonly quarantinedBy?: string | null;
  readonly safeFromQuarantine?: boolean;
  readonly authenticated?: boolean;
  readonly lastAccessTs?: number | null;
  /** URL-preview media: stored under `url_cache/`. */
  readonly urlCache?: string | null;
  readonly thumbnails?: readonly FixtureThumbnail[];
  /** `media_length` written instead of the real size. */
  readonly lengthOverride?: number;
  /** Row written, file not. */
  readonly noFile?: boolean;
}

export interface FixtureRemoteMedia {
  readonly origin: string;
  readonly mediaId: string;
  readonly filesystemId: string;
  readonly type: string | null;
  /** Null: known only through thumbnails (no `remote_media_cache` row). */
  readonly bytes: Uint8Array | null;
  readonly createdTs: number;
  readonly uploadName?: string | null;
  readonly quarantinedBy?: string | null;
  readonly authenticated?: boolean;
  readonly lastAccessTs?: number | null;
  readonly thumbnails?: readonly FixtureThumbnail[];
  readonly lengthOverride?: number;
  readonly noFile?: boolean;
}

export interface SynapseFixtureContent {
  readonly local: readonly FixtureLocalMedia[];
  readonly remote: readonly FixtureRemoteMedia[];
}

const CURRENT_SQLITE = [
  // full_schemas/72/full.sql.sqlite
  'CREATE TABLE local_media_repository ( media_id TEXT, media_type TEXT, media_length INTEGER, created_ts BIGINT, upload_name TEXT, user_id TEXT, quarantined_by TEXT, url_cache TEXT, last_access_ts BIGINT, safe_from_quarantine BOOLEAN NOT NULL DEFAULT 0, UNIQUE (media_id) )',
  'CREATE TABLE remote_media_cache ( media_origin TEXT, media_id TEXT, media_type TEXT, created_ts BIGINT, upload_name TEXT, media_length INTEGER, filesystem_id TEXT, last_access_ts BIGINT, quarantined_by TEXT, UNIQUE (media_origin, media_id) )',
  'CREATE TABLE IF NOT EXISTS "local_media_repository_thumbnails" ( media_id TEXT, thumbnail_width INTEGER, thumbnail_height INTEGER, thumbnail_type TEXT, thumbnail_method TEXT, thumbnail_length INTEGER, UNIQUE ( media_id, thumbnail_width, thumbnail_height, thumbnail_type, thumbnail_method ) )',
  'CREATE TABLE IF NOT EXISTS "remote_media_cache_thumbnails" ( media_origin TEXT, media_id TEXT, thumbnail_width INTEGER, thumbnail_height INTEGER, thumbnail_method TEXT, thumbnail_type TEXT, thumbnail_length INTEGER, filesystem_id TEXT, UNIQUE ( media_origin, media_id, thumbnail_width, thumbnail_height, thumbnail_type, thumbnail_method ) )',
  'CREATE INDEX local_media_repository_thumbnails_media_id ON local_media_repository_thumbnails (media_id)',
  'CREATE INDEX users_have_local_media ON local_media_repository (user_id, created_ts)',
];

const CURRENT_POSTGRES = [
  // full_schemas/72/full.sql.postgres
  'CREATE TABLE local_media_repository ( media_id text, media_type text, media_length integer, created_ts bigint, upload_name text, user_id text, quarantined_by text, url_cache text, last_access_ts bigint, safe_from_quarantine boolean DEFAULT false NOT NULL )',
  'CREATE TABLE local_media_repository_thumbnails ( media_id text, thumbnail_width integer, thumbnail_height integer, thumbnail_type text, thumbnail_method text, thumbnail_length integer )',
  'CREATE TABLE remote_media_cache ( media_origin text, media_id text, media_type text, created_ts bigint, upload_name text, media_length integer, filesystem_id text, last_access_ts bigint, quarantined_by text )',
  'CREATE TABLE remote_media_cache_thumbnails ( media_origin text, media_id text, thumbnail_width integer, thumbnail_height integer, thumbnail_method text, thumbnail_type text, thumbnail_length integer, filesystem_id text )',
  'ALTER TABLE ONLY local_media_repository ADD CONSTRAINT local_media_repository_media_id_key UNIQUE (media_id)',
  'ALTER TABLE ONLY remote_media_cache ADD CONSTRAINT remote_media_cache_media_origin_media_id_key UNIQUE (media_origin, media_id)',
  'CREATE UNIQUE INDEX local_media_repository_thumbn_media_id_width_height_method_key ON local_media_repository_thumbnails USING btree (media_id, thumbnail_width, thumbnail_height, thumbnail_type, thumbnail_method)',
  'CREATE UNIQUE INDEX remote_media_repository_thumbn_media_origin_id_width_height_met ON remote_media_cache_thumbnails USING btree (media_origin, media_id, thumbnail_width, thumbnail_height, thumbnail_type, thumbnail_method)',
];

const LATER_DELTAS = [
  // delta/86/01_authenticate_media.sql
  'ALTER TABLE remote_media_cache ADD COLUMN authenticated BOOLEAN DEFAULT FALSE NOT NULL',
  'ALTER TABLE local_media_repository ADD COLUMN authenticated BOOLEAN DEFAULT FALSE NOT NULL',
  // delta/91/01_media_hash.sql
  'ALTER TABLE local_media_repository ADD COLUMN sha256 TEXT',
  'ALTER TABLE remote_media_cache ADD COLUMN sha256 TEXT',
];

/** 24 random letters, like Synapse's remote `filesystem_id`. */
export function randomFilesystemId(): string {
  const letters = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
  return [...randomBytes(24)].map((b) => letters[b % letters.length]).join('');
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');
const shard = (id: string): string[] => [id.slice(0, 2), id.slice(2, 4), id.slice(4)];
const thumbName = (t: FixtureThumbnail, withMethod: boolean): string => {
  const [top, sub] = t.type.split('/');
  return withMethod ? `${t.width}-${t.height}-${top}-${sub}-${t.method}` : `${t.width}-${t.height}-${top}-${sub}`;
};

/** Writes every file of `content` into `mediaStore` in Synapse's layout (raw `join`: a hostile ID is the test's business). */
export async function writeSynapseMediaStore(mediaStore: string, content: SynapseFixtureContent): Promise<void> {
  const put = async (parts: string[], bytes: Uint8Array): Promise<void> => {
    const path = join(mediaStore, ...parts);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, bytes);
  };
  for (const m of content.local) {
    const urlCache = m.urlCache !== undefined && m.urlCache !== null;
    const dated = /^\d\d\d\d-\d\d-\d\d/.test(m.mediaId);
    const dir = urlCache && dated ? [m.mediaId.slice(0, 10), m.mediaId.slice(11)] : shard(m.mediaId);
    if (m.bytes !== null && m.noFile !== true) await put([urlCache ? 'url_cache' : 'local_content', ...dir], m.bytes);
    for (const t of m.thumbnails ?? []) {
      if (t.noFile !== true) await put([urlCache ? 'url_cache_thumbnails' : 'local_thumbnails', ...dir, thumbName(t, true)], t.bytes);
    }
  }
  for (const m of content.remote) {
    if (m.bytes !== null && m.noFile !== true) await put(['remote_content', m.origin, ...shard(m.filesystemId)], m.bytes);
    for (const t of m.thumbnails ?? []) {
      if (t.noFile !== true) await put(['remote_thumbnail', m.origin, ...shard(m.filesystemId), thumbName(t, t.legacyName !== true)], t.bytes);
    }
  }
}

interface Executor {
  run(sql: string, params?: unknown[]): Promise<void>;
}

async function writeRows(db: Executor, era: SynapseSchemaEra, content: SynapseFixtureContent): Promise<void> {
  const current = era === 'current';
  for (const m of content.local) {
    const cols = ['media_id', 'media_type', 'media_length', 'created_ts', 'upload_name', 'user_id', 'quarantined_by', 'url_cache', 'last_access_ts', 'safe_from_quarantine'];
    const values: unknown[] = [
      m.mediaId,
      m.bytes === null ? null : m.type,
      m.bytes === null ? null : (m.lengthOverride ?? m.bytes.byteLength),
      m.createdTs,
      m.uploadName ?? null,
      m.userId,
      m.quarantinedBy ?? null,
      m.urlCache ?? null,
      m.lastAccessTs ?? null,
      m.safeFromQuarantine === true,
    ];
    if (current) {
      cols.push('authenticated', 'sha256');
      values.push(m.authenticated === true, m.bytes === null ? null : sha256(m.bytes));
    }
    await db.run(`INSERT INTO local_media_repository (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`, values);
    for (const t of m.thumbnails ?? []) {
      await db.run(
        'INSERT INTO local_media_repository_thumbnails (media_id, thumbnail_width, thumbnail_height, thumbnail_type, thumbnail_method, thumbnail_length) VALUES (?, ?, ?, ?, ?, ?)',
        [m.mediaId, t.width, t.height, t.type, t.method, t.bytes.byteLength],
      );
    }
  }
  for (const m of content.remote) {
    if (m.bytes !== null) {
      const cols = ['media_origin', 'media_id', 'media_type', 'created_ts', 'upload_name', 'media_length', 'filesystem_id', 'last_access_ts', 'quarantined_by'];
      const values: unknown[] = [m.origin, m.mediaId, m.type, m.createdTs, m.uploadName ?? null, m.lengthOverride ?? m.bytes.byteLength, m.filesystemId, m.lastAccessTs ?? m.createdTs, m.quarantinedBy ?? null];
      if (current) {
        cols.push('authenticated', 'sha256');
        values.push(m.authenticated === true, sha256(m.bytes));
      }
      await db.run(`INSERT INTO remote_media_cache (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`, values);
    }
    for (const t of m.thumbnails ?? []) {
      await db.run(
        'INSERT INTO remote_media_cache_thumbnails (media_origin, media_id, thumbnail_width, thumbnail_height, thumbnail_method, thumbnail_type, thumbnail_length, filesystem_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        [m.origin, m.mediaId, t.width, t.height, t.method, t.type, t.bytes.byteLength, m.filesystemId],
      );
    }
  }
}

/** Writes a Synapse SQLite database of `content` at `path`. */
export async function writeSynapseSqlite(path: string, era: SynapseSchemaEra, content: SynapseFixtureContent): Promise<void> {
  const db = new Database(path);
  try {
    for (const sql of [...CURRENT_SQLITE, ...(era === 'current' ? LATER_DELTAS : [])]) db.exec(sql);
    const bool = (v: unknown): unknown => (typeof v === 'boolean' ? (v ? 1 : 0) : v);
    db.exec('BEGIN');
    await writeRows({ run: async (sql, params = []) => void db.prepare(sql).run(...params.map(bool)) }, era, content);
    db.exec('COMMIT');
  } finally {
    db.close();
  }
}

/** Writes Synapse's media tables of `content` into the (empty) PostgreSQL database at `connectionString`. */
export async function writeSynapsePostgres(connectionString: string, era: SynapseSchemaEra, content: SynapseFixtureContent): Promise<void> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    for (const sql of [...CURRENT_POSTGRES, ...(era === 'current' ? LATER_DELTAS : [])]) await client.query(sql);
    await client.query('BEGIN');
    await writeRows(
      {
        run: async (sql, params = []) => {
          let n = 0;
          await client.query(
            sql.replace(/\?/g, () => `$${++n}`),
            params,
          );
        },
      },
      era,
      content,
    );
    await client.query('COMMIT');
  } finally {
    await client.end();
  }
}

/** A fresh PostgreSQL database named `<prefix>_<random>` on the server of `adminUrl`, and how to drop it. */
export async function createPostgresDatabase(adminUrl: string, prefix: string): Promise<{ readonly url: string; drop(): Promise<void> }> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}
