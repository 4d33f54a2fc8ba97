/**
 * Copies (or only hashes) an open local file on a small pool of worker
 * threads: read → count → SHA-256 → write, with synchronous fs calls and one
 * reused buffer per worker. For bulk imports, where streaming each file
 * through the main thread (stream machinery, a thread-pool round trip per
 * chunk, hashing) made the main thread the bottleneck while other cores
 * idled (docs/migrate-from-synapse.md "Speed").
 *
 * The caller opens and closes both descriptors (path checks and O_NOFOLLOW
 * stay on its thread); a worker only reads, writes and, if asked, fsyncs them.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { ContentTooLargeError } from '@hsmedia/errors';

/** One job: `to` is -1 to hash without writing. `maxBytes` -1 means no limit. */
interface CopyJob {
  readonly id: number;
  readonly from: number;
  readonly to: number;
  readonly maxBytes: number;
  readonly sync: boolean;
  /** Int32Array[0] set to 1 by the caller to stop the job (checked between reads). */
  readonly stop: SharedArrayBuffer;
}

type CopyReply =
  | { readonly id: number; readonly ok: true; readonly size: number; readonly sha256: string }
  | { readonly id: number; readonly ok: false; readonly kind: 'too-large' | 'stopped' | 'error'; readonly message?: string; readonly code?: string; readonly syscall?: string };

// CommonJS script (eval workers are not modules).
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { readSync, writeSync, fsyncSync, fstatSync } = require('node:fs');
const { createHash } = require('node:crypto');
const buffer = Buffer.allocUnsafeSlow(1024 * 1024);
parentPort.on('message', (job) => {
  const { id, from, to, maxBytes, sync } = job;
  const stop = new Int32Array(job.stop);
  try {
    if (!fstatSync(from).isFile()) throw Object.assign(new Error('not a regular file'), { code: 'ENOTFILE' });
    const hash = createHash('sha256');
    let size = 0;
    for (;;) {
      if (Atomics.load(stop, 0) !== 0) { parentPort.postMessage({ id, ok: false, kind: 'stopped' }); return; }
      const n = readSync(from, buffer, 0, buffer.length, null);
      if (n === 0) break;
      size += n;
      if (maxBytes >= 0 && size > maxBytes) { parentPort.postMessage({ id, ok: false, kind: 'too-large' }); return; }
      const chunk = buffer.subarray(0, n);
      hash.update(chunk);
      if (to >= 0) {
        let written = 0;
        while (written < n) {
          const w = writeSync(to, chunk, written, n - written);
          if (w === 0) throw new Error('the file accepted no bytes');
          written += w;
        }
      }
    }
    if (sync && to >= 0) fsyncSync(to);
    parentPort.postMessage({ id, ok: true, size, sha256: hash.digest('hex') });
  } catch (error) {
    parentPort.postMessage({ id, ok: false, kind: 'error', message: String(error && error.message), code: error && error.code, syscall: error && error.syscall });
  }
});
`;

/** Workers in the pool: the main thread keeps one core; two or more cores give at least one worker. */
const POOL_SIZE = Math.max(1, Math.min(4, availableParallelism() - 1));

interface Pending {
  readonly job: CopyJob;
  resolve(result: { size: number; sha256: string }): void;
  reject(error: unknown): void;
  abortReason(): unknown;
}

class CopyWorker {
  readonly worker: Worker;
  current: Pending | null = null;

  constructor(onReply: (self: CopyWorker, reply: CopyReply) => void, onFailure: (self: CopyWorker, error: unknown) => void) {
    this.worker = new Worker(WORKER_SOURCE, { eval: true });
    this.worker.unref();
    this.worker.on('message', (reply: CopyReply) => onReply(this, reply));
    this.worker.on('error', (error) => onFailure(this, error));
    this.worker.on('exit', (code) => onFailure(this, new Error(`file copy worker exited with code ${code}`)));
  }
}

/** The jobs of the process, queued onto at most {@link POOL_SIZE} workers, which keep it alive only while busy. */
class FileCopyPool {
  readonly #workers: CopyWorker[] = [];
  readonly #queue: Pending[] = [];
  #nextId = 1;

  run(from: number, to: number, maxBytes: number, sync: boolean, signal: AbortSignal | undefined): Promise<{ size: number; sha256: string }> {
    signal?.throwIfAborted();
    const stop = new SharedArrayBuffer(4);
    const job: CopyJob = { id: this.#nextId++, from, to, maxBytes: Number.isFinite(maxBytes) ? maxBytes : -1, sync, stop };
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        Atomics.store(new Int32Array(stop), 0, 1);
        // Still queued: no worker holds the descriptors, so it can end now.
        const queued = this.#queue.indexOf(pending);
        if (queued >= 0) {
          this.#queue.splice(queued, 1);
          pending.reject(signal!.reason);
        }
      };
      const done = (): void => signal?.removeEventListener('abort', onAbort);
      const pending: Pending = {
        job,
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
      let idle = this.#workers.find((w) => w.current === null);
      if (idle === undefined && this.#workers.length < POOL_SIZE) {
        idle = new CopyWorker(
          (self, reply) => this.#onReply(self, reply),
          (self, error) => this.#onFailure(self, error),
        );
        this.#workers.push(idle);
      }
      if (idle === undefined) return;
      const pending = this.#queue.shift()!;
      idle.current = pending;
      idle.worker.ref();
      idle.worker.postMessage(pending.job);
    }
  }

  #onReply(self: CopyWorker, reply: CopyReply): void {
    const pending = self.current;
    self.current = null;
    self.worker.unref();
    this.#dispatch();
    if (pending === null || pending.job.id !== reply.id) return;
    if (reply.ok) pending.resolve({ size: reply.size, sha256: reply.sha256 });
    else if (reply.kind === 'too-large') pending.reject(new ContentTooLargeError(pending.job.maxBytes));
    else if (reply.kind === 'stopped') pending.reject(pending.abortReason());
    else {
      const error = new Error(`FsBlobStore: ${reply.message ?? 'copy failed'}`);
      pending.reject(Object.assign(error, reply.code === undefined ? {} : { code: reply.code }, reply.syscall === undefined ? {} : { syscall: reply.syscall }));
    }
  }

  #onFailure(self: CopyWorker, error: unknown): void {
    const index = this.#workers.indexOf(self);
    if (index < 0) return;
    this.#workers.splice(index, 1);
    const pending = self.current;
    self.current = null;
    pending?.reject(error);
    this.#dispatch();
  }
}

let sharedPool: FileCopyPool | null = null;

/**
 * Reads `from` (an open descriptor, at its current offset) to the end on a
 * worker: counts and hashes the bytes and, unless `to` is -1, appends them to
 * `to` (fsynced when `sync`). Rejects with {@link ContentTooLargeError} past
 * `maxBytes`, with the signal's reason once aborted (the worker stops between
 * reads), with an error of code `ENOTFILE` when `from` is not a regular file;
 * a failed system call's error keeps its `code` and `syscall` (`read`: the source).
 * Neither descriptor may be closed before this settles.
 */
export function copyOnWorker(from: number, to: number, options: { maxBytes: number; sync: boolean; signal: AbortSignal | undefined }): Promise<{ size: number; sha256: string }> {
  sharedPool ??= new FileCopyPool();
  return sharedPool.run(from, to, options.maxBytes, options.sync, options.signal);
}
