/**
 * What the processes of one deployment share besides the database and the
 * blob store: the media change feed (PostgreSQL LISTEN/NOTIFY when the
 * database is PostgreSQL; relayed by the supervisor between the workers of
 * one `hsmedia-server start` otherwise; in-process for a lone process). With
 * PostgreSQL a worker is just another process: each opens its own feed
 * connection.
 */
import cluster from 'node:cluster';
import { InProcessMediaChangeFeed, type MediaChangeFeed } from '@hsmedia/media-core';
import { mediaChangeChannel, PostgresMediaChangeFeed, PostgresMetadataStore } from '@hsmedia/store-postgres';
import type { Logger } from '@hsmedia/runtime';
import { Counter, Gauge, type Registry } from 'prom-client';
import { IpcMediaChangeFeed } from './cluster-ipc.js';
import type { MediaServerConfig } from './config.js';
import type { OpenStores } from './stores.js';

/** The change feed of a server and how to close it. */
export interface ClusterChanges {
  readonly feed: MediaChangeFeed;
  /** The PostgreSQL feed, when there is one (tests read its state). */
  readonly postgres: PostgresMediaChangeFeed | undefined;
  /** Other processes share this database (PostgreSQL, or the SQLite file of sibling workers): cross-process leases pay off. */
  readonly multiProcess: boolean;
  close(): Promise<void>;
}

/**
 * Opens the change feed every `MediaCatalog` of this process follows:
 * LISTEN/NOTIFY on the shared PostgreSQL (channel per schema); without
 * PostgreSQL, over the supervisor's IPC in a worker (`cluster-ipc.ts`), or
 * in-process for a lone process. Metrics:
 * `hsmedia_change_feed_listening` (1 while the listening connection is up) and
 * `hsmedia_change_feed_reconnections_total`.
 */
export async function openChangeFeed(
  config: MediaServerConfig,
  stores: OpenStores,
  logger: Logger,
  registry: Registry,
): Promise<ClusterChanges> {
  const { database } = config;
  if (database.kind !== 'postgres' || !(stores.metadata instanceof PostgresMetadataStore)) {
    if (cluster.isWorker) {
      const relayed = new IpcMediaChangeFeed(process);
      logger.info({ feed: 'supervisor' }, 'media change feed relayed by the supervisor');
      return { feed: relayed, postgres: undefined, multiProcess: true, close: () => Promise.resolve(relayed.close()) };
    }
    return { feed: new InProcessMediaChangeFeed(), postgres: undefined, multiProcess: false, close: () => Promise.resolve() };
  }
  const listening = new Gauge({
    name: 'hsmedia_change_feed_listening',
    help: '1 while the PostgreSQL LISTEN connection of the media change feed is up, else 0.',
    registers: [registry],
  });
  const reconnections = new Counter({
    name: 'hsmedia_change_feed_reconnections_total',
    help: 'Times the media change feed reconnected after losing its LISTEN connection (each dropped every local cache).',
    registers: [registry],
  });
  let connectedBefore = false;
  const feed = await PostgresMediaChangeFeed.start({
    knex: stores.metadata.knex,
    channel: mediaChangeChannel(database.schema),
    log: logger,
    onConnection: (up) => {
      listening.set(up ? 1 : 0);
      if (up && connectedBefore) reconnections.inc();
      connectedBefore = true;
    },
  });
  logger.info({ channel: feed.channel }, 'media change feed listening');
  return { feed, postgres: feed, multiProcess: true, close: () => feed.close() };
}
