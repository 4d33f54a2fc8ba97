import { RemoteMediaError } from '@hsmedia/media-core';

/**
 * Re-emits `source`, which declared `declared` bytes (a media part's or a response's
 * `Content-Length`), and errors with `RemoteMediaError` `bad_response` when it carries more or
 * fewer. A message carries exactly its `Content-Length` (RFC 9110 §8.6, RFC 9112 §6.3): a relay
 * that believed the header and passed on what followed would hand its own client bytes past the
 * length it announced, which the client (or a proxy) reads as the next response.
 *
 * No byte past `declared` is ever emitted, and the chunk that completes `declared` is emitted only
 * once the source has really ended there: a consumer that streams it on under the same
 * `Content-Length` can always abort its answer short instead of completing it with bytes that
 * turn out to be followed by more. Cancelling the result cancels `source`.
 */
export function exactLength(source: ReadableStream<Uint8Array>, declared: number, what: string): ReadableStream<Uint8Array> {
  const reader = source.getReader();
  let received = 0;
  let held: Uint8Array | null = null;
  const mismatch = (detail: string): RemoteMediaError =>
    new RemoteMediaError('bad_response', `${what}: declared ${declared} bytes but ${detail}`);
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) {
            if (received !== declared) throw mismatch(`ended after ${received}`);
            if (held !== null) controller.enqueue(held);
            controller.close();
            return;
          }
          if (value.byteLength === 0) continue;
          received += value.byteLength;
          if (received > declared) {
            const error = mismatch('sent more');
            await reader.cancel(error).catch(() => undefined);
            throw error;
          }
          if (received < declared) {
            controller.enqueue(value);
            return;
          }
          held = value; // complete: read on to see the end before passing it
        }
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}
