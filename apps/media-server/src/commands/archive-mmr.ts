import { formatMxcUri, isValidMediaId, isValidServerName } from '@hsmedia/media-core';
import { isSafeEntryName } from './archive-tar.js';

/**
 * matrix-media-repo's export archive, version 2 of its manifest (version 1
 * differs only in naming the entity `user_id`): tar.gz parts
 * (`export-part-N.tgz`) holding one file per media item, named
 * `<origin>__<media ID><extension>`, and a last part (`export-manifest.tgz`)
 * holding `manifest.json` and an `index.html`. The manifest maps each
 * `mxc://` URI to the item's metadata, `file_name` being the tar entry that
 * holds its bytes. matrix-media-repo leaves quarantined and not yet uploaded
 * media out of its exports, and its manifest has no field for either.
 */

/** One manifest entry, validated. */
export interface MmrManifestItem {
  readonly mxc: string;
  readonly origin: string;
  readonly mediaId: string;
  /** The tar entry holding the bytes. */
  readonly archivedName: string;
  readonly size: number;
  /** Lower-case hex; null when the manifest has none. */
  readonly sha256: string | null;
  readonly contentType: string | null;
  readonly uploadName: string | null;
  /** The uploader; null when absent or not a user of `origin`. */
  readonly uploader: string | null;
  readonly createdAt: number;
  /** Set when the exporter pointed at S3 instead of including the bytes. */
  readonly s3Url: string | null;
}

/** A manifest entry that cannot be imported, and why. */
export interface MmrManifestRejection {
  readonly mxc: string;
  /** The entry it names, when it names one (its file is then not reported again as unlisted). */
  readonly archivedName: string | null;
  readonly kind: 'invalid-entry' | 'unknown-content-type';
  readonly detail: string;
}

/** A parsed manifest: what can be imported, keyed by tar entry name, and what cannot. */
export interface MmrManifest {
  readonly version: 1 | 2;
  readonly entityId: string;
  readonly createdAt: number;
  readonly itemsByArchivedName: ReadonlyMap<string, MmrManifestItem>;
  readonly rejected: readonly MmrManifestRejection[];
}

/** The manifest's entry name in its part. */
export const MMR_MANIFEST_ENTRY = 'manifest.json';
/** The HTML index matrix-media-repo writes beside the manifest (not media). */
export const MMR_INDEX_ENTRY = 'index.html';
/**
 * Largest manifest read (one JSON object, so it is parsed whole; about
 * 400 bytes an item, so some 600,000 items).
 */
export const MAX_MMR_MANIFEST_BYTES: number = 256 * 1024 * 1024;

/** A manifest that cannot be used at all. */
export class MmrManifestError extends Error {
  constructor(message: string) {
    super(`invalid matrix-media-repo manifest: ${message}`);
    this.name = 'MmrManifestError';
  }
}

/** RFC 9110 §8.3.1 media type: `type/subtype` tokens, optional parameters. */
const MEDIA_TYPE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+\/[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:\s*;[\x20-\x7e]*)?$/;
const USER_ID = /^@[^:]+:(.+)$/;

/** Whether `value` is a media type we would send back as Content-Type. */
export function isKnownMediaType(value: string): boolean {
  return value.length <= 255 && MEDIA_TYPE.test(value);
}

function field(record: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

function optionalString(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

function parseItem(mxc: string, value: unknown): MmrManifestItem | MmrManifestRejection {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { mxc, archivedName: null, kind: 'invalid-entry', detail: 'the entry is not an object' };
  const record = value as Record<string, unknown>;
  const named = field(record, 'file_name');
  const reject = (detail: string, kind: MmrManifestRejection['kind'] = 'invalid-entry'): MmrManifestRejection => ({
    mxc,
    archivedName: typeof named === 'string' ? named : null,
    kind,
    detail,
  });
  const origin = field(record, 'origin');
  const mediaId = field(record, 'media_id');
  if (typeof origin !== 'string' || !isValidServerName(origin)) return reject('origin is not a valid server name');
  if (typeof mediaId !== 'string' || !isValidMediaId(mediaId)) return reject('media_id is not a valid media ID');
  if (formatMxcUri(origin, mediaId) !== mxc) return reject(`the key does not match origin and media_id (${formatMxcUri(origin, mediaId)})`);
  const archivedName = field(record, 'file_name');
  if (typeof archivedName !== 'string' || !isSafeEntryName(archivedName)) return reject('file_name is not a safe relative entry name');
  const size = field(record, 'size_bytes');
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) return reject('size_bytes is not a non-negative integer');
  const sha256 = optionalString(field(record, 'sha256'));
  if (sha256 !== null && !/^[0-9a-fA-F]{64}$/.test(sha256)) return reject('sha256 is not 64 hexadecimal digits');
  const createdAt = field(record, 'created_ts') ?? 0;
  if (typeof createdAt !== 'number' || !Number.isSafeInteger(createdAt) || createdAt < 0) return reject('created_ts is not a time in milliseconds');
  const contentType = optionalString(field(record, 'content_type'));
  if (contentType !== null && !isKnownMediaType(contentType)) return reject(`content_type ${JSON.stringify(contentType.slice(0, 80))} is not a media type`, 'unknown-content-type');
  const uploadName = optionalString(field(record, 'name'));
  // eslint-disable-next-line no-control-regex -- a name with control characters would be echoed in Content-Disposition
  if (uploadName !== null && (uploadName.length > 255 || /[\x00-\x1f\x7f]/.test(uploadName))) return reject('name has control characters or is too long');
  // matrix-media-repo keeps an uploader only when it is a user of the media's origin (archival/v2archive/reader.go).
  const uploaderValue = optionalString(field(record, 'uploader'));
  const uploaderServer = uploaderValue === null ? null : USER_ID.exec(uploaderValue)?.[1];
  const uploader = uploaderServer === origin ? uploaderValue : null;
  return {
    mxc,
    origin,
    mediaId,
    archivedName,
    size,
    sha256: sha256?.toLowerCase() ?? null,
    contentType,
    uploadName,
    uploader,
    createdAt,
    s3Url: optionalString(field(record, 's3_url')),
  };
}

/** Parses and validates `manifest.json`; throws {@link MmrManifestError} when it cannot be used at all. */
export function parseMmrManifest(text: string): MmrManifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new MmrManifestError(`not JSON (${(error as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new MmrManifestError('not a JSON object');
  const document = value as Record<string, unknown>;
  if (field(document, 'format') === 'hsmedia-media-archive') throw new MmrManifestError('this is an hsmedia archive (written by export): import it with import-archive');
  const version = field(document, 'version');
  if (version !== 1 && version !== 2) throw new MmrManifestError(`unsupported version ${JSON.stringify(version)} (1 and 2 are known)`);
  const entityId = version === 1 ? field(document, 'user_id') : field(document, 'entity_id');
  if (typeof entityId !== 'string' || entityId === '') throw new MmrManifestError('no entity');
  const media = field(document, 'media');
  if (typeof media !== 'object' || media === null || Array.isArray(media)) throw new MmrManifestError('no media');
  const createdAt = field(document, 'created_ts');
  const itemsByArchivedName = new Map<string, MmrManifestItem>();
  const rejected: MmrManifestRejection[] = [];
  for (const [mxc, entry] of Object.entries(media as Record<string, unknown>)) {
    const item = parseItem(mxc, entry);
    if ('kind' in item) {
      rejected.push(item);
    } else if (itemsByArchivedName.has(item.archivedName)) {
      rejected.push({ mxc, archivedName: null, kind: 'invalid-entry', detail: `file_name ${item.archivedName} is also used by ${itemsByArchivedName.get(item.archivedName)!.mxc}` });
    } else {
      itemsByArchivedName.set(item.archivedName, item);
    }
  }
  return { version, entityId, createdAt: typeof createdAt === 'number' ? createdAt : 0, itemsByArchivedName, rejected };
}
