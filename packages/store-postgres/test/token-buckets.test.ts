import { createPostgresMetadataStore, PostgresTokenBuckets, type PostgresMetadataStore } from '@hsmedia/store-postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PG_URL, openPostgresTestEnv } from '@hsmedia/test-fixtures/postgres';

const env = await openPostgresTestEnv();

describe.skipIf(env.unavailable !== undefined)('PostgresTokenBuckets', () => {
  let schema: string;
  const stores: PostgresMetadataStore[] = [];

  beforeAll(async () => {
    schema = await env.createSchema();
    // Two stores (two pools) stand for two processes.
    for (let i = 0; i < 2; i++) stores.push(await createPostgresMetadataStore({ url: PG_URL, searchPath: schema, pool: { max: 5 } }));
  });
  afterAll(async () => {
    for (const store of stores) await store.close();
    await env.dispose();
  });

  // One token per 1000 s: nothing refills while the test runs, whatever the machine's speed.
  const SLOW = { perSecond: 0.001, burst: 5 };

  it('passes one burst, then refuses with the time until the next token', async () => {
    const buckets = new PostgresTokenBuckets({ knex: stores[0]!.knex });
    for (let i = 0; i < SLOW.burst; i++) expect(await buckets.take('a', SLOW, 1)).toEqual({ allowed: true });
    const refused = await buckets.take('a', SLOW, 1);
    expect(refused.allowed).toBe(false);
    expect(refused.allowed === false && refused.retryAfterMs).toBeGreaterThan(990_000);
    expect(await buckets.take('b', SLOW, 1)).toEqual({ allowed: true });
  });

  it('is one budget for concurrent takes from two pools: exactly the burst passes', async () => {
    const [first, second] = stores.map((store) => new PostgresTokenBuckets({ knex: store.knex }));
    const decisions = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? first! : second!).take('shared', SLOW, 1)));
    expect(decisions.filter((decision) => decision.allowed)).toHaveLength(SLOW.burst);
  });

  it('charges a cost above the burst as the whole bucket, and a refused take costs nothing', async () => {
    const buckets = new PostgresTokenBuckets({ knex: stores[0]!.knex });
    expect(await buckets.take('big', SLOW, 1_000)).toEqual({ allowed: true });
    expect((await buckets.take('big', SLOW, 1)).allowed).toBe(false);
    expect(await buckets.take('part', SLOW, 3)).toEqual({ allowed: true });
    expect((await buckets.take('part', SLOW, 3)).allowed).toBe(false);
    expect(await buckets.take('part', SLOW, 2)).toEqual({ allowed: true });
  });

  it('sweeps idle buckets only', async () => {
    const buckets = new PostgresTokenBuckets({ knex: stores[0]!.knex });
    await buckets.take('idle', SLOW, 1);
    expect(await buckets.sweep(3_600_000)).toBe(0);
    await env.admin.withSchema(schema).table('rate_limit_buckets').where({ key: 'idle' }).update({ updated_at: 0 });
    expect(await buckets.sweep(3_600_000)).toBe(1);
  });
});
