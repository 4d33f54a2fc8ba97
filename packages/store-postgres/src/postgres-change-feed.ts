import { createHash } from 'node:crypto';
import { parseMediaChange, type MediaChange, type MediaChangeFeed, type MediaChangeListener } from '@hsmedia/media-core';
import type { Knex } from 'knex';

/** Receiver of the feed's diagnostics, pino-shaped. */
export interface PostgresChangeFeedLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

/** Options for {@link PostgresMediaChangeFeed.start}. */
export interface PostgresMediaChangeFeedOptions {
  /**
   * The store's knex instance (`PostgresMetadataStore.knex`): changes are
   * published through its pool, and the listening connection is opened with
   * its connection settings, outside the pool.
   */
  readonly knex: Knex;
  /**
   * The `NOTIFY` channel; every process of one deployment must use the same.
   * Default {@link mediaChangeChannel} of no schema. Lowercase letters,
   * digits and `_`, at most 63 characters.
   */
  readonly channel?: string;
  /** First delay before reconnecting a lost listening connection, in ms; doubled up to `maxReconnectDelayMs`. Default 100. */
  readonly reconnectDelayMs?: number;
  /** Longest delay between reconnection attempts, in ms. Default 5 000. */
  readonly maxReconnectDelayMs?: number;
  readonly log?: PostgresChangeFeedLog;
  /** Told whenever the listening connection comes up (true) or is lost (false), e.g. for a metric. */
  readonly onConnection?: (listening: boolean) => void;
}

/** The subset of a `pg` client the feed uses. */
interface ListeningConnection {
  query(sql: string): Promise<unknown>;
  on(event: 'notification', listener: (message: { channel: string; payload?: string }) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
}

const CHANNEL_RE = /^[a-z_][a-z0-9_]{0,62}$/;
const NO_LOG: PostgresChangeFeedLog = { info: () => undefined, warn: () => undefined };

/**
 * The `NOTIFY` channel of the deployment whose tables live in `schema` (with
 * `tablePrefix`): deployments sharing a database but not a schema do not hear
 * each other's changes.
 */
export function mediaChangeChannel(schema?: string, tablePrefix?: string): string {
  if ((schema ?? '') === '' && (tablePrefix ?? '') === '') return 'hsmedia_media_changes';
  const digest = createHash('sha256').update(`${schema ?? ''}.${tablePrefix ?? ''}`).digest('hex').slice(0, 16);
  return `hsmedia_media_changes_${digest}`;
}

/**
 * A {@link MediaChangeFeed} on PostgreSQL `LISTEN`/`NOTIFY`: changes are
 * published with `pg_notify` through the store's pool and heard on one
 * dedicated connection per process, so every process sharing the database
 * applies a change within the round trip of one notification.
 *
 * `NOTIFY` is not durable: notifications sent while the listening connection
 * is down are lost. When it is lost the feed reconnects with exponential
 * backoff, and once listening again tells its listeners
 * `{ kind: 'resync' }` so they drop every cache that may have gone stale.
 *
 * @example
 * ```ts
 * const store = await createPostgresMetadataStore({ url });
 * const changes = await PostgresMediaChangeFeed.start({ knex: store.knex });
 * const media = new MediaService({ serverName, blobs, metadata: store, maxUploadBytes, changes });
 * ```
 */
export class PostgresMediaChangeFeed implements MediaChangeFeed {
  readonly channel: string;
  readonly #knex: Knex;
  readonly #log: PostgresChangeFeedLog;
  readonly #onConnection: ((listening: boolean) => void) | undefined;
  readonly #firstDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #listeners = new Set<MediaChangeListener>();
  #connection: ListeningConnection | undefined;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #attempt = 0;
  #closed = false;
  /** Times the listening connection was re-established after a loss (for tests and metrics). */
  reconnections = 0;

  private constructor(options: PostgresMediaChangeFeedOptions) {
    const channel = options.channel ?? mediaChangeChannel();
    if (!CHANNEL_RE.test(channel)) throw new TypeError('PostgresMediaChangeFeed: channel must match [a-z_][a-z0-9_]{0,62}');
    const delay = (name: string, value: number): number => {
      if (!Number.isSafeInteger(value) || value < 1) throw new TypeError(`PostgresMediaChangeFeed: ${name} must be a positive integer`);
      return value;
    };
    this.channel = channel;
    this.#knex = options.knex;
    this.#log = options.log ?? NO_LOG;
    this.#onConnection = options.onConnection;
    this.#firstDelayMs = delay('reconnectDelayMs', options.reconnectDelayMs ?? 100);
    this.#maxDelayMs = delay('maxReconnectDelayMs', options.maxReconnectDelayMs ?? 5_000);
  }

  /** Opens the listening connection; rejects (nothing left open) when the database cannot be reached. */
  static async start(options: PostgresMediaChangeFeedOptions): Promise<PostgresMediaChangeFeed> {
    const feed = new PostgresMediaChangeFeed(options);
    await feed.#listen();
    return feed;
  }

  /** Whether the listening connection is up now. */
  get listening(): boolean {
    return this.#connection !== undefined;
  }

  async publish(change: MediaChange): Promise<void> {
    if (change.kind === 'resync') return;
    await this.#knex.raw('select pg_notify(?, ?)', [this.channel, JSON.stringify(change)]);
  }

  subscribe(listener: MediaChangeListener): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  /** Stops listening and closes the connection. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#reconnectTimer !== undefined) clearTimeout(this.#reconnectTimer);
    const connection = this.#connection;
    this.#connection = undefined;
    if (connection !== undefined) await this.#knex.client.destroyRawConnection(connection).catch(() => undefined);
  }

  async #listen(): Promise<void> {
    const connection = (await this.#knex.client.acquireRawConnection()) as ListeningConnection;
    let lost = false;
    const onLost = (error?: Error): void => {
      if (lost) return;
      lost = true;
      this.#lost(connection, error);
    };
    connection.on('error', onLost);
    connection.on('end', () => onLost());
    connection.on('notification', (message) => {
      if (message.channel === this.channel) this.#receive(message.payload);
    });
    try {
      // The channel matched CHANNEL_RE: safe to inline (LISTEN takes no parameters).
      await connection.query(`listen ${this.channel}`);
    } catch (error) {
      lost = true;
      await this.#knex.client.destroyRawConnection(connection).catch(() => undefined);
      throw error;
    }
    if (this.#closed) {
      await this.#knex.client.destroyRawConnection(connection).catch(() => undefined);
      return;
    }
    this.#connection = connection;
    this.#onConnection?.(true);
  }

  #lost(connection: ListeningConnection, error: Error | undefined): void {
    if (this.#connection !== connection) return;
    this.#connection = undefined;
    this.#onConnection?.(false);
    if (this.#closed) return;
    this.#log.warn({ err: error, channel: this.channel }, 'media change feed: listening connection lost; reconnecting');
    void this.#knex.client.destroyRawConnection(connection).catch(() => undefined);
    this.#attempt = 0;
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    const delay = Math.min(this.#maxDelayMs, this.#firstDelayMs * 2 ** Math.min(this.#attempt, 16));
    this.#attempt++;
    this.#reconnectTimer = setTimeout(() => void this.#reconnect(), delay);
    this.#reconnectTimer.unref();
  }

  async #reconnect(): Promise<void> {
    this.#reconnectTimer = undefined;
    if (this.#closed) return;
    try {
      await this.#listen();
    } catch (error) {
      this.#log.warn({ err: error, attempt: this.#attempt }, 'media change feed: reconnection failed');
      this.#scheduleReconnect();
      return;
    }
    if (this.#closed) return;
    this.reconnections++;
    this.#log.info({ channel: this.channel, attempts: this.#attempt }, 'media change feed: listening again; dropping caches that may be stale');
    // Changes published while the connection was down were lost: every cache may be stale.
    this.#deliver({ kind: 'resync' });
  }

  #receive(payload: string | undefined): void {
    let change: MediaChange | undefined;
    try {
      change = parseMediaChange(JSON.parse(payload ?? ''));
    } catch {
      change = undefined;
    }
    if (change === undefined) {
      this.#log.warn({ channel: this.channel }, 'media change feed: ignored a malformed notification');
      return;
    }
    this.#deliver(change);
  }

  #deliver(change: MediaChange): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(change);
      } catch (error) {
        this.#log.warn({ err: error }, 'media change listener failed');
      }
    }
  }
}
