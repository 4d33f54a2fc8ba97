/**
 * Recognises a query that failed because its connection died (the backend
 * was terminated, the server restarted, the socket was reset), as opposed to
 * a failure of the statement itself.
 *
 * SQLSTATE class 57 "operator intervention": 57P01 admin_shutdown
 * (`pg_terminate_backend`, a fast shutdown), 57P02 crash_shutdown. 57P03
 * (cannot_connect_now) is left out: it answers a connection attempt while the
 * server starts, and retrying at once would fail the same way.
 */
const LOST_SQLSTATES: ReadonlySet<string> = new Set(['57P01', '57P02']);
const LOST_SOCKET_CODES: ReadonlySet<string> = new Set(['ECONNRESET', 'EPIPE']);
// Messages of `pg` (no code) when the socket closes under a query, or when a
// client that already saw its socket fail is asked to query. knex prefixes
// the SQL to the message, hence a search rather than an equality.
const LOST_MESSAGE = /Connection terminated unexpectedly|Client has encountered a connection error and is not queryable/;

/** Whether `error` says the connection was lost rather than the statement failing. */
export function isConnectionLost(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && (LOST_SQLSTATES.has(code) || LOST_SOCKET_CODES.has(code))) return true;
  const message = (error as { message?: unknown }).message;
  return typeof message === 'string' && LOST_MESSAGE.test(message);
}

/**
 * Generation stamps on pooled connections, so that after one connection is
 * found dead every connection opened before that moment is discarded when
 * next handed out. Terminations (`pg_terminate_backend` of a role's
 * sessions, a restart) hit all idle connections at once, but the client
 * notices each closed socket only when the event loop gets to it: without
 * this, a retry could be handed a sibling that is dead but not yet known to
 * be. A connection opened after the failure is a fresh session.
 */
export class ConnectionGenerations {
  #current = 0;
  readonly #stamps = new WeakMap<object, number>();

  /** Records that `connection` was opened in the current generation. */
  stamp(connection: object): void {
    this.#stamps.set(connection, this.#current);
  }

  /** Whether `connection` was opened after the last {@link retireAll}. */
  isCurrent(connection: object): boolean {
    return this.#stamps.get(connection) === this.#current;
  }

  /** Marks every connection opened so far as not to be reused. */
  retireAll(): void {
    this.#current += 1;
  }
}
