import type { AdminAuditLog, BlockedHashes, JobLeases, MediaQueries, MediaRecordStore, ThumbnailIndex } from '@hsmedia/media-core';
import type { ServerKeyStore } from '@hsmedia/signing';
import { describeAdminAuditCases } from './admin-audit-cases.js';
import { describeBlockedHashCases } from './blocked-hash-cases.js';
import { describeWithSubject } from './internal/subject-lifecycle.js';
import { describeJobLeaseCases } from './job-lease-cases.js';
import { describeMediaBrowseCases } from './media-browse-cases.js';
import { describeMediaQueryCases, describeQuarantineFlagCases } from './media-query-cases.js';
import { describeMediaRecordCases } from './media-record-cases.js';
import { describePendingExpiryCases } from './pending-expiry-cases.js';
import type { PortFactory } from './port-subject.js';
import { describeProfileCases, describeProfileQueryCases } from './profile-cases.js';
import { describeProtectionCases, describeProtectionQueryCases } from './protection-cases.js';
import { describeServerKeyCases } from './server-key-cases.js';
import { describeThumbnailCases } from './thumbnail-cases.js';
import { describePendingCountCases, describeUsageCases } from './usage-cases.js';

/** Every case of {@link describeMediaRecordStore}, for a suite that provides the store. */
export function mediaRecordStoreCases(store: () => MediaRecordStore): void {
  describeMediaRecordCases(store);
  describePendingCountCases(store);
  describePendingExpiryCases(store);
  describeQuarantineFlagCases(store);
  describeProtectionCases(store);
  describeProfileCases(store);
}

/** Every case of {@link describeMediaQueries}, for a suite that provides the store. */
export function mediaQueriesCases(store: () => MediaRecordStore & MediaQueries): void {
  describeUsageCases(store);
  describeMediaQueryCases(store);
  describeProtectionQueryCases(store);
  describeProfileQueryCases(store);
  describeMediaBrowseCases(store);
}

/**
 * The conformance suite of the `MediaRecordStore` port: exact round trips of
 * every `MediaRecord` field with its JS type (Unicode and SQL-looking names,
 * verbatim content types, sizes up to 2^53-1, timestamps, nulls, booleans),
 * insert-once and complete-once semantics, deletion, access touches, blob
 * references, the quarantine, protection and profile flags, pending counts and the
 * expiry of pending records, and concurrent writers of one key (exactly one
 * wins). `factory` runs before every test and `cleanup` after it.
 *
 * @example
 * ```ts
 * describeMediaRecordStore('MyRecordStore', async () => {
 *   const store = await openMyRecordStore(); // schema migrated, empty
 *   return { store, cleanup: () => store.close() };
 * });
 * ```
 */
export function describeMediaRecordStore(name: string, factory: PortFactory<MediaRecordStore>): void {
  describeWithSubject(`MediaRecordStore conformance: ${name}`, factory, mediaRecordStoreCases);
}

/**
 * The conformance suite of the `ThumbnailIndex` port: exact round trips,
 * insert-once by `(serverName, mediaId, width, height, method, animated,
 * contentType)`, deletion giving the blob IDs, concurrent inserts. When the
 * store is also the `MediaRecordStore`, its `isBlobReferenced` must see
 * thumbnail blobs (that case is skipped otherwise).
 */
export function describeThumbnailIndex(name: string, factory: PortFactory<ThumbnailIndex>): void {
  describeWithSubject(`ThumbnailIndex conformance: ${name}`, factory, describeThumbnailCases);
}

/**
 * The conformance suite of the `MediaQueries` port (`listMedia` filters,
 * order and paging, `summarizeMedia`, `mediaUsageByUser`, `getUserUsage`).
 * The queries read what the `MediaRecordStore` wrote, so the subject
 * implements both: the cases insert records, then query them.
 */
export function describeMediaQueries(name: string, factory: PortFactory<MediaRecordStore & MediaQueries>): void {
  describeWithSubject(`MediaQueries conformance: ${name}`, factory, mediaQueriesCases);
}

/**
 * The conformance suite of the `JobLeases` capability: grant, refuse, renew,
 * release by the holder only, expiry (real time: the store's own clock),
 * names kept apart, one winner among concurrent holders, argument checks.
 */
export function describeJobLeases(name: string, factory: PortFactory<JobLeases>): void {
  describeWithSubject(`JobLeases conformance: ${name}`, factory, (store) => describeJobLeaseCases(() => store()));
}

/**
 * The conformance suite of `@hsmedia/signing`'s `ServerKeyStore`: several
 * keys per server, servers kept apart, upsert by `(serverName, keyId)`,
 * numbers kept as numbers, empty batches.
 */
export function describeServerKeyStore(name: string, factory: PortFactory<ServerKeyStore>): void {
  describeWithSubject(`ServerKeyStore conformance: ${name}`, factory, (store) => describeServerKeyCases(() => store()));
}

/**
 * The conformance suite of the `BlockedHashes` capability: exact round trips
 * (text, user IDs, times up to 2^53-1), first entry kept, one winner among
 * concurrent blocks of a hash, keyset paging in hash order, malformed hashes
 * never blocked, malformed entries and pages refused with `TypeError`.
 */
export function describeBlockedHashes(name: string, factory: PortFactory<BlockedHashes>): void {
  describeWithSubject(`BlockedHashes conformance: ${name}`, factory, (store) => describeBlockedHashCases(() => store()));
}

/**
 * The conformance suite of the `AdminAuditLog` capability: exact round trips
 * (text, user IDs, times up to 2^53-1), increasing IDs, newest-first keyset
 * paging, exact filters by action and target, distinct IDs under concurrent
 * records, malformed entries and queries refused with `TypeError`.
 */
export function describeAdminAuditLog(name: string, factory: PortFactory<AdminAuditLog>): void {
  describeWithSubject(`AdminAuditLog conformance: ${name}`, factory, (store) => describeAdminAuditCases(() => store()));
}
