import { createHash } from 'node:crypto';
import type { ByteSource } from '@hsmedia/media-core';
import { ContentTooLargeError } from '@hsmedia/errors';

/** What {@link countedSource} saw once the source ended; `failure` when it (not S3) failed. */
export interface SourceTally {
  size: number;
  sha256: string;
  failure: { readonly error: unknown } | null;
}

/**
 * Reads `source` as an async generator of Buffers, counting, hashing and
 * limiting on the way. Its errors are recorded in `tally.failure` so that
 * `put` can reject with the source's own error rather than whatever the
 * uploader wraps it in. Returning early (the uploader gave up) closes the
 * source through its iterator's `return()` (a Web stream is cancelled).
 */
export function countedSource(
  source: ByteSource,
  maxBytes: number,
  tally: SourceTally,
): AsyncGenerator<Buffer> {
  const hash = createHash('sha256');
  return (async function* generate(): AsyncGenerator<Buffer> {
    try {
      for await (const chunk of source as AsyncIterable<unknown>) {
        if (!(chunk instanceof Uint8Array)) throw new TypeError('S3BlobStore: the source gave a chunk that is not a Uint8Array');
        tally.size += chunk.byteLength;
        if (tally.size > maxBytes) throw new ContentTooLargeError(maxBytes);
        if (chunk.byteLength === 0) continue;
        hash.update(chunk);
        // A view, not a copy: the uploader keeps it only until its part is sent.
        yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      }
      tally.sha256 = hash.digest('hex');
    } catch (error) {
      tally.failure ??= { error };
      throw error;
    }
  })();
}

function isDestroyable(value: object): value is { destroy(): void } {
  return typeof (value as { destroy?: unknown }).destroy === 'function';
}

/** Closes a source that `put` will not read, so its upstream is released rather than left hanging. */
export async function releaseSource(source: ByteSource, reason: unknown): Promise<void> {
  try {
    if (source instanceof ReadableStream) {
      if (!source.locked) await source.cancel(reason);
    } else if (isDestroyable(source)) {
      // No error argument: an 'error' event nobody listens to would crash the process.
      source.destroy();
    } else {
      await source[Symbol.asyncIterator]().return?.();
    }
  } catch {
    // Best effort; the caller gets the original error.
  }
}
