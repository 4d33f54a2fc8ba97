import type { BlobStorageStats } from '@hsmedia/media-core';
import { Gauge, type Registry } from 'prom-client';

/** How long one read of the blob ledger's totals serves scrapes (it is a sum over `blob_refs`). */
const BLOB_STATS_TTL_MS = 30_000;

/**
 * The dedup gauges: stored bytes, referenced bytes and their ratio, from the
 * blob reference ledger (deployment-wide, so every instance reports the same
 * values and a workers' aggregate takes the first rather than the sum).
 */
export function registerBlobStorageGauges(registry: Registry, read: () => Promise<BlobStorageStats>): void {
  let cached: { readonly at: number; readonly stats: Promise<BlobStorageStats | undefined> } | undefined;
  const stats = (): Promise<BlobStorageStats | undefined> => {
    const now = Date.now();
    if (cached === undefined || now - cached.at > BLOB_STATS_TTL_MS) {
      // A failed read leaves the gauges as they were; the next scrape tries again.
      const entry = { at: now, stats: read().catch(() => undefined) };
      cached = entry;
      void entry.stats.then((value) => {
        if (value === undefined && cached === entry) cached = undefined;
      });
    }
    return cached.stats;
  };
  const gauge = (name: string, help: string, value: (stats: BlobStorageStats) => number): void => {
    new Gauge({
      name,
      help,
      registers: [registry],
      aggregator: 'first',
      async collect() {
        const current = await stats();
        if (current !== undefined) this.set(value(current));
      },
    });
  };
  gauge('hsmedia_blob_stored_bytes', 'Bytes of the distinct referenced blobs: what is stored for them (dedup enabled).', (s) => s.storedBytes);
  gauge(
    'hsmedia_blob_referenced_bytes',
    'Bytes every media record and thumbnail references, once per reference: what would be stored without dedup.',
    (s) => s.referencedBytes,
  );
  gauge('hsmedia_blob_dedup_ratio', 'Referenced bytes / stored bytes (1: nothing shared).', (s) =>
    s.storedBytes === 0 ? 1 : s.referencedBytes / s.storedBytes,
  );
}
