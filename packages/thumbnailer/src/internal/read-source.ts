import type { ByteSource } from '@hsmedia/media-core';
import { raceAbort } from '@hsmedia/runtime';
import { ThumbnailError } from '../errors.js';

/**
 * Reads a whole source into one buffer, refusing (with `ThumbnailError` `too_large`) as soon as
 * more than `maxBytes` arrive. Images must be in memory to be decoded; the cap bounds that memory.
 */
export async function readSource(source: ByteSource, maxBytes: number, signal: AbortSignal): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const take = (chunk: Uint8Array): void => {
    total += chunk.byteLength;
    if (total > maxBytes) throw new ThumbnailError('too_large', `The source is larger than ${maxBytes} bytes`);
    chunks.push(chunk);
  };
  if (source instanceof ReadableStream) {
    // A reader, not the async iterator: `cancel()` works even while a read is pending.
    const reader = (source as ReadableStream<Uint8Array>).getReader();
    let finished = false;
    try {
      for (;;) {
        signal.throwIfAborted(); // no new read once aborted: the pending one is settled by cancel() below
        const next = await raceAbort(reader.read(), signal);
        if (next.done) break;
        take(next.value);
      }
      finished = true;
    } finally {
      if (!finished) void reader.cancel().catch(() => {});
    }
  } else {
    const iterator = source[Symbol.asyncIterator]();
    let finished = false;
    try {
      for (;;) {
        signal.throwIfAborted(); // no new read once aborted
        const next = await raceAbort(iterator.next(), signal);
        if (next.done === true) break;
        take(next.value);
      }
      finished = true;
    } finally {
      // Release the producer when we stop early (destroys a Node stream).
      if (!finished) void Promise.resolve(iterator.return?.()).catch(() => {});
    }
  }
  return Buffer.concat(chunks, total);
}
