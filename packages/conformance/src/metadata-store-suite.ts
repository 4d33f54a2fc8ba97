import {
  hasAdminAuditLog,
  hasBlockedHashBatches,
  hasBlockedHashes,
  hasJobLeases,
  hasMediaRecordBatches,
  hasMediaScanStates,
  type AdminAuditLog,
  type BlockedHashBatches,
  type BlockedHashes,
  type JobLeases,
  type MediaMetadataStore,
  type MediaRecordBatches,
  type MediaScanStates,
} from '@hsmedia/media-core';
import type { ServerKeyStore } from '@hsmedia/signing';
import type { TestContext } from 'vitest';
import { describeAdminAuditCases } from './admin-audit-cases.js';
import { describeBlockedHashCases } from './blocked-hash-cases.js';
import { describeWithSubject } from './internal/subject-lifecycle.js';
import { describeJobLeaseCases } from './job-lease-cases.js';
import { describeMediaBatchCases } from './media-batch-cases.js';
import type { PortFactory, PortSubject } from './port-subject.js';
import { mediaQueriesCases, mediaRecordStoreCases } from './port-suites.js';
import { describeScanStateCases } from './scan-state-cases.js';
import { describeServerKeyCases } from './server-key-cases.js';
import { describeThumbnailCases } from './thumbnail-cases.js';

/**
 * What a {@link MetadataStoreFactory} hands to each test. A store that also
 * implements `JobLeases`, `BlockedHashes`, `AdminAuditLog`, `MediaScanStates`, the import batches
 * (`MediaRecordBatches`, `BlockedHashBatches`) or `@hsmedia/signing`'s `ServerKeyStore` (the SQL
 * stores and the in-memory one do) is checked for those too.
 */
export type MetadataStoreSubject = PortSubject<MediaMetadataStore>;

/** Creates a fresh, empty store (schema in place); called once per test. */
export type MetadataStoreFactory = PortFactory<MediaMetadataStore>;

function isServerKeyStore(store: object): store is ServerKeyStore {
  const candidate = store as Partial<ServerKeyStore>;
  return typeof candidate.getServerKeys === 'function' && typeof candidate.putServerKeys === 'function';
}

/** The store as the optional capability, or the test skipped when it lacks it. */
function optional<T>(store: () => MediaMetadataStore, has: (store: MediaMetadataStore) => boolean, capability: string) {
  return (context: TestContext): T => {
    const current = store();
    if (!has(current)) {
      context.skip(`the store does not implement ${capability}`);
      throw new Error('unreachable');
    }
    return current as T;
  };
}

/**
 * The shared conformance suite for a whole {@link MediaMetadataStore}: every
 * case of {@link describeMediaRecordStore}, {@link describeThumbnailIndex} and
 * {@link describeMediaQueries} on one store, plus those of
 * {@link describeJobLeases}, {@link describeBlockedHashes}, {@link describeAdminAuditLog} and {@link describeServerKeyStore} when the store
 * implements them (skipped otherwise). Call it once per adapter from a vitest
 * file; `factory` runs before every test and `cleanup` (which should close
 * the store) after it.
 *
 * @example
 * ```ts
 * describeMetadataStore('KnexMetadataStore (SQLite)', async () => {
 *   const dir = await mkdtemp(join(tmpdir(), 'meta-'));
 *   const store = await openSqliteStore(join(dir, 'media.db'));
 *   return { store, cleanup: async () => { await store.close(); await rm(dir, { recursive: true, force: true }); } };
 * });
 * ```
 */
export function describeMetadataStore(name: string, factory: MetadataStoreFactory): void {
  describeWithSubject(`MediaMetadataStore conformance: ${name}`, factory, (store) => {
    describeJobLeaseCases(optional<JobLeases>(store, hasJobLeases, 'JobLeases'));
    describeBlockedHashCases(optional<BlockedHashes>(store, hasBlockedHashes, 'BlockedHashes'));
    describeAdminAuditCases(optional<AdminAuditLog>(store, hasAdminAuditLog, 'AdminAuditLog'));
    describeScanStateCases(optional<MediaMetadataStore & MediaScanStates>(store, hasMediaScanStates, 'MediaScanStates'));
    mediaQueriesCases(store);
    describeThumbnailCases(store);
    mediaRecordStoreCases(store);
    describeServerKeyCases(optional<ServerKeyStore>(store, isServerKeyStore, 'ServerKeyStore'));
    describeMediaBatchCases(
      optional<MediaMetadataStore & MediaRecordBatches>(store, hasMediaRecordBatches, 'MediaRecordBatches'),
      optional<BlockedHashes & BlockedHashBatches>(store, (current) => hasBlockedHashes(current) && hasBlockedHashBatches(current), 'BlockedHashBatches'),
    );
  });
}
