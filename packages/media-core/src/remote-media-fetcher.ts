import { ContentTooLargeError, errors, type MatrixError } from '@hsmedia/errors';
import { raceAbort, signalOf, type SignalSource } from '@hsmedia/runtime';
import { DEFAULT_CONTENT_TYPE, normaliseUploadContentType, normaliseUploadFilename, parseContentDisposition } from './content-headers.js';
import { WeightedLru } from './internal/weighted-lru.js';
import { LiveMediaHandle } from './live-media-handle.js';
import { newMediaRecord } from './media-record.js';
import type { MediaCatalog } from './media-catalog.js';
import type { MediaRecord, RemoteMediaSource } from './ports/index.js';
import { logRemoteFailure, remoteFailureToMatrixError } from './remote-errors.js';
import type { DeploymentFetchLock } from './remote-fetch-lock.js';
import { RemoteTee } from './remote-tee.js';
import type { TimeoutPolicy } from './timeout-policy.js';

/** Options of a {@link RemoteMediaFetcher}. */
export interface RemoteMediaFetcherOptions {
  readonly catalog: MediaCatalog;
  readonly remote: RemoteMediaSource;
  /** Largest remote media fetched and cached, in bytes. */
  readonly maxBytes: number;
  /** How long a failure is remembered per `(server, media ID)`, in ms; 0 disables. */
  readonly failureTtlMs: number;
  /** Media cached while the legacy endpoints are frozen is authenticated-only (see `MediaService`). */
  readonly freezeLegacy: boolean;
  readonly timeouts: TimeoutPolicy;
  /** One fetch per deployment (processes sharing a database); none: one per process. */
  readonly deploymentLock?: DeploymentFetchLock | undefined;
}

/** What one caller of {@link RemoteMediaFetcher.fetch} asks. */
export interface RemoteFetchOptions {
  readonly timeoutMs?: number | undefined;
  /** The request arrived on a deprecated unauthenticated endpoint (the remote's legacy endpoint may be used directly). */
  readonly legacy?: boolean | undefined;
  /** Accept the live stream when this caller is the first (default true). */
  readonly allowLive?: boolean | undefined;
  readonly signal?: SignalSource | undefined;
}

/** An in-flight fetch of one remote media item, shared by every caller. */
interface RemoteFetch {
  /** The stored record; rejects with the `MatrixError` callers get. */
  readonly committed: Promise<MediaRecord>;
  /** The first caller's live view once enough bytes arrived; null when the body was complete (or failed) sooner. */
  readonly started: Promise<LiveRemote | null>;
  claimed: boolean;
}

/** The live side of a remote fetch. */
interface LiveRemote {
  readonly record: MediaRecord;
  readonly contentLength: number | null;
  readonly tee: RemoteTee;
}

/** A remote body goes live for its first caller only after this many bytes: shorter ones fail or succeed cleanly. */
const LIVE_WINDOW_BYTES = 64 * 1024;
/** Unread bytes queued for the live reader before the remote read waits for it. */
const LIVE_BUFFER_BYTES = 1024 * 1024;
/** Bytes read ahead of the blob writer, so the disk and the network work at the same time. */
const STORE_BUFFER_BYTES = 1024 * 1024;

/**
 * Fetches other servers' media into the catalog, once however many callers
 * ask (single flight per `(server, media ID)`). The first caller gets the
 * bytes live as they arrive (a `RemoteTee` also writes them to a staging
 * blob); the others wait for the blob to be stored and read it. The blob is
 * admitted and published only when complete and within `maxBytes`; a
 * failure caches nothing and is remembered for `failureTtlMs`.
 */
export class RemoteMediaFetcher {
  readonly #catalog: MediaCatalog;
  readonly #remote: RemoteMediaSource;
  readonly #maxBytes: number;
  readonly #failureTtlMs: number;
  readonly #freezeLegacy: boolean;
  readonly #timeouts: TimeoutPolicy;
  readonly #lock: DeploymentFetchLock | undefined;
  readonly #inFlight = new Map<string, RemoteFetch>();
  readonly #failures: WeightedLru<string, MatrixError>;
  /** Aborts every fetch on close. */
  readonly #shutdown = new AbortController();

  constructor(options: RemoteMediaFetcherOptions) {
    this.#catalog = options.catalog;
    this.#remote = options.remote;
    this.#maxBytes = options.maxBytes;
    this.#failureTtlMs = options.failureTtlMs;
    this.#freezeLegacy = options.freezeLegacy;
    this.#timeouts = options.timeouts;
    this.#lock = options.deploymentLock;
    this.#failures = new WeightedLru(options.failureTtlMs === 0 ? 0 : 10_000);
  }

  /** The stored record, or a live handle for the first caller; rejects with the client's `MatrixError`. */
  async fetch(serverName: string, mediaId: string, options: RemoteFetchOptions): Promise<MediaRecord | LiveMediaHandle> {
    const key = `${serverName}/${mediaId}`;
    let fetch = this.#inFlight.get(key);
    if (!fetch) {
      const remembered = this.#failures.get(key, this.#catalog.clock.now());
      if (remembered !== undefined) throw remembered;
      fetch = this.#start(serverName, mediaId, this.#timeouts.fetchMs(options.timeoutMs), options.legacy === true);
      this.#inFlight.set(key, fetch);
      const forget = (): void => void this.#inFlight.delete(key);
      fetch.committed.then(forget, forget);
    }
    const signal = signalOf(options.signal);
    if (!fetch.claimed && options.allowLive !== false) {
      fetch.claimed = true;
      const started = fetch.started;
      if (signal !== undefined) {
        // This caller left before it could read: the live reader must not hold the fetch back.
        signal.addEventListener('abort', () => void started.then((live) => live?.tee.detach(signal.reason), () => undefined), {
          once: true,
        });
      }
      const live = await raceAbort(started, signal);
      if (live !== null) return new LiveMediaHandle(live.record, live.contentLength, live.tee, signal);
    }
    // The fetch is shared, so one caller leaving must not cancel it for the others.
    return raceAbort(fetch.committed, signal);
  }

  /** Aborts every fetch and waits for them to settle. */
  async close(): Promise<void> {
    this.#shutdown.abort(new Error('MediaService closed'));
    await Promise.allSettled([...this.#inFlight.values()].map((fetch) => fetch.committed));
    this.#failures.clear();
  }

  #start(serverName: string, mediaId: string, timeoutMs: number, legacyOnly: boolean): RemoteFetch {
    let settleStarted!: (live: LiveRemote | null) => void;
    let failStarted!: (error: unknown) => void;
    const started = new Promise<LiveRemote | null>((resolve, reject) => {
      settleStarted = resolve;
      failStarted = reject;
    });
    started.catch(() => undefined);
    const committed = (async (): Promise<MediaRecord> => {
      try {
        const run = (): Promise<MediaRecord> => this.#run(serverName, mediaId, timeoutMs, legacyOnly, settleStarted);
        if (this.#lock === undefined) return await run();
        return await this.#lock.once(`remote-fetch:${serverName}/${mediaId}`, {
          fetch: run,
          stored: () => this.#storedElsewhere(serverName, mediaId),
          deadline: this.#catalog.clock.now() + timeoutMs,
          signal: this.#shutdown.signal,
        });
      } catch (err) {
        logRemoteFailure(err, this.#catalog.logger, { serverName, mediaId });
        const mapped = remoteFailureToMatrixError(err);
        failStarted(mapped);
        if (!this.#shutdown.signal.aborted && this.#failureTtlMs > 0) {
          this.#failures.set(`${serverName}/${mediaId}`, mapped, 1, this.#catalog.clock.now() + this.#failureTtlMs);
        }
        throw mapped;
      } finally {
        // The body ended before going live: the first caller reads the stored blob like everyone else.
        settleStarted(null);
      }
    })();
    // The first caller may be streaming live and never await this.
    committed.catch(() => undefined);
    return { committed, started, claimed: false };
  }

  /** The complete record another process stored, or null. */
  async #storedElsewhere(serverName: string, mediaId: string): Promise<MediaRecord | null> {
    const record = await this.#catalog.load(serverName, mediaId);
    return record !== null && record.blobId !== null ? record : null;
  }

  async #run(serverName: string, mediaId: string, timeoutMs: number, legacyOnly: boolean, goLive: (live: LiveRemote) => void): Promise<MediaRecord> {
    const catalog = this.#catalog;
    const maxBytes = this.#maxBytes;
    const signal = this.#shutdown.signal;
    const media = await this.#remote.fetchMedia({ serverName, mediaId, maxBytes, timeoutMs, signal, ...(legacyOnly ? { legacyOnly: true } : {}) });
    if (media.contentLength !== null && media.contentLength > maxBytes) {
      await media.body.cancel().catch(() => undefined);
      throw new ContentTooLargeError(maxBytes);
    }
    const contentType = normaliseUploadContentType(media.contentType ?? undefined) ?? DEFAULT_CONTENT_TYPE;
    const disposition = media.contentDisposition ? parseContentDisposition(media.contentDisposition) : null;
    const now = catalog.clock.now();
    const pendingRecord = newMediaRecord({
      serverName,
      mediaId,
      contentType,
      uploadName: normaliseUploadFilename(disposition?.filename ?? undefined) ?? null,
      size: media.contentLength,
      createdAt: now,
      // Remote media cached while frozen counts as new (spec v1.11, "Content repository": the freeze).
      authenticated: this.#freezeLegacy,
      lastAccessAt: now,
    });
    const tee: RemoteTee = new RemoteTee(media.body, {
      maxBytes,
      declaredLength: media.contentLength,
      liveBufferBytes: LIVE_BUFFER_BYTES,
      storeBufferBytes: STORE_BUFFER_BYTES,
      windowBytes: LIVE_WINDOW_BYTES,
      onWindow: () => goLive({ record: pendingRecord, contentLength: media.contentLength, tee }),
    });
    let stored;
    try {
      stored = await catalog.blobs.put(tee.source(), { maxBytes, signal, offloadHashing: true });
    } catch (err) {
      // The live reader must see a failure, not a clean end: its response is aborted. The
      // remote body is cancelled even when the store failed before reading any of it.
      tee.cancel(remoteFailureToMatrixError(err));
      throw err;
    }
    tee.close();
    const stateOnArrival = catalog.newScanState === undefined ? {} : { scanState: catalog.newScanState };
    const record: MediaRecord = { ...pendingRecord, blobId: stored.blobId, size: stored.size, sha256: stored.sha256, uploadedAt: catalog.clock.now(), ...stateOnArrival };
    try {
      await catalog.admit({ kind: 'remote', serverName, mediaId, blobId: stored.blobId, size: stored.size, sha256: stored.sha256, contentType, userId: null }, signal);
      if (await catalog.publish(record)) return record;
      // Another instance cached it first: use theirs.
      await catalog.discardBlob(stored.blobId);
      const theirs = await catalog.load(serverName, mediaId);
      if (theirs === null) throw errors.notFound('Media not found');
      return theirs;
    } catch (err) {
      await catalog.discardBlob(stored.blobId);
      throw err;
    }
  }
}
