import type { Readable } from 'node:stream';

/**
 * A Web stream over an SDK response body (a Node `IncomingMessage`) that
 * ends with an error when `signal` aborts or the connection breaks, and
 * destroys the socket on `cancel()` so an abandoned download does not keep
 * the object store sending.
 */
export function bodyStream(body: Readable, signal: AbortSignal | undefined, mapError: (error: unknown) => unknown): ReadableStream<Uint8Array> {
  const iterator = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let onAbort: (() => void) | undefined;
  const detach = (): void => {
    if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
  };
  return new ReadableStream<Uint8Array>(
    {
      // One chunk read ahead keeps the object store's socket busy while the client writes.
      start(controller) {
        if (signal === undefined) return;
        onAbort = () => {
          body.destroy();
          controller.error(signal.reason);
        };
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
      },
      async pull(controller) {
        try {
          const { done, value } = await iterator.next();
          if (signal?.aborted) return; // already errored by onAbort
          if (done) {
            detach();
            controller.close();
          } else {
            controller.enqueue(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
          }
        } catch (error) {
          detach();
          if (signal?.aborted) return;
          controller.error(mapError(error));
        }
      },
      cancel() {
        detach();
        body.destroy();
      },
    },
  );
}
