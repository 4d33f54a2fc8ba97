import { ClamdClient, ClamdMediaScanner } from '@hsmedia/clamav';
import type { MediaServiceScanningOptions, ScanFailurePolicy, ScanOutcome } from '@hsmedia/media-core';

/** The resolved `scanning:` section of the config file. */
export interface ScanningConfig {
  /** clamd's Unix socket, or its TCP port on a loopback host. */
  readonly clamd: { readonly socket: string } | { readonly host: string; readonly port: number };
  /** Largest media scanned; undefined: no limit of ours (clamd's StreamMaxLength applies). */
  readonly maxBytes: number | undefined;
  readonly onOversize: ScanFailurePolicy;
  readonly onError: ScanFailurePolicy;
  readonly timeoutMs: number;
  readonly concurrency: number;
  readonly retryIntervalMs: number;
  readonly rescanOnUpdate: boolean;
  readonly versionPollMs: number;
  readonly rescansPerSecond: number;
}

/**
 * The `MediaService` scanning options for a `scanning:` config: clamd over
 * its socket (`@hsmedia/clamav`), the policies, and `onScan` for metrics.
 */
export function scanningOptionsOf(config: ScanningConfig, onScan: (outcome: ScanOutcome, ms: number) => void): MediaServiceScanningOptions {
  const client = new ClamdClient({ ...config.clamd, timeoutMs: config.timeoutMs });
  return {
    scanner: new ClamdMediaScanner(client),
    maxBytes: config.maxBytes,
    onOversize: config.onOversize,
    onError: config.onError,
    timeoutMs: config.timeoutMs,
    concurrency: config.concurrency,
    retryIntervalMs: config.retryIntervalMs,
    rescanOnUpdate: config.rescanOnUpdate,
    versionPollMs: config.versionPollMs,
    rescansPerSecond: config.rescansPerSecond,
    onScan,
  };
}
