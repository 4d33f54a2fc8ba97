import type { Server } from 'node:http';
import type { Middleware } from 'koa';

/**
 * Graceful shutdown of an HTTP server: stop accepting, let in-flight
 * requests finish, and after a deadline cut what is left.
 */
export interface Drainer {
  /** Koa middleware that counts in-flight requests and asks clients to close once draining starts. */
  readonly middleware: Middleware;
  /** Requests whose handlers have not finished. */
  readonly inFlight: number;
  readonly draining: boolean;
  /**
   * Stops accepting connections, waits up to `deadlineMs` for in-flight
   * requests, then destroys every connection and waits for the handlers to
   * unwind (so aborted uploads have cleaned up before stores close).
   * Resolves `true` when everything finished before the deadline.
   */
  drain(deadlineMs: number): Promise<boolean>;
}

/** Creates the {@link Drainer} of `server`. Mount its middleware first. */
export function createDrainer(server: Server): Drainer {
  let inFlight = 0;
  let draining = false;
  let idle: (() => void) | undefined;
  let drained: Promise<boolean> | undefined;

  const settleIfIdle = (): void => {
    if (inFlight === 0 && idle !== undefined) {
      idle();
      idle = undefined;
    }
  };
  const whenIdle = (): Promise<void> =>
    inFlight === 0
      ? Promise.resolve()
      : new Promise((resolve) => {
          idle = resolve;
        });

  const middleware: Middleware = async function drainMiddleware(ctx, next) {
    inFlight += 1;
    // Keep-alive connections would otherwise hold the server open after their response.
    if (draining) ctx.set('Connection', 'close');
    try {
      await next();
    } finally {
      inFlight -= 1;
      if (draining) {
        if (!ctx.headerSent) ctx.set('Connection', 'close');
        // Once the response is out, its keep-alive socket is idle: let it go.
        ctx.res.once('finish', () => server.closeIdleConnections());
      }
      settleIfIdle();
    }
  };

  const run = async (deadlineMs: number): Promise<boolean> => {
    draining = true;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((resolve) => {
      timer = setTimeout(() => resolve('deadline'), deadlineMs);
    });
    const outcome = await Promise.race([Promise.all([closed, whenIdle()]).then(() => 'done' as const), deadline]);
    clearTimeout(timer);
    if (outcome === 'deadline') {
      server.closeAllConnections();
      await Promise.all([closed, whenIdle()]);
      return false;
    }
    return true;
  };

  return {
    middleware,
    get inFlight() {
      return inFlight;
    },
    get draining() {
      return draining;
    },
    drain(deadlineMs: number): Promise<boolean> {
      drained ??= run(deadlineMs);
      return drained;
    },
  };
}
