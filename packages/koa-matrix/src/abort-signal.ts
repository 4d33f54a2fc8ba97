import type { IncomingMessage } from 'node:http';
import type { Context } from 'koa';

/** The reason of a signal from {@link abortSignalFor}: the client closed the connection. */
export class ClientDisconnectedError extends Error {
  override readonly name: 'ClientDisconnectedError' = 'ClientDisconnectedError';
  constructor(message: string = 'Client disconnected') {
    super(message);
  }
}

const signals = new WeakMap<IncomingMessage, AbortSignal>();

/**
 * An `AbortSignal` that aborts when the client disconnects before the
 * response is finished (one signal per request). Pass it to uploads and
 * stores so a dropped upload stops at once and leaves nothing behind.
 */
export function abortSignalFor(ctx: Context): AbortSignal {
  const { req, res } = ctx;
  const existing = signals.get(req);
  if (existing) return existing;
  const controller = new AbortController();
  signals.set(req, controller.signal);
  const abort = (): void => {
    if (!res.writableFinished) controller.abort(new ClientDisconnectedError());
  };
  if (req.socket.destroyed) {
    abort();
    return controller.signal;
  }
  res.once('close', abort);
  // A reset while the body is being read surfaces on the request first.
  req.once('error', abort);
  return controller.signal;
}
