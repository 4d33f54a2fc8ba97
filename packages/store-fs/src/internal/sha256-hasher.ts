/**
 * SHA-256 of a blob being written, computed on a worker thread once the blob
 * is large: hashing costs the main thread ~1 ms per MiB, which on a remote
 * fetch competes with the network and the live client on the same thread.
 * Small blobs are hashed inline (a worker round trip would cost more).
 */
import { createHash, type Hash } from 'node:crypto';
import { Worker } from 'node:worker_threads';

/** Bytes seen before hashing moves to the worker. */
const OFFLOAD_THRESHOLD_BYTES = 1024 * 1024;
/** Size of one batch copied to the worker. */
const BATCH_BYTES = 1024 * 1024;
/** Bytes posted to the worker and not yet hashed before `update` waits (bounds memory). */
const MAX_OUTSTANDING_BYTES = 8 * 1024 * 1024;

// CommonJS script (eval workers are not modules). Messages: [id, ArrayBuffer] to hash,
// [id, null] for the digest, [id, undefined] to drop. Every ArrayBuffer comes back (for reuse) once hashed.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hashes = new Map();
parentPort.on('message', ([id, data]) => {
  if (data === undefined) { hashes.delete(id); return; }
  let hash = hashes.get(id);
  if (hash === undefined) { hash = createHash('sha256'); hashes.set(id, hash); }
  if (data === null) { hashes.delete(id); parentPort.postMessage([id, hash.digest('hex')]); return; }
  hash.update(new Uint8Array(data));
  parentPort.postMessage([id, data], [data]);
});
`;

interface Session {
  onAck(bytes: number): void;
  onDigest(hex: string): void;
  onFailure(error: unknown): void;
}

/** One worker shared by every hash of the process; referenced only while a hash is in progress. */
class HashWorker {
  readonly #worker: Worker;
  readonly #sessions = new Map<number, Session>();
  #nextId = 1;
  #failure: { readonly error: unknown } | null = null;

  constructor() {
    this.#worker = new Worker(WORKER_SOURCE, { eval: true });
    this.#worker.unref();
    this.#worker.on('message', ([id, value]: [number, ArrayBuffer | string]) => {
      if (typeof value !== 'string' && value.byteLength === BATCH_BYTES && freeBatches.length < MAX_FREE_BATCHES) {
        freeBatches.push(value);
      }
      const session = this.#sessions.get(id);
      if (session === undefined) return;
      if (typeof value !== 'string') session.onAck(value.byteLength);
      else {
        this.#sessions.delete(id);
        this.#refresh();
        session.onDigest(value);
      }
    });
    const fail = (error: unknown): void => {
      this.#failure ??= { error };
      if (sharedWorker === this) sharedWorker = null;
      for (const session of this.#sessions.values()) session.onFailure(error);
      this.#sessions.clear();
    };
    this.#worker.on('error', fail);
    this.#worker.on('exit', (code) => fail(new Error(`sha256 worker exited with code ${code}`)));
  }

  open(session: Session): number {
    if (this.#failure !== null) throw this.#failure.error;
    const id = this.#nextId++;
    this.#sessions.set(id, session);
    this.#refresh();
    return id;
  }

  post(id: number, data: ArrayBuffer | null | undefined): void {
    if (data === undefined) {
      this.#sessions.delete(id);
      this.#refresh();
    }
    this.#worker.postMessage([id, data], data instanceof ArrayBuffer ? [data] : []);
  }

  /** Keeps the process alive only while a digest is awaited. */
  #refresh(): void {
    if (this.#sessions.size > 0) this.#worker.ref();
    else this.#worker.unref();
  }
}

let sharedWorker: HashWorker | null = null;
/** Batch buffers back from the worker: reused, since fresh ones cost page faults and GC. */
const freeBatches: ArrayBuffer[] = [];
const MAX_FREE_BATCHES = 8;

/**
 * Incremental SHA-256. `update` may return a promise: await it before the
 * next `update` (the worker is behind). Call `digest` once, or `dispose` to
 * give up.
 */
export class Sha256Hasher {
  #inline: Hash | null;
  /** Chunks held (not copied) until the threshold decides between inline and worker. */
  #held: Uint8Array[] = [];
  #heldBytes = 0;
  #worker: HashWorker | null = null;
  #id = 0;
  #batch: Buffer | null = null;
  #batchUsed = 0;
  #outstanding = 0;
  #failure: { readonly error: unknown } | null = null;
  #wake: (() => void) | null = null;
  #digest: { resolve: (hex: string) => void; reject: (error: unknown) => void } | null = null;

  /**
   * With `offload` false, hashes inline on this thread from the first byte:
   * the least CPU per GiB (no copy into batches, no messages; docs/byte-path.md).
   */
  constructor(offload = true) {
    this.#inline = offload ? null : createHash('sha256');
  }

  /** Adds `chunk`. The caller must not modify it until the returned promise (if any) settles or the hash ends. */
  update(chunk: Uint8Array): Promise<void> | undefined {
    if (this.#inline !== null) {
      this.#inline.update(chunk);
      return undefined;
    }
    if (this.#worker === null) {
      this.#held.push(chunk);
      this.#heldBytes += chunk.byteLength;
      if (this.#heldBytes < OFFLOAD_THRESHOLD_BYTES) return undefined;
      if (!this.#startWorker()) {
        this.#inline = createHash('sha256');
        for (const held of this.#held) this.#inline.update(held);
        this.#held = [];
        return undefined;
      }
      const held = this.#held;
      this.#held = [];
      for (const piece of held) this.#copy(piece);
    } else {
      this.#copy(chunk);
    }
    return this.#outstanding >= MAX_OUTSTANDING_BYTES ? this.#waitForWorker() : undefined;
  }

  /** The hex digest of everything added. */
  async digest(): Promise<string> {
    if (this.#worker === null) {
      const hash = this.#inline ?? createHash('sha256');
      for (const held of this.#held) hash.update(held);
      this.#held = [];
      return hash.digest('hex');
    }
    if (this.#failure !== null) throw this.#failure.error;
    this.#flush();
    const worker = this.#worker;
    return new Promise<string>((resolve, reject) => {
      this.#digest = { resolve, reject };
      worker.post(this.#id, null);
    });
  }

  /** Abandons the hash (the write failed). */
  dispose(): void {
    this.#held = [];
    if (this.#worker !== null && this.#failure === null) {
      this.#failure = { error: new Error('hash disposed') };
      this.#worker.post(this.#id, undefined);
    }
  }

  #startWorker(): boolean {
    try {
      sharedWorker ??= new HashWorker();
      const worker = sharedWorker;
      this.#id = worker.open({
        onAck: (bytes) => {
          this.#outstanding -= bytes;
          this.#wakeNow();
        },
        onDigest: (hex) => this.#digest?.resolve(hex),
        onFailure: (error) => {
          this.#failure ??= { error };
          this.#wakeNow();
          this.#digest?.reject(error);
        },
      });
      this.#worker = worker;
      return true;
    } catch {
      // No worker threads here (or the worker died): hash inline.
      return false;
    }
  }

  /** Copies into the current batch; a full batch goes to the worker (transferred, not copied again). */
  #copy(chunk: Uint8Array): void {
    let offset = 0;
    while (offset < chunk.byteLength) {
      if (this.#batch === null) {
        const free = freeBatches.pop();
        this.#batch = free === undefined ? Buffer.allocUnsafeSlow(BATCH_BYTES) : Buffer.from(free);
      }
      const n = Math.min(chunk.byteLength - offset, BATCH_BYTES - this.#batchUsed);
      this.#batch.set(chunk.subarray(offset, offset + n), this.#batchUsed);
      this.#batchUsed += n;
      offset += n;
      if (this.#batchUsed === BATCH_BYTES) this.#flush();
    }
  }

  #flush(): void {
    const batch = this.#batch;
    if (batch === null || this.#batchUsed === 0 || this.#failure !== null) return;
    const used = this.#batchUsed;
    this.#batch = null;
    this.#batchUsed = 0;
    // allocUnsafeSlow: the Buffer owns its ArrayBuffer, so it can be transferred.
    const data = used === batch.byteLength ? batch.buffer : batch.buffer.slice(0, used);
    this.#outstanding += used;
    this.#worker!.post(this.#id, data as ArrayBuffer);
  }

  async #waitForWorker(): Promise<void> {
    while (this.#outstanding >= MAX_OUTSTANDING_BYTES && this.#failure === null) {
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
    if (this.#failure !== null) throw this.#failure.error;
  }

  #wakeNow(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }
}
