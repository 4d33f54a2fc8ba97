/** Longest lease name or holder, as the SQL stores' `varchar(255)` key columns allow. */
const MAX_KEY_LENGTH = 255;

function checkLeaseKey(field: string, value: unknown): asserts value is string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_KEY_LENGTH || value.includes('\0')) {
    throw new TypeError(`${field} must be a non-empty string of at most ${MAX_KEY_LENGTH} characters without NUL`);
  }
}

/**
 * The job leases of `MemoryMetadataStore` (the `JobLeases` semantics, with
 * the same argument checks as the SQL stores, so a caller that passes here
 * passes there). Only one process sees them: enough for a single instance
 * and for tests of lease-gated jobs.
 */
export class LeaseTable {
  readonly #leases = new Map<string, { readonly holder: string; readonly expiresAt: number }>();

  tryAcquire(name: string, holder: string, ttlMs: number, now: number): boolean {
    checkLeaseKey('name', name);
    checkLeaseKey('holder', holder);
    if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) throw new TypeError('ttlMs must be a positive safe integer');
    const lease = this.#leases.get(name);
    // Free, expired (at exactly its expiry, as in SQL's `expires_at <= now`) or ours: take or renew it.
    if (lease !== undefined && lease.holder !== holder && lease.expiresAt > now) return false;
    this.#leases.set(name, { holder, expiresAt: now + ttlMs });
    return true;
  }

  /** Deletes the lease if `holder` holds it (expired or not, as the SQL stores do). */
  release(name: string, holder: string): boolean {
    checkLeaseKey('name', name);
    checkLeaseKey('holder', holder);
    if (this.#leases.get(name)?.holder !== holder) return false;
    return this.#leases.delete(name);
  }
}
