/**
 * Leases for work that one instance of a multi-instance deployment should do
 * at a time (periodic clean-ups, one fetch of a remote item). An optional
 * capability of a {@link MediaMetadataStore}: the stores that several
 * processes share (SQL databases) implement it; check with {@link hasJobLeases}.
 */
import type { MediaMetadataStore } from './ports/index.js';

/**
 * Named, expiring leases held by one holder at a time. A lease that is not
 * released (the holder crashed) frees itself after its TTL, so no job can be
 * blocked forever; a holder that works longer than its TTL must renew it
 * (acquire again with the same holder) before it runs out.
 */
export interface JobLeases {
  /**
   * Takes or renews the lease `name` for `holder` until `now + ttlMs`. True
   * when `holder` now holds it: it was free, expired, or already held by
   * `holder` (then the expiry moves on). False while another holder's lease
   * runs. Atomic across every process sharing the store.
   */
  tryAcquireLease(name: string, holder: string, ttlMs: number): Promise<boolean>;
  /** Gives the lease up early; a no-op unless `holder` holds it. True when it released it. */
  releaseLease(name: string, holder: string): Promise<boolean>;
}

/** Whether `store` also implements {@link JobLeases}. */
export function hasJobLeases(store: MediaMetadataStore): store is MediaMetadataStore & JobLeases {
  const candidate = store as Partial<JobLeases>;
  return typeof candidate.tryAcquireLease === 'function' && typeof candidate.releaseLease === 'function';
}
