/**
 * Read-through from Synapse on PostgreSQL while its database goes away and comes back: the real
 * PostgreSQL (127.0.0.1:5432) holds a Synapse schema made with Synapse's own table definitions
 * (`@hsmedia/test-fixtures/synapse`), reached through a loopback TCP relay the test cuts and
 * restores. Requests get a clean 503 M_UNKNOWN (never a 500), then the media once it is back; the
 * backfill pauses and completes.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { PG_URL } from '@hsmedia/test-fixtures/postgres';
import { createPostgresDatabase, writeSynapseMediaStore, writeSynapsePostgres, type SynapseFixtureContent } from '@hsmedia/test-fixtures/synapse';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type StartedServer } from '../../src/server.js';
import { tempDir, testConfig } from '../helpers.js';

const SERVER = 'hs.test';
const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** A TCP relay to PostgreSQL that can be cut (open connections destroyed, new ones closed at once) and restored. */
class Relay {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  up = true;
  /** Connections closed at once because the relay was cut. */
  refused = 0;
  constructor(target: { host: string; port: number }) {
    this.#server = createServer((client) => {
      if (!this.up) {
        this.refused++;
        client.destroy();
        return;
      }
      const upstream = connect(target.port, target.host);
      for (const socket of [client, upstream]) {
        this.#sockets.add(socket);
        socket.on('close', () => this.#sockets.delete(socket));
        socket.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
  }
  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return (this.#server.address() as { port: number }).port;
  }
  cut(): void {
    this.up = false;
    for (const socket of this.#sockets) socket.destroy();
  }
  async close(): Promise<void> {
    this.cut();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}

describe('read-through from Synapse on PostgreSQL that goes away', { timeout: 120_000 }, () => {
  let dir: { path: string; cleanup(): Promise<void> };
  let database: { url: string; drop(): Promise<void> } | undefined;
  let relay: Relay;
  let server: StartedServer | undefined;
  let backfilling: StartedServer | undefined;
  let relayedUrl = '';
  const items = Array.from({ length: 6 }, (_, i) => ({ mediaId: `item${i}AAAAAAAAAAAAAAAAA`, bytes: randomBytes(1000 + i) }));

  beforeAll(async () => {
    dir = await tempDir('hsmedia-read-through-pg-');
    const content: SynapseFixtureContent = {
      local: items.map((item, i) => ({ mediaId: item.mediaId, type: 'application/octet-stream', bytes: item.bytes, createdTs: 1_765_000_000_000 + i, userId: `@alice:${SERVER}`, authenticated: true })),
      remote: [],
    };
    database = await createPostgresDatabase(PG_URL, 'h24rt_read_through');
    await writeSynapsePostgres(database.url, 'current', content);
    await writeSynapseMediaStore(join(dir.path, 'media_store'), content);
    const target = new URL(database.url);
    relay = new Relay({ host: target.hostname, port: Number(target.port || 5432) });
    const relayed = new URL(database.url);
    relayed.hostname = '127.0.0.1';
    relayed.port = String(await relay.listen());
    relayedUrl = relayed.toString();
    relay.cut();
    server = await hsmedia('a', false);
  }, 120_000);

  const hsmedia = (name: string, backfill: boolean): Promise<StartedServer> =>
    startServer(
      testConfig(join(dir.path, name), {
        server_name: SERVER,
        log_level: 'silent',
        auth: { tokens: { alice_token: `@alice:${SERVER}`, admin_token: `@admin:${SERVER}` } },
        admins: [`@admin:${SERVER}`],
        synapse_read_through: { database: { postgres: relayedUrl }, media_store_path: join(dir.path, 'media_store'), backfill: { enabled: backfill, files_per_second: 1000 } },
      }),
    );

  afterAll(async () => {
    await server?.close();
    await backfilling?.close();
    await relay?.close();
    await database?.drop();
    await dir?.cleanup();
  });

  const download = async (mediaId: string, from: StartedServer = server!): Promise<{ status: number; body: Buffer }> => {
    const response = await fetch(`${from.url}/_matrix/client/v1/media/download/${SERVER}/${mediaId}`, { headers: { Authorization: 'Bearer alice_token' } });
    return { status: response.status, body: Buffer.from(await response.arrayBuffer()) };
  };

  it('503 M_UNKNOWN while the database is away, the media once it is back, again after a second outage', async () => {
    const first = await fetch(`${server!.url}/_matrix/client/v1/media/download/${SERVER}/${items[0]!.mediaId}`, { headers: { Authorization: 'Bearer alice_token' } });
    expect(first.status).toBe(503);
    expect(await first.json()).toMatchObject({ errcode: 'M_UNKNOWN' });

    relay.up = true;
    const served = await download(items[0]!.mediaId);
    expect(served.status).toBe(200);
    expect(sha256(served.body)).toBe(sha256(items[0]!.bytes));

    // A second outage, with the pool's connections open: they die under it.
    relay.cut();
    expect((await download(items[1]!.mediaId)).status).toBe(503);
    relay.up = true;
    // The pool may hand out one more dead connection before it notices: asked again, it is served.
    await expect.poll(async () => (await download(items[1]!.mediaId)).status, { timeout: 30_000, interval: 200 }).toBe(200);

  });

  it('the backfill started while the database is away waits, then imports everything once it is back', async () => {
    relay.cut();
    const refusedBefore = relay.refused;
    backfilling = await hsmedia('b', true);
    // The backfill's first attempt meets the outage (nothing else asks the database now).
    await expect.poll(() => relay.refused, { timeout: 60_000, interval: 50 }).toBeGreaterThan(refusedBefore);
    relay.up = true;
    await backfilling.synapseReadThrough!.backfill()!.whenDone();
    const report = (await (await fetch(`${backfilling.url}/_hsmedia/admin/v1/import/synapse`, { headers: { Authorization: 'Bearer admin_token' } })).json()) as Record<string, Record<string, unknown>>;
    expect(report['backfill']).toMatchObject({ done: true, failed: 0, remaining: 0, imported: items.length });
    relay.cut();
    for (const item of items) {
      const answer = await download(item.mediaId, backfilling);
      expect(answer.status).toBe(200);
      expect(sha256(answer.body)).toBe(sha256(item.bytes));
    }
  });
});
