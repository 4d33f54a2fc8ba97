import type { MediaAdmin } from '@hsmedia/media-core';
import type { Clock } from '@hsmedia/runtime';
import type { MediaMetrics } from './metrics.js';

/** The retention rules (`retention:` in the config); a rule left undefined is off. */
export interface RetentionPolicy {
  /** How often the job runs, in ms. */
  readonly intervalMs: number;
  /** Delete cached remote media not used (accessed, else fetched) for this long. */
  readonly remoteMaxIdleMs?: number;
  /** Delete cached remote media fetched longer ago than this, used or not. */
  readonly remoteMaxAgeMs?: number;
  /** Delete local media not used (downloaded, else uploaded) for this long. */
  readonly localMaxIdleMs?: number;
  /** Delete local media uploaded longer ago than this. */
  readonly localMaxAgeMs?: number;
  /** Keep the remote cache within this many bytes, evicting the least recently used first. */
  readonly remoteCacheMaxBytes?: number;
  /** Keep profile media (`MediaRecord.profile`) out of every rule. Default true. */
  readonly keepProfiles?: boolean;
}

/** What one {@link runRetention} deleted, per rule. */
export interface RetentionResult {
  readonly remoteIdle: number;
  readonly remoteAge: number;
  readonly localIdle: number;
  readonly localAge: number;
  readonly remoteEvicted: number;
  readonly remoteEvictedBytes: number;
}

/** True when at least one rule is on (otherwise the job is not scheduled at all). */
export function hasRetentionRules(policy: RetentionPolicy): boolean {
  return (
    policy.remoteMaxIdleMs !== undefined ||
    policy.remoteMaxAgeMs !== undefined ||
    policy.localMaxIdleMs !== undefined ||
    policy.localMaxAgeMs !== undefined ||
    policy.remoteCacheMaxBytes !== undefined
  );
}

/**
 * Applies every rule once, at `clock.now()`: age and idle rules first, then
 * the remote cache budget (least recently used first). Local media only ever
 * goes by the local rules; the budget touches remote media only.
 */
export async function runRetention(
  admin: MediaAdmin,
  policy: RetentionPolicy,
  clock: Clock,
  metrics?: MediaMetrics,
): Promise<RetentionResult> {
  const now = clock.now();
  // Quarantined and protected media always stay (MediaAdmin's default scope); avatars unless keep_profiles is off.
  const scope = { includeProfiles: policy.keepProfiles === false };
  const count = (rule: string, n: number): number => {
    if (n > 0) metrics?.retentionDeleted.inc({ rule }, n);
    return n;
  };
  const remoteIdle =
    policy.remoteMaxIdleMs === undefined ? 0 : count('remote_idle', await admin.purgeRemoteCache(now - policy.remoteMaxIdleMs, undefined, scope));
  const remoteAge =
    policy.remoteMaxAgeMs === undefined
      ? 0
      : count('remote_age', await admin.purgeRemoteCache(Number.MAX_SAFE_INTEGER, now - policy.remoteMaxAgeMs, scope));
  const localIdle =
    policy.localMaxIdleMs === undefined
      ? 0
      : count('local_idle', (await admin.deleteLocalMedia({ lastUsedBefore: now - policy.localMaxIdleMs, ...scope })).length);
  const localAge =
    policy.localMaxAgeMs === undefined
      ? 0
      : count('local_age', (await admin.deleteLocalMedia({ createdBefore: now - policy.localMaxAgeMs, ...scope })).length);
  let remoteEvicted = 0;
  let remoteEvictedBytes = 0;
  if (policy.remoteCacheMaxBytes !== undefined) {
    const eviction = await admin.evictRemoteCache(policy.remoteCacheMaxBytes, scope);
    remoteEvicted = count('remote_budget', eviction.deleted);
    remoteEvictedBytes = eviction.freedBytes;
  }
  return { remoteIdle, remoteAge, localIdle, localAge, remoteEvicted, remoteEvictedBytes };
}
