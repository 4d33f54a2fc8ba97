import { MEDIA_SCAN_STATES, isMediaScanState, type MediaCompletion, type MediaRecord } from '@hsmedia/media-core';
import type { StoredServerKey } from '@hsmedia/signing';

/**
 * Guards that make SQLite and PostgreSQL agree. Without them SQLite would store
 * what PostgreSQL rejects (NUL characters, over-long keys, fractional
 * `bigint`s), so the same call would succeed on one backend and fail on the
 * other. Failures are programming errors of the caller: `TypeError`, naming the
 * field but never echoing its value.
 */

/** Length cap of the key columns (`varchar(255)` in the schema). */
export const MAX_KEY_LENGTH = 255;

/** True when `value` can be stored in or matched against a key column at all. */
export function isStorableKey(value: string): boolean {
  return typeof value === 'string' && value.length <= MAX_KEY_LENGTH && !value.includes('\0');
}

function checkKey(field: string, value: unknown): void {
  if (typeof value !== 'string' || !isStorableKey(value)) {
    throw new TypeError(`${field} must be a string of at most ${MAX_KEY_LENGTH} characters without NUL`);
  }
}

function checkOptionalKey(field: string, value: unknown): void {
  if (value !== null) checkKey(field, value);
}

function checkText(field: string, value: unknown): void {
  if (typeof value !== 'string' || value.includes('\0')) {
    throw new TypeError(`${field} must be a string without NUL`);
  }
}

function checkOptionalText(field: string, value: unknown): void {
  if (value !== null) checkText(field, value);
}

/** Times and sizes live in `bigint` columns: safe integers only. */
export function checkInteger(field: string, value: unknown): void {
  if (!Number.isSafeInteger(value)) throw new TypeError(`${field} must be a safe integer`);
}

function checkOptionalInteger(field: string, value: unknown): void {
  if (value !== null) checkInteger(field, value);
}

function checkBoolean(field: string, value: unknown): void {
  if (typeof value !== 'boolean') throw new TypeError(`${field} must be a boolean`);
}

export function checkMediaRecord(record: MediaRecord): void {
  if (typeof record !== 'object' || record === null) throw new TypeError('record must be an object');
  checkKey('serverName', record.serverName);
  checkKey('mediaId', record.mediaId);
  checkOptionalKey('blobId', record.blobId);
  checkOptionalText('contentType', record.contentType);
  checkOptionalText('uploadName', record.uploadName);
  checkOptionalInteger('size', record.size);
  checkOptionalText('sha256', record.sha256);
  checkOptionalKey('userId', record.userId);
  checkInteger('createdAt', record.createdAt);
  checkOptionalInteger('uploadedAt', record.uploadedAt);
  checkOptionalInteger('expiresAt', record.expiresAt);
  checkBoolean('authenticated', record.authenticated);
  checkBoolean('quarantined', record.quarantined);
  if (record.protected !== undefined) checkBoolean('protected', record.protected);
  if (record.profile !== undefined) checkBoolean('profile', record.profile);
  checkOptionalInteger('lastAccessAt', record.lastAccessAt);
  if (record.scanState !== undefined) checkScanState(record.scanState);
}

export function checkMediaCompletion(completion: MediaCompletion): void {
  if (typeof completion !== 'object' || completion === null) throw new TypeError('completion must be an object');
  checkKey('blobId', completion.blobId);
  checkText('contentType', completion.contentType);
  checkOptionalText('uploadName', completion.uploadName);
  checkInteger('size', completion.size);
  checkText('sha256', completion.sha256);
  checkInteger('uploadedAt', completion.uploadedAt);
  if (completion.scanState !== undefined) checkScanState(completion.scanState);
}

export function checkServerKey(key: StoredServerKey): void {
  if (typeof key !== 'object' || key === null) throw new TypeError('server key must be an object');
  checkKey('serverName', key.serverName);
  checkKey('keyId', key.keyId);
  checkText('publicKey', key.publicKey);
  checkInteger('validUntilTs', key.validUntilTs);
  checkInteger('fetchedAt', key.fetchedAt);
}

/** Throws `TypeError` unless `state` is a `MediaScanState`. */
export function checkScanState(state: unknown): void {
  if (!isMediaScanState(state)) throw new TypeError(`scanState must be one of ${MEDIA_SCAN_STATES.join(', ')}`);
}
