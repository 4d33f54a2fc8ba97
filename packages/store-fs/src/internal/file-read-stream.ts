import type { FileHandle } from 'node:fs/promises';
import { offerFileBody } from '@hsmedia/media-core';

/**
 * Bytes per read. Larger reads mean fewer pulls through the Web-stream
 * machinery per megabyte (that overhead, not the disk, dominates when
 * serving from the page cache); 256 KiB keeps the per-reader buffer small.
 */
const READ_CHUNK_BYTES = 256 * 1024;

/**
 * A Web `ReadableStream` over `[start, end]` (inclusive) of an open file.
 * The handle is owned by the stream: it is closed at the end, on error, on
 * `cancel()` and when `signal` aborts, whichever comes first.
 *
 * Until the first read, a server may take the file itself instead
 * (`takeFileBody` of media-core) and write it with reused buffers; the stream
 * then ends and the handle is the taker's to close. So nothing is read ahead
 * (`highWaterMark: 0`): a read before anyone asks would rule that out.
 */
export function fileReadStream(
  handle: FileHandle,
  start: number,
  end: number,
  signal: AbortSignal | undefined,
): ReadableStream<Uint8Array> {
  let position = start;
  let remaining = end - start + 1;
  let closing: Promise<void> | undefined;
  let taken = false;
  let started = false;
  const release = (): Promise<void> => {
    // close() waits for an in-flight read, so this is safe to call from any callback.
    closing ??= handle.close().catch(() => undefined);
    return closing;
  };
  let onAbort: (() => void) | undefined;
  const detach = (): void => {
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  };
  let streamController: ReadableStreamDefaultController<Uint8Array> | undefined;

  const stream = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        streamController = controller;
        if (!signal) return;
        onAbort = () => {
          controller.error(signal.reason);
          void release();
        };
        signal.addEventListener('abort', onAbort, { once: true });
      },
      async pull(controller) {
        started = true;
        if (closing || taken) return;
        try {
          if (remaining <= 0) {
            detach();
            await release();
            controller.close();
            return;
          }
          const length = Math.min(READ_CHUNK_BYTES, remaining);
          const buffer = Buffer.allocUnsafe(length);
          const { bytesRead } = await handle.read(buffer, 0, length, position);
          if (closing) return; // aborted or cancelled while reading
          if (bytesRead === 0) {
            detach();
            await release();
            controller.close();
            return;
          }
          position += bytesRead;
          remaining -= bytesRead;
          controller.enqueue(bytesRead === length ? buffer : buffer.subarray(0, bytesRead));
        } catch (error) {
          detach();
          await release();
          throw error;
        }
      },
      async cancel() {
        detach();
        if (!taken) await release();
      },
    },
    { highWaterMark: 0 },
  );
  offerFileBody(stream, () => {
    if (started || closing || taken || signal?.aborted === true) return undefined;
    taken = true;
    detach();
    streamController?.close();
    return {
      file: handle,
      start,
      end,
      signal,
      close: release,
    };
  });
  return stream;
}
