import type { ServerResponse } from 'node:http';
import type { FileBody } from '@hsmedia/media-core';

/**
 * Bytes per read. 256 KiB reads cost about half the CPU per GiB of the
 * 64 KiB a plain `fs.createReadStream` pipe makes (docs/byte-path.md).
 */
export const FILE_READ_BYTES: number = 256 * 1024;
/**
 * Reads of one response that the socket has not yet taken. Two let the next
 * read overlap the socket write; a slow client holds at most this many
 * buffers, so memory is bounded by connections, not by file size.
 */
const IN_FLIGHT_READS = 2;
/**
 * Full-size buffers kept for the next response. A fresh 256 KiB buffer is
 * an `mmap`, 64 page faults and a `munmap` (plus external-memory GC
 * pressure); a reused one costs nothing. Bounded, so an idle server keeps at
 * most 4 MiB.
 */
const MAX_POOLED_BUFFERS = 16;
const pool: Buffer[] = [];

function takeBuffer(bytes: number): Buffer {
  // allocUnsafeSlow: the buffer owns its memory (no slice of Node's shared 8 KiB pool).
  if (bytes < FILE_READ_BYTES) return Buffer.allocUnsafeSlow(bytes);
  return pool.pop() ?? Buffer.allocUnsafeSlow(FILE_READ_BYTES);
}

function giveBack(buffer: Buffer): void {
  if (buffer.byteLength === FILE_READ_BYTES && pool.length < MAX_POOLED_BUFFERS) pool.push(buffer);
}

/** Buffers waiting in the pool (for tests). */
export function pooledFileBuffers(): number {
  return pool.length;
}

/** Framing written around the file's bytes (a multipart answer's head and tail). */
export interface FileFrame {
  readonly head: Uint8Array;
  readonly tail: Uint8Array;
}

/**
 * Writes `length` bytes of `body` (from its start; to its end or the end of
 * the file when `length` is null) to `res`, between `frame.head` and
 * `frame.tail` when given, then ends the response. Headers must be set.
 *
 * A loop over positional reads into at most {@link IN_FLIGHT_READS} buffers
 * per response, each reused once the socket has taken it (the write
 * callback): the socket's pace is the backpressure, no read is ahead of it by
 * more than that. The file is closed on every exit: finish, read error,
 * client disconnect, abort of `body.signal`. A file shorter than `length`
 * aborts the response instead of ending it short. Never rejects: by then
 * the headers are gone and nothing else can be said.
 */
export async function writeFileBody(res: ServerResponse, body: FileBody, length: number | null, frame?: FileFrame): Promise<void> {
  let gone = res.destroyed || body.signal?.aborted === true;
  let inFlight = 0;
  let wake: (() => void) | null = null;
  const resume = (): void => {
    const wakeNow = wake;
    wake = null;
    wakeNow?.();
  };
  const leave = (): void => {
    if (res.writableFinished) return;
    gone = true;
    resume();
  };
  res.once('close', leave);
  body.signal?.addEventListener('abort', leave, { once: true });
  const written = (buffer: Buffer) => (error: Error | null | undefined): void => {
    inFlight--;
    // Only a buffer the socket is done with goes back; after an error it may still be referenced.
    if (error) gone = true;
    else giveBack(buffer);
    resume();
  };
  try {
    if (gone) return;
    if (frame !== undefined) res.write(frame.head);
    let position = body.start;
    let left = length ?? body.end - body.start + 1;
    while (left > 0) {
      while (inFlight >= IN_FLIGHT_READS && !gone) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
      if (gone) return;
      const buffer = takeBuffer(Math.min(FILE_READ_BYTES, left));
      const want = Math.min(buffer.byteLength, left);
      const { bytesRead } = await body.file.read(buffer, 0, want, position);
      if (gone) {
        giveBack(buffer);
        return;
      }
      if (bytesRead === 0) {
        if (length !== null) throw new Error(`file ended ${left} bytes short of the answer's length`);
        giveBack(buffer);
        break;
      }
      position += bytesRead;
      left -= bytesRead;
      inFlight++;
      res.write(bytesRead === buffer.byteLength ? buffer : buffer.subarray(0, bytesRead), written(buffer));
    }
    if (frame !== undefined) res.end(frame.tail);
    else res.end();
  } catch {
    // A read failed or the file is short: abort the response (the client sees a cut connection).
    if (!gone) res.destroy();
  } finally {
    res.off('close', leave);
    body.signal?.removeEventListener('abort', leave);
    await body.close();
  }
}
