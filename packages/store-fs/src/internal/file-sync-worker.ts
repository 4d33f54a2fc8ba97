/**
 * fsyncs batches of open files, then directories, from one worker thread:
 * the caller posts one message per batch (a bulk import's group commit)
 * instead of handing every fsync, open and close to the thread pool itself,
 * which on a small machine cost more of its thread than the copies did
 * (docs/migrate-from-synapse.md "Speed"). The worker issues the fsyncs of a
 * batch at once, so the filesystem's journal can commit them together.
 */
import { Worker } from 'node:worker_threads';

// CommonJS script (eval workers are not modules).
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const { promisify } = require('node:util');
const fsync = promisify(fs.fsync);
async function syncDir(dir) {
  const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try { await fsync(fd); } finally { fs.closeSync(fd); }
}
parentPort.on('message', async ({ id, fds, dirs }) => {
  try {
    await Promise.all(fds.map((fd) => fsync(fd)));
    // The directories after the files: their names then point at flushed data.
    await Promise.all(dirs.map(syncDir));
    parentPort.postMessage({ id, ok: true });
  } catch (error) {
    parentPort.postMessage({ id, ok: false, message: String(error && error.message), code: error && error.code });
  }
});
`;

type Reply = { readonly id: number; readonly ok: true } | { readonly id: number; readonly ok: false; readonly message: string; readonly code?: string };

class FileSyncWorker {
  #worker: Worker | null = null;
  readonly #waiting = new Map<number, { resolve(): void; reject(error: unknown): void }>();
  #nextId = 1;

  sync(fds: readonly number[], dirs: readonly string[]): Promise<void> {
    const worker = this.#start();
    const id = this.#nextId++;
    return new Promise<void>((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage({ id, fds, dirs });
    });
  }

  #start(): Worker {
    if (this.#worker !== null) return this.#worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    worker.unref();
    worker.on('message', (reply: Reply) => {
      const waiter = this.#waiting.get(reply.id);
      this.#waiting.delete(reply.id);
      if (this.#waiting.size === 0) worker.unref();
      if (waiter === undefined) return;
      if (reply.ok) waiter.resolve();
      else waiter.reject(Object.assign(new Error(`FsBlobStore: sync failed: ${reply.message}`), reply.code === undefined ? {} : { code: reply.code }));
    });
    const fail = (error: unknown): void => {
      if (this.#worker === worker) this.#worker = null;
      for (const waiter of this.#waiting.values()) waiter.reject(error);
      this.#waiting.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`file sync worker exited with code ${code}`)));
    this.#worker = worker;
    return worker;
  }
}

let shared: FileSyncWorker | null = null;

/** fsyncs every descriptor, then opens and fsyncs every directory, on the sync worker; rejects with the first failure. */
export function syncOnWorker(fds: readonly number[], dirs: readonly string[]): Promise<void> {
  if (fds.length === 0 && dirs.length === 0) return Promise.resolve();
  if (process.platform === 'win32') dirs = [];
  shared ??= new FileSyncWorker();
  return shared.sync(fds, dirs);
}
