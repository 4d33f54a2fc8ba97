/**
 * The virus-scan stage between "bytes stored" and "media visible": where the
 * scan of a record's bytes stands, how a store keeps it, and the scanner
 * that gives verdicts (e.g. `@hsmedia/clamav`).
 */

/**
 * Where the scan of a record's bytes stands. Only `clean` media is served;
 * a record without a state was stored while scanning was off and is served
 * as before.
 *
 * - `pending`: stored, not scanned yet (readers wait, as for an async upload);
 * - `clean`: the scanner found nothing;
 * - `infected`: the scanner found a signature (the record is also quarantined);
 * - `failed`: the scanner could not answer (retried later);
 * - `oversize`: larger than the scan limit and the policy keeps it unserved.
 */
export type MediaScanState = 'pending' | 'clean' | 'infected' | 'failed' | 'oversize';

/** Every {@link MediaScanState}, for validation. */
export const MEDIA_SCAN_STATES: readonly MediaScanState[] = Object.freeze(['pending', 'clean', 'infected', 'failed', 'oversize'] as const);

/** Whether `value` is a {@link MediaScanState}. */
export function isMediaScanState(value: unknown): value is MediaScanState {
  return (MEDIA_SCAN_STATES as readonly unknown[]).includes(value);
}

/**
 * Writes of the scan state. An optional capability of a `MediaMetadataStore`
 * (check with {@link hasMediaScanStates}); the SQL and in-memory stores
 * implement it. Reads come with the record (`MediaRecord.scanState`).
 */
export interface MediaScanStates {
  /**
   * Sets the scan state of a record; true when it exists. With `onlyFrom`,
   * only while its state is one of those (atomic: a verdict written by
   * another instance meanwhile is not overwritten).
   */
  setMediaScanState(serverName: string, mediaId: string, state: MediaScanState, onlyFrom?: readonly MediaScanState[]): Promise<boolean>;
}

/** Whether `store` also implements {@link MediaScanStates}. */
export function hasMediaScanStates<T extends object>(store: T): store is T & MediaScanStates {
  return typeof (store as Partial<MediaScanStates>).setMediaScanState === 'function';
}

/** What a {@link MediaScanner} found. */
export type ScanVerdict = { readonly verdict: 'clean' } | { readonly verdict: 'infected'; readonly signature: string };

/** What a {@link MediaScanner} is asked to scan. */
export interface ScanRequest {
  /** The bytes, streamed: the scanner reads them with back-pressure. */
  readonly bytes: ReadableStream<Uint8Array>;
  readonly size: number;
  /** Aborts the scan (timeout, shutdown); the scanner then throws. */
  readonly signal: AbortSignal;
}

/**
 * A virus scanner. `scan` answers a verdict, or throws when it could not
 * scan (down, slow, garbled answer, its own size limit): the caller applies
 * its failure policy, never serves the media on a throw.
 */
export interface MediaScanner {
  scan(request: ScanRequest): Promise<ScanVerdict>;
  /**
   * The scanner's signature-database version (e.g. clamd's `VERSION`), to
   * rescan when it changes; absent when the scanner cannot tell.
   */
  signatureVersion?(signal: AbortSignal): Promise<string>;
  /** Thrown by `scan` when the scanner's own size limit was hit: handled as oversize, not as a failure. */
  isSizeLimitError?(err: unknown): boolean;
}
