import type { Readable } from 'node:stream';
import { offerPushBody, type BodySink, type PushBodyControls } from '@hsmedia/media-core';

/**
 * A Web stream over an SDK response body (a Node `IncomingMessage`) that
 * ends with an error when `signal` aborts or the connection breaks, and
 * destroys the socket on `cancel()` so an abandoned download does not keep
 * the object store sending.
 *
 * It also offers a push body (media-core's `offerPushBody`): the server's
 * writer can take the response's `'data'` events straight into its socket,
 * paced by `pause()`/`resume()` on the socket's backpressure, with no Web
 * stream, no pull and no promise per chunk between the two sockets (the
 * shape of the file byte path and of the remote relay). Taken only while
 * nothing has read the Web stream.
 */
export function bodyStream(body: Readable, signal: AbortSignal | undefined, mapError: (error: unknown) => unknown): ReadableStream<Uint8Array> {
  // Created on the first pull, so that an untouched stream can still be taken as a push body.
  let iterator: AsyncIterator<Buffer> | undefined;
  let onAbort: (() => void) | undefined;
  const detach = (): void => {
    if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
  };
  const stream = new ReadableStream<Uint8Array>(
    {
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
        iterator ??= body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
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
    // No read ahead: pulling before a reader asks would consume the body a push taker needs.
    // The response socket's own buffers keep the object store sending meanwhile.
    { highWaterMark: 0 },
  );
  offerPushBody(stream, () => {
    if (iterator !== undefined || body.destroyed || signal?.aborted === true) return undefined;
    detach();
    return { attach: (sink) => pushTo(body, sink, signal, mapError) };
  });
  return stream;
}

/** Writes `body`'s chunks to `sink` as they arrive, pausing the response while the sink is full. */
function pushTo(body: Readable, sink: BodySink, signal: AbortSignal | undefined, mapError: (error: unknown) => unknown): PushBodyControls {
  let finished = false;
  const finish = (): boolean => {
    if (finished) return false;
    finished = true;
    body.off('data', onData);
    body.off('end', onEnd);
    body.off('error', onError);
    body.off('close', onClose);
    signal?.removeEventListener('abort', onAbort);
    return true;
  };
  const onData = (chunk: Buffer): void => {
    if (!sink.write(chunk)) body.pause();
  };
  const onEnd = (): void => {
    if (finish()) sink.end();
  };
  const onError = (error: unknown): void => {
    if (finish()) sink.abort(mapError(error));
  };
  // Closed without 'end' or 'error' (the socket destroyed under the response): never end the answer short.
  const onClose = (): void => {
    if (!body.readableEnded && finish()) sink.abort(mapError(new Error('the object store connection closed mid-body')));
  };
  const onAbort = (): void => {
    if (!finish()) return;
    body.destroy();
    sink.abort(signal?.reason);
  };
  // An 'error' after this taker is done must not crash the process for want of a listener.
  body.on('error', () => undefined);
  body.on('data', onData);
  body.once('end', onEnd);
  body.once('error', onError);
  body.once('close', onClose);
  signal?.addEventListener('abort', onAbort, { once: true });
  if (signal?.aborted === true) onAbort();
  return {
    drained: () => {
      if (!finished) body.resume();
    },
    gone: () => {
      if (!finish()) return;
      body.destroy();
    },
  };
}
