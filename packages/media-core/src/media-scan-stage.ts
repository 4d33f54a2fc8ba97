import { errors } from '@hsmedia/errors';
import { signalOf, type SignalSource } from '@hsmedia/runtime';
import { formatMxcUri } from './ids.js';
import type { JobLeases } from './job-leases.js';
import type { MediaCatalog } from './media-catalog.js';
import type { AdminAuditLog, MediaCandidate, MediaQueries, MediaRecord, MediaScanState, MediaScanStates, MediaScanner, ScanVerdict } from './ports/index.js';
import { UploadWaiters } from './upload-waiters.js';

/** What to do with media the scanner cannot vouch for. */
export type ScanFailurePolicy = 'fail_closed' | 'serve';

/** What one scan ended with, as metrics count it. */
export type ScanOutcome = 'clean' | 'infected' | 'failed' | 'oversize' | 'served_unscanned';

/** Options of the virus-scan stage (`MediaServiceOptions.scanning`). */
export interface MediaScanningOptions {
  readonly scanner: MediaScanner;
  /** Largest media scanned, in bytes; larger media follows `onOversize`. Default: no limit of ours (the scanner's own may apply). */
  readonly maxBytes?: number | undefined;
  /** Media over the limit: `fail_closed` (default) keeps it unserved; `serve` serves it unscanned, logged and counted. */
  readonly onOversize?: ScanFailurePolicy | undefined;
  /** The scanner failed (down, slow, garbled): `fail_closed` (default) keeps it unserved and retries later; `serve` serves it unscanned, logged and counted. */
  readonly onError?: ScanFailurePolicy | undefined;
  /** How long one scan may take, in ms. Default 60 000. */
  readonly timeoutMs?: number | undefined;
  /** Scans run at once in this process. Default 2. */
  readonly concurrency?: number | undefined;
  /** How often failed (and stale pending) media is retried, in ms. Default 60 000; 0 disables. */
  readonly retryIntervalMs?: number | undefined;
  /** Pending media older than this (ms) is picked up by the retry job (its instance died mid-scan). Default 300 000. */
  readonly stalePendingMs?: number | undefined;
  /**
   * Where scan states are written and failed media listed: default the
   * metadata store, which must then implement `MediaScanStates` and `listMedia`.
   */
  readonly store?: (MediaScanStates & Pick<MediaQueries, 'listMedia'>) | undefined;
  /** One scan per media item across instances sharing the store; default the metadata store's, when it has them. */
  readonly leases?: JobLeases | undefined;
  /** Where quarantines by the scanner are recorded; default the metadata store's audit log, when it has one. */
  readonly audit?: AdminAuditLog | undefined;
  /** Called after each scan with its outcome and duration (metrics). Must not throw. */
  readonly onScan?: ((outcome: ScanOutcome, ms: number) => void) | undefined;
}

/** What {@link MediaScanStage.scanNow} did. */
export interface ScanResult {
  /** The scan state now; `busy` when another instance is scanning the item right now. */
  readonly state: MediaScanState | 'busy';
  /** The signature found, for `infected`. */
  readonly signature?: string | undefined;
}

/** The actor the audit log names for what the scanner does. */
export const SCANNER_ACTOR = 'system:virus-scan';

const RETRY_BATCH = 100;
/** States a first scan or a retry may overwrite; a verdict another instance wrote is never overwritten. */
const UNDECIDED: readonly MediaScanState[] = ['pending', 'failed', 'oversize'];

function nonNegative(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new TypeError(`MediaService: scanning.${name} must be a non-negative integer, got ${value}`);
  return value;
}

/**
 * (A little past 300 lines with its doc comments: the queue, the verdict
 * writes and the waits share the per-item state, so they stay together.)
 *
 * The virus-scan stage between "bytes stored" and "media visible". New
 * media is stored `pending` (the catalog's `newScanState`); every item
 * announced by the catalog is queued here and streamed to the scanner under a
 * per-item lease, so that instances sharing the store scan each item once
 * and agree on its verdict. Readers of unscanned media wait for the
 * verdict as for an async upload (`timeout_ms`, then 504
 * `M_NOT_YET_UPLOADED`). Infected media is quarantined with the signature
 * as reason, its hash blocked and the act recorded in the audit log as
 * {@link SCANNER_ACTOR}. Scanner failures and oversize media follow the
 * configured policy, `fail_closed` by default: never served unscanned
 * silently; failed items are retried by a background job.
 */
export class MediaScanStage {
  readonly #catalog: MediaCatalog;
  readonly #scanner: MediaScanner;
  readonly #store: MediaScanStates & Pick<MediaQueries, 'listMedia'>;
  readonly #leases: JobLeases | undefined;
  readonly #audit: AdminAuditLog | undefined;
  readonly #maxBytes: number;
  readonly #onOversize: ScanFailurePolicy;
  readonly #onError: ScanFailurePolicy;
  readonly #timeoutMs: number;
  readonly #concurrency: number;
  readonly #stalePendingMs: number;
  readonly #pollMs: number;
  readonly #onScan: ((outcome: ScanOutcome, ms: number) => void) | undefined;
  readonly #holder = `scan-${process.pid}-${Math.random().toString(36).slice(2)}`;
  readonly #queue = new Map<string, { serverName: string; mediaId: string }>();
  readonly #waiters = new UploadWaiters();
  readonly #closing = new AbortController();
  readonly #retryTimer: ReturnType<typeof setInterval> | undefined;
  readonly #cleanListeners = new Set<(record: MediaRecord) => void>();
  #running = 0;
  #retrying = false;

  constructor(catalog: MediaCatalog, options: MediaScanningOptions & { readonly pollMs: number }) {
    this.#catalog = catalog;
    this.#scanner = options.scanner;
    if (options.store === undefined) throw new TypeError('MediaService: scanning needs a metadata store that implements MediaScanStates and listMedia');
    this.#store = options.store;
    this.#leases = options.leases;
    this.#audit = options.audit;
    this.#maxBytes = options.maxBytes === undefined ? Number.MAX_SAFE_INTEGER : nonNegative('maxBytes', options.maxBytes);
    this.#onOversize = options.onOversize ?? 'fail_closed';
    this.#onError = options.onError ?? 'fail_closed';
    for (const [name, policy] of [['onOversize', this.#onOversize], ['onError', this.#onError]] as const) {
      if (policy !== 'fail_closed' && policy !== 'serve') throw new TypeError(`MediaService: scanning.${name} must be fail_closed or serve`);
    }
    this.#timeoutMs = nonNegative('timeoutMs', options.timeoutMs ?? 60_000) || 60_000;
    this.#concurrency = Math.max(1, nonNegative('concurrency', options.concurrency ?? 2));
    this.#stalePendingMs = nonNegative('stalePendingMs', options.stalePendingMs ?? 300_000);
    this.#pollMs = options.pollMs;
    this.#onScan = options.onScan;
    catalog.onStored((record) => {
      if (record.scanState === 'pending') this.enqueue(record.serverName, record.mediaId);
    });
    const retryIntervalMs = nonNegative('retryIntervalMs', options.retryIntervalMs ?? 60_000);
    if (retryIntervalMs > 0) {
      this.#retryTimer = setInterval(() => void this.retryUndecided(), retryIntervalMs);
      this.#retryTimer.unref();
    }
  }

  /** Items queued or being scanned in this process (metrics). */
  get queueDepth(): number {
    return this.#queue.size + this.#running;
  }

  /**
   * Calls `listener` with each record that just became clean (its first
   * clean verdict), e.g. to thumbnail it only once its bytes are vouched for.
   * Returns an unsubscribe function.
   */
  onClean(listener: (record: MediaRecord) => void): () => void {
    this.#cleanListeners.add(listener);
    return () => void this.#cleanListeners.delete(listener);
  }

  /** Queues a scan of an item (once, however often it is queued before it runs). */
  enqueue(serverName: string, mediaId: string): void {
    if (this.#closing.signal.aborted) return;
    this.#queue.set(`${serverName}/${mediaId}`, { serverName, mediaId });
    this.#pump();
  }

  /**
   * Scans an item now, under its lease, and gives the state it ended in.
   * Without `force` only undecided items (pending, failed, oversize) are
   * scanned; with it (a rescan) a decided one is scanned again too.
   */
  async scanNow(serverName: string, mediaId: string, force = false): Promise<ScanResult> {
    const lease = `scan:${serverName}/${mediaId}`;
    if (this.#leases !== undefined && !(await this.#leases.tryAcquireLease(lease, this.#holder, this.#timeoutMs * 2))) return { state: 'busy' };
    try {
      // Read after the lease is held: a verdict written meanwhile by another instance is seen.
      const record = await this.#catalog.records.getMedia(serverName, mediaId);
      if (record === null) throw errors.notFound('Media not found');
      if (record.blobId === null) return { state: record.scanState ?? 'pending' };
      if (!force && record.scanState !== undefined && !UNDECIDED.includes(record.scanState)) return { state: record.scanState };
      return await this.#scan(record, force);
    } finally {
      if (this.#leases !== undefined) await this.#leases.releaseLease(lease, this.#holder).catch(() => false);
    }
  }

  /**
   * Waits until `initial` has a verdict that lets it be served, polling the
   * store (woken at once by a scan in this process). Errors: 404 when it is
   * infected or gone, 504 `M_NOT_YET_UPLOADED` when the time is up.
   */
  async waitForVerdict(initial: MediaRecord, options: { readonly timeoutMs: number; readonly signal?: SignalSource | undefined }): Promise<MediaRecord> {
    const catalog = this.#catalog;
    const key = `${initial.serverName}/${initial.mediaId}`;
    const deadline = catalog.clock.now() + options.timeoutMs;
    let record: MediaRecord | null = initial;
    for (;;) {
      if (record === null || record.scanState === 'infected' || record.quarantined) throw errors.notFound('Media not found');
      if (record.scanState === undefined || record.scanState === 'clean') {
        catalog.remember(record);
        return record;
      }
      const now = catalog.clock.now();
      if (now >= deadline) throw errors.notYetUploaded('The media has not been scanned yet');
      await this.#waiters.wait(key, Math.min(this.#pollMs, deadline - now), signalOf(options.signal));
      record = await catalog.records.getMedia(initial.serverName, initial.mediaId);
    }
  }

  /** Queues failed media, and pending media whose scan never finished (its instance died). Runs one batch at a time. */
  async retryUndecided(): Promise<number> {
    if (this.#retrying || this.#closing.signal.aborted) return 0;
    this.#retrying = true;
    try {
      const staleBefore = this.#catalog.clock.now() - this.#stalePendingMs;
      const failed = await this.#store.listMedia({ scanState: 'failed' }, { limit: RETRY_BATCH });
      const stale = await this.#store.listMedia({ scanState: 'pending', createdBefore: staleBefore }, { limit: RETRY_BATCH });
      for (const record of [...failed, ...stale]) this.enqueue(record.serverName, record.mediaId);
      return failed.length + stale.length;
    } catch (err) {
      this.#catalog.logger.warn({ err }, 'could not list media to scan again');
      return 0;
    } finally {
      this.#retrying = false;
    }
  }

  /** Stops the retry job and aborts running scans (their items stay pending or failed, for the next start). */
  close(): void {
    if (this.#retryTimer !== undefined) clearInterval(this.#retryTimer);
    this.#queue.clear();
    this.#closing.abort();
  }

  #pump(): void {
    while (this.#running < this.#concurrency && this.#queue.size > 0) {
      const [key, item] = this.#queue.entries().next().value as [string, { serverName: string; mediaId: string }];
      this.#queue.delete(key);
      this.#running++;
      this.scanNow(item.serverName, item.mediaId)
        .catch((err: unknown) => this.#catalog.logger.warn({ err, ...item }, 'media scan did not run'))
        .finally(() => {
          this.#running--;
          this.#pump();
        });
    }
  }

  async #scan(record: MediaRecord, force: boolean): Promise<ScanResult> {
    const started = performance.now();
    const { serverName, mediaId } = record;
    const outcome = await this.#verdictOf(record);
    // Shutting down: the aborted scan is no verdict; the item stays as it was, for the next start.
    if (this.#closing.signal.aborted) return { state: record.scanState ?? 'pending' };
    let state: MediaScanState;
    let signature: string | undefined;
    switch (outcome.kind) {
      case 'clean':
        state = 'clean';
        break;
      case 'infected':
        state = 'infected';
        signature = outcome.signature;
        break;
      case 'oversize':
        state = this.#onOversize === 'serve' ? 'clean' : 'oversize';
        break;
      case 'failed':
        state = this.#onError === 'serve' ? 'clean' : 'failed';
        break;
    }
    const unscannedServed = state === 'clean' && outcome.kind !== 'clean';
    if (unscannedServed) this.#catalog.logger.warn({ serverName, mediaId, reason: outcome.kind }, 'media served without a virus scan, as configured');
    // A rescan may overwrite any state; a first scan or retry only an undecided one.
    const written = await this.#store.setMediaScanState(serverName, mediaId, state, force ? undefined : UNDECIDED);
    if (written && state === 'infected') await this.#quarantine(record, signature!);
    this.#catalog.invalidate(serverName, mediaId);
    this.#waiters.notify(`${serverName}/${mediaId}`);
    this.#onScan?.(unscannedServed ? 'served_unscanned' : (state as ScanOutcome), performance.now() - started);
    if (written && state === 'clean' && record.scanState !== 'clean') this.#emitClean({ ...record, scanState: 'clean' });
    this.#catalog.logger.info({ serverName, mediaId, state, signature, ms: Math.round(performance.now() - started) }, 'media scanned');
    return { state, signature };
  }

  /**
   * Scans a thumbnail a remote server made before it is recorded: thumbnail rows have no scan state of
   * their own, so the verdict is the admission. Infected bytes are refused (404, as for any refused
   * remote content) and their hash blocked; a scanner failure or an oversize thumbnail is refused
   * (503) under `fail_closed`, so nothing unscanned is kept and a later request fetches it again.
   */
  async admitRemoteThumbnail(candidate: MediaCandidate): Promise<void> {
    const started = performance.now();
    const outcome = await this.#verdictOf(candidate);
    const policy = outcome.kind === 'oversize' ? this.#onOversize : outcome.kind === 'failed' ? this.#onError : undefined;
    const served = outcome.kind === 'clean' || policy === 'serve';
    this.#onScan?.(served && outcome.kind !== 'clean' ? 'served_unscanned' : outcome.kind, performance.now() - started);
    if (outcome.kind === 'infected') {
      const reason = `virus scan: ${outcome.signature}`;
      await this.#catalog.blockedHashes?.block({ sha256: candidate.sha256, reason, blockedBy: SCANNER_ACTOR, blockedAt: this.#catalog.clock.now() });
      this.#catalog.logger.warn({ serverName: candidate.serverName, mediaId: candidate.mediaId, signature: outcome.signature }, 'infected remote thumbnail refused');
      throw errors.notFound('Media not found');
    }
    if (!served) throw errors.unknown('The virus scanner could not check this thumbnail', 503);
  }

  async #verdictOf(record: Pick<MediaRecord, 'blobId' | 'size' | 'serverName' | 'mediaId'>): Promise<{ kind: 'clean' | 'oversize' | 'failed' } | { kind: 'infected'; signature: string }> {
    const size = record.size ?? 0;
    if (size > this.#maxBytes) return { kind: 'oversize' };
    const signal = AbortSignal.any([this.#closing.signal, AbortSignal.timeout(this.#timeoutMs)]);
    try {
      const bytes = await this.#catalog.blobs.open(record.blobId!, { signal });
      if (bytes === null) throw new Error(`blob ${record.blobId} of the media is missing`);
      let verdict: ScanVerdict;
      try {
        verdict = await this.#scanner.scan({ bytes, size, signal });
      } finally {
        // A scanner that failed before reading (clamd unreachable) leaves the stream unread: release its file.
        if (!bytes.locked) await bytes.cancel().catch(() => undefined);
      }
      return verdict.verdict === 'clean' ? { kind: 'clean' } : { kind: 'infected', signature: verdict.signature };
    } catch (err) {
      if (this.#scanner.isSizeLimitError?.(err) === true) return { kind: 'oversize' };
      this.#catalog.logger.warn({ err, serverName: record.serverName, mediaId: record.mediaId }, 'virus scan failed');
      return { kind: 'failed' };
    }
  }

  #emitClean(record: MediaRecord): void {
    for (const listener of this.#cleanListeners) {
      try {
        listener(record);
      } catch (err) {
        this.#catalog.logger.error({ err, mediaId: record.mediaId }, 'media-clean listener failed');
      }
    }
  }

  /** Quarantines infected media: flag, blocked hash (the same bytes are never stored again) and the audit entry. */
  async #quarantine(record: MediaRecord, signature: string): Promise<void> {
    const reason = `virus scan: ${signature}`;
    const target = formatMxcUri(record.serverName, record.mediaId);
    await this.#catalog.setQuarantined(record.serverName, record.mediaId, true);
    const at = this.#catalog.clock.now();
    if (record.sha256 !== null && record.protected !== true) {
      await this.#catalog.blockedHashes?.block({ sha256: record.sha256, reason, blockedBy: SCANNER_ACTOR, blockedAt: at });
    }
    try {
      await this.#audit?.recordAdminAction({ action: 'quarantine', actor: SCANNER_ACTOR, target, reason, at });
    } catch (err) {
      this.#catalog.logger.error({ err, target }, 'quarantine by the virus scan not recorded in the audit log');
    }
    this.#catalog.logger.warn({ serverName: record.serverName, mediaId: record.mediaId, signature }, 'infected media quarantined');
  }
}
