import { hasJobLeases, type JobLeases } from './job-leases.js';
import type { MediaCatalog } from './media-catalog.js';
import { MediaScanStage, type MediaScanningOptions } from './media-scan-stage.js';
import { hasAdminAuditLog, hasMediaScanStates, type MediaMetadataStore, type MediaQueries, type MediaRecordStore, type MediaScanStates } from './ports/index.js';
import { SignatureWatch } from './signature-watch.js';

/** `MediaServiceOptions.scanning`: the scan stage and the rescan after signature updates. */
export interface MediaServiceScanningOptions extends MediaScanningOptions {
  /** Rescan clean media when the scanner's signature version changes. Default true. */
  readonly rescanOnUpdate?: boolean | undefined;
  /** How often the signature version is asked, in ms. Default 300 000. */
  readonly versionPollMs?: number | undefined;
  /** Rescans per second at most after an update. Default 10. */
  readonly rescansPerSecond?: number | undefined;
}

/**
 * Builds the scan stage of a `MediaService`, taking the scan-state writes,
 * listings, leases and audit log from the metadata store unless given.
 */
export function setUpScanning(
  catalog: MediaCatalog,
  metadata: MediaRecordStore,
  scanning: MediaServiceScanningOptions,
  pollMs: number,
): { stage: MediaScanStage; watch: SignatureWatch | undefined } {
  const candidate = metadata as MediaRecordStore & Partial<MediaQueries>;
  const store =
    scanning.store ??
    (hasMediaScanStates(candidate) && typeof candidate.listMedia === 'function' ? (candidate as MediaScanStates & Pick<MediaQueries, 'listMedia'>) : undefined);
  const full = metadata as MediaMetadataStore;
  const leases: JobLeases | undefined = scanning.leases ?? (hasJobLeases(full) ? full : undefined);
  const audit = scanning.audit ?? (hasAdminAuditLog(metadata) ? metadata : undefined);
  const stage = new MediaScanStage(catalog, { ...scanning, store, leases, audit, pollMs });
  if (scanning.rescanOnUpdate === false || store === undefined) return { stage, watch: undefined };
  const watch = new SignatureWatch({
    scanner: scanning.scanner,
    stage,
    queries: store,
    leases,
    pollMs: scanning.versionPollMs ?? 300_000,
    rescansPerSecond: scanning.rescansPerSecond ?? 10,
    logger: catalog.logger,
  });
  return { stage, watch };
}
