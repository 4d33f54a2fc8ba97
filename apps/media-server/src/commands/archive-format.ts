import { isValidMediaId, isValidServerName, type MediaRecord, type StoredThumbnail } from '@hsmedia/media-core';
import { z } from 'zod';
import { isKnownMediaType } from './archive-mmr.js';

/**
 * The hsmedia media archive, version 1: what `export` writes and
 * `import-archive` reads. Specified in docs/export-format.md; this module is
 * its one definition in code (entry names, the JSON documents and their
 * validation).
 *
 * Each part is a gzip (RFC 1952) of a POSIX tar. Its first entry is
 * `hsmedia-archive.json` (the part header); then, per item, `media/N.json`
 * (the item's metadata), `media/N.bin` (its bytes) and `media/N.thumb-K.bin`
 * (its thumbnails). The last part ends with `manifest.json`. Entry names are
 * never derived from media IDs or names, so no input can shape a path.
 */

export const ARCHIVE_FORMAT = 'hsmedia-media-archive';
export const ARCHIVE_VERSION = 1;
export const PART_HEADER_ENTRY = 'hsmedia-archive.json';
export const MANIFEST_ENTRY = 'manifest.json';
/** Largest JSON entry read (an item's metadata, a part header, the manifest). */
export const MAX_ARCHIVE_JSON_BYTES: number = 1024 * 1024;

/** `hsmedia-export-part-0001.tar.gz` for part 1. */
export const partFileName = (part: number): string => `hsmedia-export-part-${String(part).padStart(4, '0')}.tar.gz`;
export const itemEntry = (sequence: number): string => `media/${String(sequence).padStart(8, '0')}.json`;
export const dataEntry = (sequence: number): string => `media/${String(sequence).padStart(8, '0')}.bin`;
export const thumbnailEntry = (sequence: number, index: number): string => `media/${String(sequence).padStart(8, '0')}.thumb-${index}.bin`;

/** What kind of media entry a name is, and of which item. */
export function parseMediaEntryName(name: string): { kind: 'item' | 'data'; sequence: number } | { kind: 'thumbnail'; sequence: number; index: number } | null {
  const match = /^media\/(\d{8})\.(json|bin|thumb-(\d{1,4})\.bin)$/.exec(name);
  if (match === null) return null;
  const sequence = Number(match[1]);
  if (match[3] !== undefined) return { kind: 'thumbnail', sequence, index: Number(match[3]) };
  return { kind: match[2] === 'json' ? 'item' : 'data', sequence };
}

const timestamp = z.number().int().nonnegative();
const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hexadecimal digits');
// eslint-disable-next-line no-control-regex -- echoed in Content-Disposition: no control characters
const uploadName = z.string().max(255).regex(/^[^\x00-\x1f\x7f]*$/, 'must have no control characters');
const contentType = z.string().refine(isKnownMediaType, 'is not a media type');

/** The first entry of every part. */
export interface PartHeader {
  readonly format: typeof ARCHIVE_FORMAT;
  readonly version: typeof ARCHIVE_VERSION;
  readonly export_id: string;
  readonly part: number;
}

/** One thumbnail of an item. */
export interface ArchiveThumbnail {
  readonly width: number;
  readonly height: number;
  readonly method: 'crop' | 'scale';
  readonly animated: boolean;
  readonly content_type: string;
  readonly size: number;
  /** The entry holding its bytes. */
  readonly data: string;
}

/** The metadata of one item (`media/N.json`). */
export interface ArchiveItem {
  readonly server_name: string;
  readonly media_id: string;
  readonly content_type: string | null;
  readonly upload_name: string | null;
  readonly user_id: string | null;
  readonly created_ts: number;
  readonly uploaded_ts: number | null;
  readonly last_access_ts: number | null;
  /** Null (with `data` null) for media created but never uploaded. */
  readonly size: number | null;
  readonly sha256: string | null;
  readonly quarantined: boolean;
  readonly protected: boolean;
  readonly authenticated: boolean;
  readonly profile: boolean;
  /** The entry holding its bytes; null for media never uploaded. */
  readonly data: string | null;
  readonly thumbnails: readonly ArchiveThumbnail[];
}

/** One part as the manifest lists it. */
export interface ArchiveManifestPart {
  readonly part: number;
  readonly file: string;
  readonly items: number;
  readonly bytes: number;
}

/** The last entry of the last part. */
export interface ArchiveManifest {
  readonly format: typeof ARCHIVE_FORMAT;
  readonly version: typeof ARCHIVE_VERSION;
  readonly export_id: string;
  readonly created_ts: number;
  readonly server_name: string;
  readonly scope: { readonly kind: 'user'; readonly user_id: string } | { readonly kind: 'server'; readonly include_remote: boolean };
  readonly parts: readonly ArchiveManifestPart[];
  readonly items: number;
  readonly bytes: number;
  readonly thumbnails: number;
  readonly skipped: { readonly quarantined: number; readonly missing_bytes: number };
}

export const partHeaderSchema: z.ZodType<PartHeader> = z.object({
  format: z.literal(ARCHIVE_FORMAT),
  version: z.literal(ARCHIVE_VERSION),
  export_id: z.string().min(1).max(64),
  part: z.number().int().positive(),
});

const thumbnailSchema = z.object({
  width: z.number().int().positive().max(65_535),
  height: z.number().int().positive().max(65_535),
  method: z.enum(['crop', 'scale']),
  animated: z.boolean(),
  content_type: contentType,
  size: z.number().int().nonnegative(),
  data: z.string(),
});

export const itemSchema: z.ZodType<ArchiveItem> = z.object({
  server_name: z.string().refine(isValidServerName, 'is not a server name'),
  media_id: z.string().refine(isValidMediaId, 'is not a media ID'),
  content_type: contentType.nullable(),
  upload_name: uploadName.nullable(),
  user_id: z.string().regex(/^@[^:]+:.+$/, 'is not a user ID').max(255).nullable(),
  created_ts: timestamp,
  uploaded_ts: timestamp.nullable(),
  last_access_ts: timestamp.nullable(),
  size: z.number().int().nonnegative().nullable(),
  sha256: sha256.nullable(),
  quarantined: z.boolean(),
  protected: z.boolean(),
  authenticated: z.boolean(),
  profile: z.boolean(),
  data: z.string().nullable(),
  thumbnails: z.array(thumbnailSchema).max(1000),
});

export const manifestSchema: z.ZodType<ArchiveManifest> = z.object({
  format: z.literal(ARCHIVE_FORMAT),
  version: z.literal(ARCHIVE_VERSION),
  export_id: z.string().min(1).max(64),
  created_ts: timestamp,
  server_name: z.string(),
  scope: z.union([
    z.object({ kind: z.literal('user'), user_id: z.string() }),
    z.object({ kind: z.literal('server'), include_remote: z.boolean() }),
  ]),
  parts: z.array(z.object({ part: z.number().int().positive(), file: z.string(), items: z.number().int().nonnegative(), bytes: z.number().int().nonnegative() })),
  items: z.number().int().nonnegative(),
  bytes: z.number().int().nonnegative(),
  thumbnails: z.number().int().nonnegative(),
  skipped: z.object({ quarantined: z.number().int().nonnegative(), missing_bytes: z.number().int().nonnegative() }),
});

/** Parses a JSON entry against `schema`: the value, or why not. */
export function parseArchiveJson<T>(schema: z.ZodType<T>, text: string): { ok: true; value: T } | { ok: false; error: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { ok: false, error: `not JSON (${(error as Error).message})` };
  }
  const result = schema.safeParse(value);
  if (result.success) return { ok: true, value: result.data };
  return { ok: false, error: result.error.issues.map((issue) => `${issue.path.join('.') || '(document)'} ${issue.message}`).join('; ') };
}

/** The item document of a stored record and its thumbnails (written by `export`). */
export function itemOf(record: MediaRecord, sequence: number, thumbnails: readonly StoredThumbnail[]): ArchiveItem {
  return {
    server_name: record.serverName,
    media_id: record.mediaId,
    content_type: record.contentType,
    upload_name: record.uploadName,
    user_id: record.userId,
    created_ts: record.createdAt,
    uploaded_ts: record.uploadedAt,
    last_access_ts: record.lastAccessAt,
    size: record.blobId === null ? null : record.size,
    sha256: record.blobId === null ? null : record.sha256,
    quarantined: record.quarantined,
    protected: record.protected === true,
    authenticated: record.authenticated,
    profile: record.profile === true,
    data: record.blobId === null ? null : dataEntry(sequence),
    thumbnails: thumbnails.map((thumbnail, index) => ({
      width: thumbnail.width,
      height: thumbnail.height,
      method: thumbnail.method,
      animated: thumbnail.animated,
      content_type: thumbnail.contentType,
      size: thumbnail.size,
      data: thumbnailEntry(sequence, index),
    })),
  };
}
