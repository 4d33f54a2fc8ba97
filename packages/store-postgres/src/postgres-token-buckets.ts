import type { RateLimitDecision } from '@hsmedia/media-core';
import type { Knex } from 'knex';

/** A bucket's shape: refilled at `perSecond` tokens, holding at most `burst`. */
export interface TokenBucketRate {
  readonly perSecond: number;
  readonly burst: number;
}

/** Options for {@link PostgresTokenBuckets}. */
export interface PostgresTokenBucketsOptions {
  /** The store's knex instance (`PostgresMetadataStore.knex`), migrated to 0011. */
  readonly knex: Knex;
  /** The store's table prefix; default none. */
  readonly tablePrefix?: string;
}

interface BucketRow {
  readonly tokens: number;
  readonly last_allowed: boolean;
}

// One statement per take: read, refill, charge and write under the row lock of the upsert, on
// the database's clock, so every process sharing the table draws from one budget.
const TAKE_SQL = `
with now as (select cast(floor(extract(epoch from clock_timestamp()) * 1000) as bigint) as ms)
insert into :table: as b (key, tokens, updated_at, last_allowed)
select :key, cast(:burst as float8) - cast(:cost as float8), now.ms, true from now
on conflict (key) do update set
  tokens = case
    when least(cast(:burst as float8), b.tokens + greatest(0, excluded.updated_at - b.updated_at) * cast(:rate as float8)) >= cast(:cost as float8)
    then least(cast(:burst as float8), b.tokens + greatest(0, excluded.updated_at - b.updated_at) * cast(:rate as float8)) - cast(:cost as float8)
    else least(cast(:burst as float8), b.tokens + greatest(0, excluded.updated_at - b.updated_at) * cast(:rate as float8))
  end,
  last_allowed =
    least(cast(:burst as float8), b.tokens + greatest(0, excluded.updated_at - b.updated_at) * cast(:rate as float8)) >= cast(:cost as float8),
  updated_at = greatest(b.updated_at, excluded.updated_at)
returning tokens, last_allowed`;

const ALLOWED: RateLimitDecision = Object.freeze({ allowed: true });

/**
 * Token buckets in a PostgreSQL table shared by every process of a
 * deployment (the rate limits when no Redis is configured): the same
 * semantics as `TokenBucketRateLimiter` of `@hsmedia/media-core`, one atomic
 * statement per take, the database's clock.
 */
export class PostgresTokenBuckets {
  readonly #knex: Knex;
  readonly #table: string;

  constructor(options: PostgresTokenBucketsOptions) {
    this.#knex = options.knex;
    this.#table = `${options.tablePrefix ?? ''}rate_limit_buckets`;
  }

  /** Takes `cost` tokens (a cost above the burst costs the whole bucket) from bucket `key`. */
  async take(key: string, rate: TokenBucketRate, cost: number): Promise<RateLimitDecision> {
    const needed = Math.min(cost, rate.burst);
    const ratePerMs = rate.perSecond / 1000;
    const result = (await this.#knex.raw(TAKE_SQL, {
      table: this.#table,
      key,
      burst: rate.burst,
      cost: needed,
      rate: ratePerMs,
    })) as { rows: BucketRow[] };
    const row = result.rows[0]!;
    if (row.last_allowed) return ALLOWED;
    const retryAfterMs = Math.ceil((needed - Number(row.tokens)) / ratePerMs - 1e-6);
    return { allowed: false, retryAfterMs: Math.max(1, retryAfterMs) };
  }

  /** Deletes buckets untouched for `idleMs` (full again by then, so forgetting them changes nothing). */
  async sweep(idleMs: number): Promise<number> {
    return this.#knex(this.#table)
      .where('updated_at', '<', this.#knex.raw('floor(extract(epoch from clock_timestamp()) * 1000)::bigint - ?', [idleMs]))
      .delete();
  }
}
