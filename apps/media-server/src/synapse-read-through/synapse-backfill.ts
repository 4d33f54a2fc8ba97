/**
 * The background half of read-through: everything of Synapse's media that no
 * request asked for is imported at a set rate, in Synapse's stable order,
 * with the cursor saved in hsmedia's database (`ImportCursors`) so a restart,
 * or another instance, resumes where the last one stopped. One process of a
 * deployment runs it at a time (a `JobLeases` lease when the store has them).
 */
import type { ImportCursors, JobLeases, MediaImports } from '@hsmedia/media-core';
import type { Clock, Logger } from '@hsmedia/runtime';
import { cursorAfter, type SynapseMediaSource } from '@hsmedia/synapse-import';
import type { ProblemLog } from './synapse-read-through.js';
import { ItemImportFailure, importSynapseItem, type SynapseConnection } from './synapse-item-import.js';

/** The name of the cursor and of the lease. */
export const BACKFILL_NAME = 'synapse-read-through-backfill';

/** What is saved after each item (JSON in `ImportCursors`). */
export interface BackfillState {
  /** Resume after this item; null: from the start. */
  readonly cursor: string | null;
  readonly imported: number;
  /** Already here (imported on first access, or by an earlier run). */
  readonly present: number;
  readonly failed: number;
  readonly done: boolean;
}

/** Progress as the admin API reports it. */
export interface BackfillProgress extends BackfillState {
  readonly enabled: boolean;
  /** Whether this process runs the job now. */
  readonly running: boolean;
  /** Items in Synapse's media tables (local and cached remote), as counted when the job started. */
  readonly total: number | null;
  readonly remaining: number | null;
  /** The configured rate and the rate measured since this process started the job (items/s). */
  readonly filesPerSecond: number;
  readonly measuredPerSecond: number | null;
}

/** Options of {@link SynapseBackfill}. */
export interface SynapseBackfillOptions {
  readonly connection: SynapseConnection;
  readonly imports: MediaImports;
  readonly serverName: string;
  readonly cursors: ImportCursors | undefined;
  readonly leases: JobLeases | undefined;
  readonly filesPerSecond: number;
  readonly problems: ProblemLog;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Wait after a failure of Synapse's database before trying again, in ms. Default 5000. */
  readonly retryMs?: number;
}

const INITIAL_STATE: BackfillState = { cursor: null, imported: 0, present: 0, failed: 0, done: false };
const PAGE = 100;
const LEASE_TTL_MS = 60_000;

function parseState(text: string | null): BackfillState {
  if (text === null) return INITIAL_STATE;
  try {
    const value = JSON.parse(text) as Partial<BackfillState>;
    const count = (n: unknown): number => (Number.isSafeInteger(n) && (n as number) >= 0 ? (n as number) : 0);
    return {
      cursor: typeof value.cursor === 'string' ? value.cursor : null,
      imported: count(value.imported),
      present: count(value.present),
      failed: count(value.failed),
      done: value.done === true,
    };
  } catch {
    return INITIAL_STATE;
  }
}

/** Sleeps `ms`, or less when `signal` aborts (never rejects). */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Runs the backfill until every item is done, then stops (nothing is left to
 * poll: new media lands in hsmedia once the routes moved). A failing Synapse
 * database pauses it (`retryMs`) and it resumes from the saved cursor; an item
 * that cannot be imported is counted, reported and skipped.
 */
export class SynapseBackfill {
  readonly #options: SynapseBackfillOptions;
  readonly #holder = `backfill-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  readonly #stop = new AbortController();
  #state: BackfillState = INITIAL_STATE;
  #total: number | null = null;
  #running = false;
  #loop: Promise<void> | undefined;
  #startedAt = 0;
  #processedHere = 0;
  readonly #doneListeners = new Set<() => void>();

  constructor(options: SynapseBackfillOptions) {
    this.#options = options;
  }

  /** Starts the job in the background (idempotent). */
  start(): void {
    this.#loop ??= this.#run()
      .catch((err: unknown) => {
        // Stopping aborts the item in progress (the sink keeps nothing of it): not a failure.
        if (!this.#stop.signal.aborted) this.#options.logger.error({ err }, 'the Synapse backfill stopped');
      })
      .finally(async () => {
        this.#running = false;
        // The next process takes over at once instead of waiting for the lease to run out.
        await this.#options.leases?.releaseLease(BACKFILL_NAME, this.#holder).catch(() => false);
      });
  }

  /** Resolves once the backfill has gone through every item (for tests and scripts). */
  whenDone(): Promise<void> {
    if (this.#state.done) return Promise.resolve();
    return new Promise((resolve) => this.#doneListeners.add(resolve));
  }

  /** The progress: this process's when it runs the job, else the state another process saved. */
  async progress(enabled: boolean): Promise<BackfillProgress> {
    const state = this.#running || this.#options.cursors === undefined ? this.#state : parseState(await this.#options.cursors.readImportCursor(BACKFILL_NAME));
    const processed = state.imported + state.present + state.failed;
    const seconds = (this.#options.clock.now() - this.#startedAt) / 1000;
    return {
      ...state,
      enabled,
      running: this.#running,
      total: this.#total,
      remaining: state.done ? 0 : this.#total === null ? null : Math.max(0, this.#total - processed),
      filesPerSecond: this.#options.filesPerSecond,
      measuredPerSecond: this.#running && seconds > 0 ? Math.round((this.#processedHere / seconds) * 100) / 100 : null,
    };
  }

  /** Stops the job: the item in progress is abandoned (nothing of it kept) and done again by the next run. */
  async close(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const { connection, cursors, leases, logger } = this.#options;
    const signal = this.#stop.signal;
    const retryMs = this.#options.retryMs ?? 5000;
    while (!signal.aborted) {
      if (leases !== undefined && !(await leases.tryAcquireLease(BACKFILL_NAME, this.#holder, LEASE_TTL_MS).catch(() => false))) {
        // Another process runs it; take over if it stops renewing.
        this.#running = false;
        await pause(LEASE_TTL_MS / 2, signal);
        continue;
      }
      try {
        this.#state = parseState((await cursors?.readImportCursor(BACKFILL_NAME)) ?? null);
      } catch (err) {
        // Never start over because hsmedia's own database hiccuped: wait for the saved cursor.
        logger.warn({ err }, 'the Synapse backfill cannot read its cursor; retrying');
        await pause(retryMs, signal);
        continue;
      }
      if (this.#state.done) {
        this.#finish();
        return;
      }
      this.#running = true;
      this.#startedAt = this.#options.clock.now();
      this.#processedHere = 0;
      try {
        await connection.use(async (source) => {
          this.#total = await countItems(source);
          await this.#pages(source, signal);
        });
      } catch (err) {
        if (!(err instanceof ItemImportFailure)) throw err;
        // The database went away: wait, then resume from the saved cursor.
        logger.warn({ problem: err.message }, 'the Synapse backfill pauses: Synapse cannot be read');
        await pause(retryMs, signal);
        continue;
      }
      if (this.#state.done) {
        logger.info({ imported: this.#state.imported, present: this.#state.present, failed: this.#state.failed }, 'the Synapse backfill is complete');
        this.#finish();
        return;
      }
    }
  }

  #finish(): void {
    this.#running = false;
    for (const listener of this.#doneListeners) listener();
    this.#doneListeners.clear();
  }

  async #pages(source: SynapseMediaSource, signal: AbortSignal): Promise<void> {
    const { imports, serverName, clock, leases, problems, logger } = this.#options;
    const interval = 1000 / this.#options.filesPerSecond;
    let next = this.#state.cursor;
    let lastRenewal = clock.now();
    for (;;) {
      const page = await source.page(next, PAGE);
      if (page.items.length === 0) break;
      for (const item of page.items) {
        if (signal.aborted) return;
        const started = clock.now();
        const where = { serverName: item.origin ?? serverName, mediaId: item.mediaId };
        let { imported, present, failed } = this.#state;
        try {
          const result = await importSynapseItem(source, imports, item, serverName, clock.now(), signal);
          if (result.outcome === 'imported') imported++;
          else present++;
          for (const problem of result.thumbnailProblems) problems.add({ ...where, code: 'thumbnail', message: problem, at: clock.now() });
        } catch (err) {
          if (!(err instanceof ItemImportFailure) || err.code === 'source-unavailable') throw err;
          failed++;
          problems.add({ ...where, code: err.code, message: err.message, at: clock.now() });
          logger.warn({ server_name: where.serverName, media_id: where.mediaId, code: err.code, problem: err.message }, 'the Synapse backfill skips an item it cannot import');
        }
        next = cursorAfter(item);
        await this.#save({ cursor: next, imported, present, failed, done: false });
        this.#processedHere++;
        if (leases !== undefined && clock.now() - lastRenewal > LEASE_TTL_MS / 3) {
          lastRenewal = clock.now();
          await leases.tryAcquireLease(BACKFILL_NAME, this.#holder, LEASE_TTL_MS);
        }
        await pause(Math.max(0, interval - (clock.now() - started)), signal);
      }
      if (page.next === null) break;
    }
    if (!signal.aborted) await this.#save({ ...this.#state, done: true });
  }

  async #save(state: BackfillState): Promise<void> {
    this.#state = state;
    await this.#options.cursors?.writeImportCursor(BACKFILL_NAME, JSON.stringify(state));
  }
}

async function countItems(source: SynapseMediaSource): Promise<number> {
  const stats = await source.stats();
  return stats.local.count + stats.remote.count;
}
