import { writev } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

/**
 * Most bytes queued behind the write in flight before the source must wait:
 * bounds memory per upload while still letting a few chunks go down in one
 * `writev`. Measured (docs/byte-path.md): 4 MiB batches halved upload
 * throughput against a plain `fs.WriteStream`; 256 KiB beats it.
 */
const MAX_QUEUED_WRITE_BYTES = 256 * 1024;

/**
 * One `writev(2)` on the handle's descriptor through the callback API: measured here, a
 * `FileHandle.writev` (promise API) upload ran at half the throughput of the callback
 * API's `fs.WriteStream` (docs/byte-path.md).
 */
function writevOnce(handle: FileHandle, chunks: Uint8Array[]): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    writev(handle.fd, chunks, (error, bytesWritten) => {
      if (error) reject(error);
      else resolve(bytesWritten);
    });
  });
}

/** Writes `chunks` at the end of the file, looping over short writes. */
async function writeFully(handle: FileHandle, chunks: Uint8Array[]): Promise<void> {
  let pending = chunks;
  while (pending.length > 0) {
    const bytesWritten = await writevOnce(handle, pending);
    if (bytesWritten === 0) throw new Error('FsBlobStore: the file accepted no bytes');
    let skip = bytesWritten;
    let first = 0;
    while (first < pending.length && skip >= pending[first]!.byteLength) {
      skip -= pending[first]!.byteLength;
      first++;
    }
    pending = pending.slice(first);
    if (skip > 0) pending[0] = pending[0]!.subarray(skip);
  }
}

/**
 * The pipeline's sink. Chunks that arrive while a write is in flight are
 * queued and go down together in the next `writev`: one thread-pool round
 * trip per batch rather than per network-sized chunk, which otherwise holds
 * the source back. When the queue passes {@link MAX_QUEUED_WRITE_BYTES} the
 * source waits (backpressure). The caller keeps the handle, to fsync and
 * close it; no write is in flight once this settles.
 */
export function writeAllTo(handle: FileHandle): (chunks: AsyncIterable<Uint8Array>) => Promise<void> {
  return async function writeAll(chunks) {
    let queue: Uint8Array[] = [];
    let queuedBytes = 0;
    // Widened so control-flow narrowing does not pin it to null: callbacks set it.
    let failure = null as { readonly error: unknown } | null;
    // Never rejects: a failure is kept in `failure` and rethrown by the loop.
    let writing: Promise<void> | null = null;
    const startWrite = (): void => {
      const batch = queue;
      queue = [];
      queuedBytes = 0;
      writing = writeFully(handle, batch).then(
        () => {
          writing = null;
          if (queue.length > 0 && failure === null) startWrite();
        },
        (error: unknown) => {
          failure ??= { error };
          writing = null;
        },
      );
    };
    try {
      for await (const chunk of chunks) {
        if (failure !== null) throw failure.error;
        queue.push(chunk);
        queuedBytes += chunk.byteLength;
        if (writing === null) startWrite();
        while (writing !== null && queuedBytes >= MAX_QUEUED_WRITE_BYTES) await writing;
      }
      while (writing !== null) await writing;
      if (failure !== null) throw failure.error;
    } finally {
      // On any exit, let the write in flight finish before the caller closes the handle.
      while (writing !== null) await writing;
    }
  };
}

