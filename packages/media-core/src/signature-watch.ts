import type { Logger } from '@hsmedia/runtime';
import type { JobLeases } from './job-leases.js';
import type { MediaScanStage } from './media-scan-stage.js';
import type { MediaQueries, MediaScanner } from './ports/index.js';

/** Options of {@link SignatureWatch}. */
export interface SignatureWatchOptions {
  readonly scanner: MediaScanner;
  readonly stage: MediaScanStage;
  readonly queries: Pick<MediaQueries, 'listMedia'>;
  /** One rescan across instances sharing the store. */
  readonly leases?: JobLeases | undefined;
  /** How often the scanner's signature version is asked, in ms. */
  readonly pollMs: number;
  /** Rescans per second at most, so an update does not starve new uploads. */
  readonly rescansPerSecond: number;
  readonly logger: Logger;
  /** Called with each item rescanned (metrics, tests). */
  readonly onRescan?: ((serverName: string, mediaId: string) => void) | undefined;
}

const PAGE = 100;
const RESCAN_LEASE = 'scan:rescan-after-update';

/**
 * Rescans clean media when the scanner's signatures change (clamd's
 * `VERSION` answer): media that was clean under old signatures may be
 * known-bad under new ones. The first answer is the baseline; each change
 * starts one rescan of every clean item, at most `rescansPerSecond`, by one
 * instance at a time (a lease renewed per page).
 */
export class SignatureWatch {
  readonly #options: SignatureWatchOptions;
  readonly #timer: ReturnType<typeof setInterval> | undefined;
  readonly #stop = new AbortController();
  #version: string | undefined;
  #rescan: Promise<number> | undefined;
  #pendingChange = false;
  readonly #holder = `rescan-${process.pid}-${Math.random().toString(36).slice(2)}`;

  constructor(options: SignatureWatchOptions) {
    this.#options = options;
    if (options.scanner.signatureVersion !== undefined && options.pollMs > 0) {
      this.#timer = setInterval(() => void this.check(), options.pollMs);
      this.#timer.unref();
      void this.check();
    }
  }

  /** The rescan running now, if any (tests wait for it). */
  get rescanning(): Promise<number> | undefined {
    return this.#rescan;
  }

  /** Asks the version once; a change starts a rescan (or queues one behind the running one). */
  async check(): Promise<void> {
    const ask = this.#options.scanner.signatureVersion;
    if (ask === undefined || this.#stop.signal.aborted) return;
    let version: string;
    try {
      version = await ask.call(this.#options.scanner, AbortSignal.any([this.#stop.signal, AbortSignal.timeout(30_000)]));
    } catch (err) {
      this.#options.logger.debug({ err }, 'could not read the scanner signature version');
      return;
    }
    const previous = this.#version;
    this.#version = version;
    if (previous === undefined || previous === version) return;
    this.#options.logger.info({ previous, version }, 'scanner signatures changed: rescanning clean media');
    this.#pendingChange = true;
    this.#rescan ??= this.#rescanAll().finally(() => (this.#rescan = undefined));
  }

  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#stop.abort();
  }

  async #rescanAll(): Promise<number> {
    const { queries, stage, leases, rescansPerSecond } = this.#options;
    let total = 0;
    while (this.#pendingChange && !this.#stop.signal.aborted) {
      this.#pendingChange = false;
      const gapMs = Math.ceil(1000 / Math.max(1, rescansPerSecond));
      for (let offset = 0; !this.#stop.signal.aborted; offset += PAGE) {
        if (leases !== undefined && !(await leases.tryAcquireLease(RESCAN_LEASE, this.#holder, 10 * 60_000))) {
          this.#options.logger.info({ lease: RESCAN_LEASE }, 'another instance is rescanning after the signature update');
          return total;
        }
        const page = await queries.listMedia({ scanState: 'clean' }, { orderBy: 'created_at', limit: PAGE, offset });
        for (const record of page) {
          if (this.#stop.signal.aborted) break;
          const started = performance.now();
          await stage.scanNow(record.serverName, record.mediaId, true).catch((err: unknown) => this.#options.logger.warn({ err, mediaId: record.mediaId }, 'rescan failed'));
          this.#options.onRescan?.(record.serverName, record.mediaId);
          total++;
          const wait = gapMs - (performance.now() - started);
          if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        }
        if (page.length < PAGE) break;
      }
    }
    if (leases !== undefined) await leases.releaseLease(RESCAN_LEASE, this.#holder).catch(() => false);
    return total;
  }
}
