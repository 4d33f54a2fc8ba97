/**
 * Read-through from Synapse's media repository (issue 24, "switch with no
 * downtime"): media-core's `LocalMediaFallback`, asked for a local media ID
 * hsmedia does not know. The item is looked up in Synapse's database, imported
 * with its thumbnails, and then served from hsmedia's own stores, so once the
 * routes move from Synapse to hsmedia nothing Synapse would have served is 404.
 */
import { errors } from '@hsmedia/errors';
import type { JobLeases, LocalMediaFallback, MediaImports } from '@hsmedia/media-core';
import type { Clock, Logger } from '@hsmedia/runtime';
import { ItemImportFailure, importSynapseItem, type ItemFailureCode, type SynapseConnection } from './synapse-item-import.js';

/** An item that could not be brought in, as the admin API reports it. */
export interface ImportProblem {
  readonly serverName: string;
  readonly mediaId: string;
  readonly code: ItemFailureCode | 'thumbnail';
  readonly message: string;
  readonly at: number;
}

/** Recent problems, newest last, bounded (the counters keep the totals). */
export class ProblemLog {
  readonly #max: number;
  readonly #entries: ImportProblem[] = [];
  constructor(max = 100) {
    this.#max = max;
  }
  add(problem: ImportProblem): void {
    this.#entries.push(problem);
    if (this.#entries.length > this.#max) this.#entries.shift();
  }
  list(): readonly ImportProblem[] {
    return [...this.#entries];
  }
}

/** Options of {@link SynapseReadThrough}. */
export interface SynapseReadThroughOptions {
  readonly connection: SynapseConnection;
  readonly imports: MediaImports;
  readonly serverName: string;
  readonly problems: ProblemLog;
  readonly clock: Clock;
  readonly logger: Logger;
  /**
   * Leases shared by the processes of a deployment: with them one process
   * imports a given ID and the others wait for its record (up to
   * `waitForOtherMs`, then import it themselves, harmlessly: the sink is idempotent).
   */
  readonly leases?: JobLeases | undefined;
  /** How long to wait for another process's import of the same ID, in ms. Default 30 000. */
  readonly waitForOtherMs?: number;
}

/** A first-access import holds its lease this long at most (a crashed holder frees it by then). */
const IMPORT_LEASE_MS = 120_000;
const OTHER_IMPORT_POLL_MS = 100;

/** Counters of the first-access imports of this process. */
export interface ReadThroughCounts {
  readonly imported: number;
  readonly notInSynapse: number;
  readonly failed: number;
}

/**
 * The `LocalMediaFallback` on Synapse. One import per media ID at a time in
 * this process (concurrent requests share it) and, with `leases`, in the
 * deployment (the other processes wait for the record). Without leases,
 * several processes importing one ID at once is harmless, only wasted reads:
 * the sink is idempotent (one insert wins, the other's bytes are dropped).
 *
 * Answers: true when the item is here now; false when Synapse does not know
 * it either (404 as before); a `MatrixError` otherwise: 503 `M_UNKNOWN` when
 * Synapse's database or media store is unavailable (it is asked again on the
 * next request), 404 with the reason when its file is missing or unsafe, 502
 * when the file does not match its row (a size still growing, a damaged file).
 */
export class SynapseReadThrough implements LocalMediaFallback {
  readonly #options: SynapseReadThroughOptions;
  readonly #inFlight = new Map<string, Promise<boolean>>();
  readonly #holder = `read-through-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  #imported = 0;
  #notInSynapse = 0;
  #failed = 0;

  constructor(options: SynapseReadThroughOptions) {
    this.#options = options;
  }

  get counts(): ReadThroughCounts {
    return { imported: this.#imported, notInSynapse: this.#notInSynapse, failed: this.#failed };
  }

  bring(mediaId: string): Promise<boolean> {
    // Not the caller's signal: the import goes on for the next caller when this one goes away.
    let running = this.#inFlight.get(mediaId);
    if (running === undefined) {
      running = this.#bring(mediaId).finally(() => this.#inFlight.delete(mediaId));
      this.#inFlight.set(mediaId, running);
    }
    return running;
  }

  async #bring(mediaId: string): Promise<boolean> {
    const { leases, imports, serverName, clock } = this.#options;
    if (leases === undefined) return this.#import(mediaId);
    const lease = `synapse-read-through:${mediaId}`;
    // A store error (or a name too long for it) must not stop the import: without the lease it is only less shared.
    const mine = await leases.tryAcquireLease(lease, this.#holder, IMPORT_LEASE_MS).catch(() => true);
    if (mine) {
      try {
        return await this.#import(mediaId);
      } finally {
        await leases.releaseLease(lease, this.#holder).catch(() => false);
      }
    }
    // Another process imports it now: its record appears when it is done.
    const deadline = clock.now() + (this.#options.waitForOtherMs ?? 30_000);
    while (clock.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, OTHER_IMPORT_POLL_MS));
      if (await imports.has(serverName, mediaId)) return true;
      if (await leases.tryAcquireLease(lease, this.#holder, IMPORT_LEASE_MS).catch(() => false)) {
        // It gave up (a failure: missing file, Synapse away): find out here, for this client's answer.
        try {
          return await this.#import(mediaId);
        } finally {
          await leases.releaseLease(lease, this.#holder).catch(() => false);
        }
      }
    }
    return this.#import(mediaId);
  }

  async #import(mediaId: string): Promise<boolean> {
    const { connection, imports, serverName, clock, logger } = this.#options;
    try {
      return await connection.use(async (source) => {
        const item = await source.localMedia(mediaId);
        if (item === null) {
          this.#notInSynapse++;
          return false;
        }
        const result = await importSynapseItem(source, imports, item, serverName, clock.now());
        if (result.outcome === 'imported') this.#imported++;
        for (const problem of result.thumbnailProblems) this.#report(mediaId, 'thumbnail', problem);
        logger.info({ media_id: mediaId, outcome: result.outcome, thumbnails: result.thumbnailsImported }, 'imported media from Synapse on first access');
        return true;
      });
    } catch (err) {
      if (!(err instanceof ItemImportFailure)) throw err;
      this.#failed++;
      this.#report(mediaId, err.code, err.message);
      throw matrixErrorOf(err);
    }
  }

  #report(mediaId: string, code: ImportProblem['code'], message: string): void {
    const { problems, serverName, clock, logger } = this.#options;
    problems.add({ serverName, mediaId, code, message, at: clock.now() });
    if (code !== 'source-unavailable') logger.warn({ media_id: mediaId, code, problem: message }, 'could not import media from Synapse');
  }
}

function matrixErrorOf(failure: ItemImportFailure): Error {
  switch (failure.code) {
    case 'source-unavailable':
      return errors.unknown("Media not available: Synapse's media repository, which this server is moving in from, cannot be read right now", 503);
    case 'missing-file':
    case 'unsafe-path':
      return errors.notFound("Media not found: its file is missing from Synapse's media store");
    case 'size-mismatch':
    case 'hash-mismatch':
      return errors.unknown("Media not available: its file in Synapse's media store does not match Synapse's record of it", 502);
    default:
      return errors.notFound('Media not found');
  }
}
