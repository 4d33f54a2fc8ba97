import type { ServerResponse } from 'node:http';
import { takeFileBody, takePushBody, type PushBody } from '@hsmedia/media-core';
import type { Context } from 'koa';
import { writeFileBody } from './write-file-body.js';

/**
 * The one byte path of every answer with a body (downloads whole and ranged,
 * thumbnails, the remote relay; multipart answers frame the same file
 * writer). A body backed by a file (`takeFileBody`) is written by
 * {@link writeFileBody} with reused buffers; a body that can push
 * (`takePushBody`: a remote still arriving) writes its chunks to the socket
 * itself; any other body (bytes from memory) is pumped from its Web stream.
 *
 * Streams a media body straight into the Node response, bypassing Koa's
 * `respond()`: Koa wraps a Web stream in `Readable.from()`, an async
 * generator and a Node stream per response, which costs more CPU per byte
 * than the copy itself. The status and headers must already be set on `ctx`.
 *
 * Guarantees kept: backpressure (a slow client slows the reads), a client
 * that leaves cancels the body (the file or the remote fetch is released),
 * and a body that fails mid-way aborts the response rather than ending it
 * short. Resolves once the body is written (or abandoned); never rejects,
 * because by then the headers are gone and nothing else can be said.
 */
export async function writeStreamBody(ctx: Context, body: ReadableStream<Uint8Array>, length: number | null): Promise<void> {
  ctx.respond = false;
  const file = takeFileBody(body);
  if (file !== undefined) {
    await writeFileBody(ctx.res, file, length);
    return;
  }
  const push = takePushBody(body);
  if (push !== undefined) await writePushBody(push, ctx.res);
  else await pumpWebStream(body, ctx.res);
}

/**
 * Lets `body` write to the socket: `write` as it answers, `'drain'` when it
 * asked to wait, the end or an abort from the body; a client that leaves
 * first is reported as `gone`. Resolves when the response closes.
 */
function writePushBody(body: PushBody, res: ServerResponse): Promise<void> {
  return new Promise<void>((resolve) => {
    const controls = body.attach({
      write: (chunk) => !res.destroyed && res.write(chunk),
      end: () => {
        if (!res.destroyed) res.end();
      },
      abort: () => void res.destroy(),
    });
    if (res.destroyed) {
      // The client left before the first byte: 'close' has been and gone.
      controls.gone(new Error('client disconnected'));
      resolve();
      return;
    }
    const onDrain = (): void => controls.drained();
    res.on('drain', onDrain);
    res.once('close', () => {
      res.off('drain', onDrain);
      if (!res.writableFinished) controls.gone(new Error('client disconnected'));
      resolve();
    });
  });
}

/** One `read()` → `write()` per chunk, waiting for `drain` only when the socket buffer is full. */
async function pumpWebStream(body: ReadableStream<Uint8Array>, res: ServerResponse): Promise<void> {
  const reader = body.getReader();
  let wake: (() => void) | null = null;
  let gone = false;
  const onDrain = (): void => {
    const resume = wake;
    wake = null;
    resume?.();
  };
  const onClose = (): void => {
    if (res.writableFinished) return;
    gone = true;
    // The client left: release the source now, even while a read is pending.
    void reader.cancel(new Error('client disconnected')).catch(() => undefined);
    onDrain();
  };
  res.on('drain', onDrain);
  res.once('close', onClose);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (gone) return;
      if (done) {
        res.end();
        return;
      }
      if (!res.write(value)) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        if (gone) return;
      }
    }
  } catch {
    // The source failed: abort the response (the client sees a cut connection, not a short body).
    if (!gone) res.destroy();
  } finally {
    res.off('drain', onDrain);
    res.off('close', onClose);
    reader.releaseLock();
  }
}
