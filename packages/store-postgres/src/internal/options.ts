/**
 * Checks of {@link createPostgresMetadataStore} options. Configuration errors
 * are `TypeError`s naming the option; they never echo the value, because the
 * URL may carry a password.
 */

// knex quotes the schema name, but an unquoted-identifier charset keeps it
// meaning the same thing in psql, in logs and in `search_path` (which splits on commas).
const SCHEMA_NAME_RE = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;
// PostgreSQL truncates application_name at 63 bytes and replaces non-ASCII with '?'.
const APPLICATION_NAME_RE = /^[\x20-\x7e]{1,63}$/;

export function checkUrl(url: unknown): string {
  if (typeof url !== 'string' || url.length === 0) {
    throw new TypeError('createPostgresMetadataStore: options.url must be a postgres:// URL');
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError('createPostgresMetadataStore: options.url is not a valid URL');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new TypeError('createPostgresMetadataStore: options.url must start with postgres:// or postgresql://');
  }
  return url;
}

export function checkNonNegativeInteger(name: string, value: unknown): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) {
    throw new TypeError(`createPostgresMetadataStore: ${name} must be a non-negative integer`);
  }
  return value as number;
}

export function checkPositiveInteger(name: string, value: unknown): number {
  if (!Number.isSafeInteger(value) || (value as number) < 1) {
    throw new TypeError(`createPostgresMetadataStore: ${name} must be a positive integer`);
  }
  return value as number;
}

export function checkSchemaName(value: unknown): string {
  if (typeof value !== 'string' || !SCHEMA_NAME_RE.test(value)) {
    throw new TypeError('createPostgresMetadataStore: options.searchPath must be a schema name ([A-Za-z_][A-Za-z0-9_$]{0,62})');
  }
  return value;
}

export function checkApplicationName(value: unknown): string {
  if (typeof value !== 'string' || !APPLICATION_NAME_RE.test(value)) {
    throw new TypeError('createPostgresMetadataStore: options.applicationName must be 1 to 63 printable ASCII characters');
  }
  return value;
}
