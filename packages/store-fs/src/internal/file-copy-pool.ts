/**
 * Adopts local files into the blob tree on a small pool of worker threads:
 * one message per batch of queued files, and the worker does the whole
 * file-system part of each with synchronous calls (resolve and check the source path, open or hard-link
 * it, read → count → SHA-256 → write into the staging file, fsync if asked,
 * create the shard directory, rename into place). For bulk imports: done on
 * the caller's thread, each of those steps is a thread-pool round trip and
 * two thread wake-ups, and at ten or more per file those hand-offs, not the
 * bytes, bounded the import (docs/migrate-from-synapse.md "Speed").
 *
 * The caller chooses every path of the store (jail-checked there) and owns
 * the staging name; the worker only checks the source against `within`.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { ContentTooLargeError } from '@hsmedia/errors';
import { SourceFileError } from '@hsmedia/media-core';

/** One file to adopt. */
export interface AdoptJob {
  /** `copy`: read it and write a new file; `link`: hard-link it, then read it to hash. */
  readonly mode: 'copy' | 'link';
  readonly source: string;
  /** A real directory the source must resolve inside (symlinks followed); null: no check. */
  readonly within: string | null;
  /** Staging file to create (must not exist); its directory exists. */
  readonly staging: string;
  /** Where the staging file is renamed to, and its directory (created when missing). */
  readonly target: string;
  readonly targetDir: string;
  readonly maxBytes: number;
  /** fsync the file before the rename. */
  readonly sync: boolean;
  /** Keep the renamed file open and hand its descriptor back (for a later, batched fsync). */
  readonly keepOpen: boolean;
}

/** What an adopted file became. */
export type AdoptResult =
  /** `fd`: the open file when `keepOpen`, else -1; `made`: the outermost directory the rename needed made, or null. */
  | { readonly adopted: true; readonly size: number; readonly sha256: string; readonly fd: number; readonly made: string | null }
  /** `link` only: the file cannot be linked here (another filesystem, no permission); nothing was made. */
  | { readonly adopted: false };

interface Envelope extends AdoptJob {
  readonly id: number;
  readonly limit: number;
}

type Reply =
  | { readonly id: number; readonly ok: true; readonly size: number; readonly sha256: string; readonly fd: number; readonly made: string | null }
  | { readonly id: number; readonly ok: true; readonly unavailable: true }
  | {
      readonly id: number;
      readonly ok: false;
      readonly kind: 'too-large' | 'stopped' | 'error';
      readonly message?: string;
      readonly code?: string;
      /** Set when the source is at fault: how to report it. */
      readonly source?: 'missing' | 'outside' | 'unreadable';
    };

// CommonJS script (eval workers are not modules). Error codes that mean "cannot link here" (copy instead):
// another filesystem, no permission, unsupported, too many links.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
// stops[slot] is set to 1 to stop the job in that slot of the current batch (checked between reads).
const stops = new Int32Array(workerData);
const fs = require('node:fs');
const { sep } = require('node:path');
const { createHash } = require('node:crypto');
const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
const LINK_UNAVAILABLE = new Set(['EXDEV', 'EPERM', 'EACCES', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK']);
const MISSING = new Set(['ENOENT', 'ENOTDIR', 'ELOOP', 'ENOTFILE']);
const buffer = Buffer.allocUnsafeSlow(1024 * 1024);
// Shard directories this thread made or found: most files land in one that exists.
const knownDirs = new Set();
class Stop extends Error {}
class TooLarge extends Error {}
function blame(error) {
  if (error && typeof error === 'object' && !error.source) error.source = MISSING.has(error.code) ? 'missing' : 'unreadable';
  return error;
}
function notAFile() {
  return Object.assign(new Error('not a regular file'), { code: 'ENOTFILE' });
}
/** The outermost directory made, or null when it existed. */
function ensureDir(dir) {
  if (knownDirs.has(dir)) return null;
  const made = fs.mkdirSync(dir, { recursive: true }) ?? null;
  knownDirs.add(dir);
  return made;
}
/** Reads 'from' to its end: counts, hashes and, unless 'to' is -1, appends to 'to'. */
function pump(from, to, job, slot) {
  const hash = createHash('sha256');
  let size = 0;
  for (;;) {
    if (Atomics.load(stops, slot) !== 0) throw new Stop();
    let n;
    try { n = fs.readSync(from, buffer, 0, buffer.length, null); } catch (error) { throw blame(error); }
    if (n === 0) break;
    size += n;
    if (job.limit >= 0 && size > job.limit) throw new TooLarge();
    const chunk = buffer.subarray(0, n);
    hash.update(chunk);
    for (let written = 0; to >= 0 && written < n; ) {
      const w = fs.writeSync(to, chunk, written, n - written);
      if (w === 0) throw new Error('the file accepted no bytes');
      written += w;
    }
  }
  return { size, sha256: hash.digest('hex') };
}
function adopt(job, slot) {
  let source = job.source;
  if (job.within !== null) {
    try { source = fs.realpathSync.native(job.source); } catch (error) { throw blame(error); }
    if (!source.startsWith(job.within + sep)) throw Object.assign(new Error('resolves outside ' + job.within), { source: 'outside' });
  }
  let from = -1;
  let to = -1;
  let created = false;
  try {
    let copied;
    if (job.mode === 'link') {
      try { fs.linkSync(source, job.staging); } catch (error) {
        if (LINK_UNAVAILABLE.has(error.code)) return null;
        throw blame(error);
      }
      created = true;
      // link(2) does not follow a symlink: a linked symlink fails here (ELOOP).
      try { to = fs.openSync(job.staging, O_RDONLY | O_NOFOLLOW); } catch (error) { throw blame(error); }
      if (!fs.fstatSync(to).isFile()) throw blame(notAFile());
      copied = pump(to, -1, job, slot);
    } else {
      // O_NOFOLLOW: a symlink swapped in after the check is not followed; O_NONBLOCK: a FIFO cannot hang the open.
      try { from = fs.openSync(source, O_RDONLY | O_NOFOLLOW | O_NONBLOCK); } catch (error) { throw blame(error); }
      if (!fs.fstatSync(from).isFile()) throw blame(notAFile());
      to = fs.openSync(job.staging, O_WRONLY | O_CREAT | O_EXCL, 0o666);
      created = true;
      copied = pump(from, to, job, slot);
      fs.closeSync(from);
      from = -1;
    }
    if (job.sync) fs.fsyncSync(to);
    let made = ensureDir(job.targetDir);
    try {
      fs.renameSync(job.staging, job.target);
    } catch (error) {
      if (error.code !== 'ENOENT') throw error;
      // The shard directory went away since it was known: make it again, once.
      knownDirs.delete(job.targetDir);
      made = ensureDir(job.targetDir) ?? made;
      fs.renameSync(job.staging, job.target);
    }
    created = false;
    if (!job.keepOpen) {
      fs.closeSync(to);
      to = -1;
    }
    return { ...copied, fd: to, made };
  } catch (error) {
    if (to >= 0) fs.closeSync(to);
    if (created) try { fs.unlinkSync(job.staging); } catch {}
    throw error;
  } finally {
    if (from >= 0) fs.closeSync(from);
  }
}
// A batch of jobs per message, one answer per batch: a thread hand-off costs more than a small file.
parentPort.on('message', (jobs) => {
  const replies = jobs.map((job, slot) => {
    try {
      const done = adopt(job, slot);
      return done === null ? { id: job.id, ok: true, unavailable: true } : { id: job.id, ok: true, ...done };
    } catch (error) {
      const kind = error instanceof Stop ? 'stopped' : error instanceof TooLarge ? 'too-large' : 'error';
      return { id: job.id, ok: false, kind, message: String(error && error.message), code: error && error.code, source: error && error.source };
    }
  });
  parentPort.postMessage(replies);
});
`;

/**
 * Workers in the pool: the caller's thread only posts a message per batch,
 * so every core gets a worker (at least two, at most four: past that the
 * disk, not the CPU, is the limit).
 */
const POOL_SIZE = Math.max(2, Math.min(4, availableParallelism()));

interface Pending {
  readonly job: Envelope;
  /** The worker running it and its slot in that worker's batch, once dispatched. */
  worker: AdoptWorker | null;
  slot: number;
  resolve(result: AdoptResult): void;
  reject(error: unknown): void;
  abortReason(): unknown;
}

/** Most jobs in one message to a worker. */
const MAX_BATCH = 16;

class AdoptWorker {
  readonly worker: Worker;
  /** One Int32 per slot of the current batch: set to 1 to stop that job between reads; cleared before each batch. */
  readonly stops = new SharedArrayBuffer(4 * MAX_BATCH);
  /** The batch it runs; empty when idle. */
  current: Pending[] = [];

  constructor(onReply: (self: AdoptWorker, replies: Reply[]) => void, onFailure: (self: AdoptWorker, error: unknown) => void) {
    // Descriptors of files kept open are handed to the caller, who closes them: the worker must neither
    // close them when it exits nor warn when the number comes round again.
    this.worker = new Worker(WORKER_SOURCE, { eval: true, trackUnmanagedFds: false, workerData: this.stops });
    this.worker.unref();
    this.worker.on('message', (replies: Reply[]) => onReply(this, replies));
    this.worker.on('error', (error) => onFailure(this, error));
    this.worker.on('exit', (code) => onFailure(this, new Error(`file copy worker exited with code ${code}`)));
  }
}

/** The jobs of the process, queued onto at most {@link POOL_SIZE} workers, which keep it alive only while busy. */
class FileAdoptPool {
  readonly #workers: AdoptWorker[] = [];
  readonly #queue: Pending[] = [];
  #nextId = 1;

  run(job: AdoptJob, signal: AbortSignal | undefined): Promise<AdoptResult> {
    signal?.throwIfAborted();
    const envelope: Envelope = { ...job, id: this.#nextId++, limit: Number.isFinite(job.maxBytes) ? job.maxBytes : -1 };
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        if (pending.worker !== null) Atomics.store(new Int32Array(pending.worker.stops), pending.slot, 1);
        // Still queued: no worker has touched the files, so it can end now.
        const queued = this.#queue.indexOf(pending);
        if (queued >= 0) {
          this.#queue.splice(queued, 1);
          pending.reject(signal!.reason);
        }
      };
      const done = (): void => signal?.removeEventListener('abort', onAbort);
      const pending: Pending = {
        job: envelope,
        worker: null,
        slot: -1,
        resolve: (result) => {
          done();
          resolve(result);
        },
        reject: (error) => {
          done();
          reject(error);
        },
        abortReason: () => signal?.reason,
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#queue.push(pending);
      this.#dispatch();
    });
  }

  #dispatch(): void {
    while (this.#queue.length > 0) {
      let idle = this.#workers.find((w) => w.current.length === 0);
      if (idle === undefined && this.#workers.length < POOL_SIZE) {
        idle = new AdoptWorker(
          (self, replies) => this.#onReplies(self, replies),
          (self, error) => this.#onFailure(self, error),
        );
        this.#workers.push(idle);
      }
      if (idle === undefined) return;
      // A fair share of what waits, so every worker gets some while batches stay large under load.
      const batch = this.#queue.splice(0, Math.min(MAX_BATCH, Math.max(1, Math.floor(this.#queue.length / POOL_SIZE))));
      new Int32Array(idle.stops).fill(0);
      batch.forEach((pending, slot) => {
        pending.worker = idle;
        pending.slot = slot;
      });
      idle.current = batch;
      idle.worker.ref();
      idle.worker.postMessage(batch.map((pending) => pending.job));
    }
  }

  #onReplies(self: AdoptWorker, replies: Reply[]): void {
    const batch = self.current;
    self.current = [];
    self.worker.unref();
    this.#dispatch();
    batch.forEach((pending, slot) => {
      const reply = replies[slot];
      if (reply === undefined || pending.job.id !== reply.id) pending.reject(new Error('FsBlobStore: the copy worker answered out of order'));
      else settle(pending, reply);
    });
  }

  #onFailure(self: AdoptWorker, error: unknown): void {
    const index = this.#workers.indexOf(self);
    if (index < 0) return;
    this.#workers.splice(index, 1);
    const batch = self.current;
    self.current = [];
    for (const pending of batch) pending.reject(error);
    this.#dispatch();
  }
}

function settle(pending: Pending, reply: Reply): void {
  if (reply.ok) pending.resolve('unavailable' in reply ? { adopted: false } : { adopted: true, size: reply.size, sha256: reply.sha256, fd: reply.fd, made: reply.made });
  else if (reply.kind === 'too-large') pending.reject(new ContentTooLargeError(pending.job.maxBytes));
  else if (reply.kind === 'stopped') pending.reject(pending.abortReason());
  else if (reply.source !== undefined) pending.reject(new SourceFileError(reply.source, pending.job.source, `${pending.job.source}: ${reply.message ?? 'cannot read'}`, reply.code));
  else {
    const error = new Error(`FsBlobStore: ${reply.message ?? 'copy failed'}`);
    pending.reject(reply.code === undefined ? error : Object.assign(error, { code: reply.code }));
  }
}

let sharedPool: FileAdoptPool | null = null;

/**
 * Adopts one file on a worker (see the module). Rejects with
 * {@link ContentTooLargeError} past `maxBytes`, with the signal's reason once
 * aborted (the worker stops between reads), with a {@link SourceFileError}
 * when the source is at fault (missing, not a regular file, outside
 * `within`, unreadable), else with the failed call's error (its `code` kept).
 * On any rejection the staging file is gone and nothing was renamed.
 */
export function adoptOnWorker(job: AdoptJob, signal: AbortSignal | undefined): Promise<AdoptResult> {
  sharedPool ??= new FileAdoptPool();
  return sharedPool.run(job, signal);
}
