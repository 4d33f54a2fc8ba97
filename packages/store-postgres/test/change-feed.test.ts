import type { MediaChange } from '@hsmedia/media-core';
import { createPostgresMetadataStore, mediaChangeChannel, PostgresMediaChangeFeed, type PostgresMetadataStore } from '@hsmedia/store-postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PG_URL, openPostgresTestEnv, uniqueApplicationName } from '@hsmedia/test-fixtures/postgres';

const env = await openPostgresTestEnv();

/** Waits for `condition` (a notification arriving); a guard against hanging, not a timing assertion. */
async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe.skipIf(env.unavailable !== undefined)('PostgresMediaChangeFeed (LISTEN/NOTIFY)', () => {
  let schema: string;
  const stores: PostgresMetadataStore[] = [];
  const feeds: PostgresMediaChangeFeed[] = [];
  const applicationName = uniqueApplicationName('feed');

  beforeAll(async () => {
    schema = await env.createSchema();
  });
  afterEach(async () => {
    for (const feed of feeds.splice(0)) await feed.close();
    for (const store of stores.splice(0)) await store.close();
  });
  afterAll(() => env.dispose());

  /** One "process": its own store (pool) and feed, as two servers would have. */
  async function open(name: string): Promise<{ feed: PostgresMediaChangeFeed; seen: MediaChange[] }> {
    const store = await createPostgresMetadataStore({ url: PG_URL, searchPath: schema, applicationName: `${applicationName}-${name}` });
    stores.push(store);
    const feed = await PostgresMediaChangeFeed.start({ knex: store.knex, channel: mediaChangeChannel(schema), reconnectDelayMs: 20 });
    feeds.push(feed);
    const seen: MediaChange[] = [];
    feed.subscribe((change) => seen.push(change));
    return { feed, seen };
  }

  it('delivers a change published by one process to every process, itself included', async () => {
    const a = await open('a');
    const b = await open('b');
    const change: MediaChange = { kind: 'media', serverName: 'example.org', mediaId: 'abc', cause: 'quarantine' };
    await a.feed.publish(change);
    await waitFor(() => b.seen.length > 0 && a.seen.length > 0, 'the notification');
    expect(b.seen).toEqual([change]);
    expect(a.seen).toEqual([change]);
  });

  it('keeps deployments in different schemas apart', () => {
    expect(mediaChangeChannel(schema)).not.toBe(mediaChangeChannel(`${schema}x`));
    expect(mediaChangeChannel()).toBe('hsmedia_media_changes');
    expect(mediaChangeChannel(schema)).toMatch(/^[a-z_][a-z0-9_]{0,62}$/);
  });

  it('ignores malformed notifications and never publishes a resync', async () => {
    const a = await open('a');
    const channel = mediaChangeChannel(schema);
    for (const payload of ['not json', '{"kind":"resync"}', '{"kind":"media","serverName":"x"}']) {
      await env.admin.raw('select pg_notify(?, ?)', [channel, payload]);
    }
    await a.feed.publish({ kind: 'resync' });
    await a.feed.publish({ kind: 'blocked-hashes' });
    await waitFor(() => a.seen.length > 0, 'the valid notification');
    expect(a.seen).toEqual([{ kind: 'blocked-hashes' }]);
  });

  it('reconnects after its backend is terminated and tells listeners to resync', async () => {
    const a = await open('a');
    const b = await open('b');
    const terminated = (await env.admin.raw(
      "select pg_terminate_backend(pid) as ok from pg_stat_activity where application_name = ? and query ilike 'listen %'",
      [`${applicationName}-b`],
    )) as { rows: { ok: boolean }[] };
    expect(terminated.rows).toEqual([{ ok: true }]);
    await waitFor(() => b.seen.some((change) => change.kind === 'resync'), 'the resync');
    expect(b.feed.reconnections).toBe(1);
    expect(b.feed.listening).toBe(true);
    // Listening again: changes arrive.
    await a.feed.publish({ kind: 'blocked-hashes', sha256: 'ab'.repeat(32) });
    await waitFor(() => b.seen.some((change) => change.kind === 'blocked-hashes'), 'a change after reconnecting');
    expect(a.seen.some((change) => change.kind === 'resync')).toBe(false);
  });

  it('reconnects every time it is cut, and stops when closed', async () => {
    const a = await open('a');
    for (let round = 1; round <= 3; round++) {
      const { rows } = (await env.admin.raw(
        "select pg_terminate_backend(pid) as ok from pg_stat_activity where application_name = ? and query ilike 'listen %'",
        [`${applicationName}-a`],
      )) as { rows: { ok: boolean }[] };
      expect(rows.length).toBeGreaterThanOrEqual(1);
      await waitFor(() => a.feed.reconnections === round && a.feed.listening, `reconnection ${round}`);
    }
    expect(a.seen.filter((change) => change.kind === 'resync')).toHaveLength(3);
    await a.feed.close();
    expect(a.feed.listening).toBe(false);
  });

  it('refuses a channel that is not a plain identifier', async () => {
    const store = await createPostgresMetadataStore({ url: PG_URL, searchPath: schema, migrate: false });
    stores.push(store);
    await expect(PostgresMediaChangeFeed.start({ knex: store.knex, channel: 'bad channel; drop table media' })).rejects.toThrow(TypeError);
    await expect(PostgresMediaChangeFeed.start({ knex: store.knex, reconnectDelayMs: 0 })).rejects.toThrow(TypeError);
  });
});
