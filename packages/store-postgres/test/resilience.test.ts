import type { MediaRecord } from '@hsmedia/media-core';
import { createPostgresMetadataStore, type PostgresMetadataStore } from '@hsmedia/store-postgres';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startLoopbackProxy } from './loopback-proxy.js';
import { PG_URL, openPostgresTestEnv, uniqueApplicationName } from '@hsmedia/test-fixtures/postgres';

const env = await openPostgresTestEnv();
const schema = env.unavailable === undefined ? await env.createSchema() : 't_unused';
afterAll(() => env.dispose());

const RECORD: MediaRecord = {
  serverName: 'example.org',
  mediaId: 'resilient',
  blobId: 'blob_1',
  contentType: 'image/png',
  uploadName: 'cat.png',
  size: 1234,
  sha256: 'f'.repeat(64),
  userId: '@alice:example.org',
  createdAt: 1_700_000_000_000,
  uploadedAt: 1_700_000_000_001,
  expiresAt: null,
  authenticated: true,
  quarantined: false,
  lastAccessAt: null,
};

/** Polls `condition` until it holds; a guard against hanging, not a timing assertion. */
async function waitFor(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** `concurrency` loops of getMedia until stopped, counting what happened. */
function startLoad(store: PostgresMetadataStore, concurrency: number) {
  const state = { stopped: false, successes: 0, failures: [] as unknown[] };
  const workers = Array.from({ length: concurrency }, async () => {
    while (!state.stopped) {
      try {
        const record = await store.getMedia(RECORD.serverName, RECORD.mediaId);
        if (record?.mediaId !== RECORD.mediaId) throw new Error('getMedia returned the wrong record');
        state.successes += 1;
      } catch (error) {
        state.failures.push(error);
        // Failing calls can be immediate; yield so the loop cannot starve I/O.
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    }
  });
  return {
    state,
    async stop(): Promise<void> {
      state.stopped = true;
      await Promise.all(workers);
    },
  };
}

async function sessionPids(applicationName: string): Promise<number[]> {
  const result = (await env.admin.raw('select pid from pg_stat_activity where application_name = ?', [
    applicationName,
  ])) as { rows: { pid: number }[] };
  return result.rows.map((row) => row.pid);
}

describe.skipIf(env.unavailable !== undefined)('PostgresMetadataStore resilience', () => {
  // A pg client emitting 'error' without a listener, or a rejection nobody
  // handles, would surface here (and kill a real server).
  const unhandled: unknown[] = [];
  const onUnhandled = (error: unknown): void => {
    unhandled.push(error);
  };
  const stores: PostgresMetadataStore[] = [];
  // knex reports each failed connection attempt; collected instead of printed.
  const warnings: string[] = [];
  const log = {
    warn: (_context: object, message?: string) => warnings.push(message ?? ''),
    error: (_context: object, message?: string) => warnings.push(message ?? ''),
  };
  beforeEach(() => {
    process.on('uncaughtException', onUnhandled);
    process.on('unhandledRejection', onUnhandled);
  });
  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
    warnings.length = 0;
    process.off('uncaughtException', onUnhandled);
    process.off('unhandledRejection', onUnhandled);
    expect(unhandled.splice(0)).toEqual([]);
  });

  async function openStore(options: { applicationName: string; url?: string; statementTimeoutMs?: number }) {
    const store = await createPostgresMetadataStore({
      url: options.url ?? PG_URL,
      searchPath: schema,
      tablePrefix: 'resilience_',
      applicationName: options.applicationName,
      pool: { max: 4 },
      acquireConnectionTimeoutMs: 2_000,
      connectTimeoutMs: 2_000,
      log,
      ...(options.statementTimeoutMs !== undefined ? { statementTimeoutMs: options.statementTimeoutMs } : {}),
    });
    stores.push(store);
    await store.insertMedia(RECORD);
    return store;
  }

  it('survives pg_terminate_backend of its sessions mid-run: reads are retried on fresh sessions, other statements reject', async () => {
    const applicationName = uniqueApplicationName('terminate');
    const store = await openStore({ applicationName });
    const load = startLoad(store, 4);
    await waitFor(() => load.state.successes >= 20, 'the load to run');

    // A statement certain to be in flight when the sessions die (raw SQL, not a store read: never retried).
    const sleeping = store.knex.raw('select pg_sleep(20)').then(
      () => 'completed',
      (error: unknown) => error,
    );
    await waitFor(async () => {
      const result = (await env.admin.raw(
        "select count(*)::int as n from pg_stat_activity where application_name = ? and state = 'active' and query like 'select pg_sleep%'",
        [applicationName],
      )) as { rows: { n: number }[] };
      return (result.rows[0]?.n ?? 0) > 0;
    }, 'pg_sleep to start');

    const terminatedPids = await sessionPids(applicationName);
    expect(terminatedPids.length).toBeGreaterThan(0);
    await env.admin.raw('select pg_terminate_backend(pid) from pg_stat_activity where application_name = ?', [
      applicationName,
    ]);

    const sleepOutcome = await sleeping;
    expect(sleepOutcome).toBeInstanceOf(Error);
    expect((sleepOutcome as { code?: unknown }).code).toBe('57P01'); // admin_shutdown

    const successesAtTermination = load.state.successes;
    await waitFor(() => load.state.successes >= successesAtTermination + 50, 'the load to continue');
    await load.stop();
    // Every read in flight or issued at the termination was retried on a
    // session opened after it (the terminating statement's snapshot of
    // pg_stat_activity cannot include those), so none failed.
    expect(load.state.failures).toEqual([]);

    // The store reconnected by itself: new sessions, none of the terminated ones.
    const pidsNow = await sessionPids(applicationName);
    expect(pidsNow.length).toBeGreaterThan(0);
    expect(pidsNow.filter((pid) => terminatedPids.includes(pid))).toEqual([]);
  });

  it('survives its idle connections being terminated: the next read answers on a fresh session', async () => {
    const applicationName = uniqueApplicationName('idle');
    const store = await openStore({ applicationName });
    await Promise.all(Array.from({ length: 4 }, () => store.getMedia(RECORD.serverName, RECORD.mediaId)));
    // The pool may still be opening a connection the burst asked for; let it settle.
    const pool = store.knex.client.pool as { numPendingCreates(): number };
    await waitFor(() => pool.numPendingCreates() === 0, 'the pool to settle');
    const idlePids = await sessionPids(applicationName);
    expect(idlePids.length).toBeGreaterThan(0);

    await env.admin.raw('select pg_terminate_backend(pid) from pg_stat_activity where application_name = ?', [
      applicationName,
    ]);
    await waitFor(
      async () => (await sessionPids(applicationName)).every((pid) => !idlePids.includes(pid)),
      'the sessions to end',
    );

    // Whether or not the client has yet read the termination notices of its
    // idle sockets (under load it may not have: the first query then fails
    // with 57P01 or "Connection terminated unexpectedly"), the read answers:
    // a lost connection is retried once on a session opened after the loss.
    expect(await store.getMedia(RECORD.serverName, RECORD.mediaId)).toStrictEqual(RECORD);
    const pidsNow = await sessionPids(applicationName);
    expect(pidsNow.filter((pid) => idlePids.includes(pid))).toEqual([]);
  });

  it('a read whose session is terminated under it answers from a fresh session; a write rejects and is not retried', async () => {
    const applicationName = uniqueApplicationName('locked');
    const store = await openStore({ applicationName });
    const table = 'resilience_media';

    // An ACCESS EXCLUSIVE lock held by another session parks the store's
    // statement (reads included) until we terminate its session: the
    // statement is certainly in flight when its connection dies.
    async function terminateWhileBlocked<T>(call: () => Promise<T>): Promise<{ outcome: T | Error; retriedBehindLock: boolean }> {
      const locker = await env.admin.transaction();
      try {
        await locker.raw(`lock table ${schema}.${table} in access exclusive mode`);
        const running = call().catch((error: unknown) => error as Error);
        let blockedPid = 0;
        await waitFor(async () => {
          const result = (await env.admin.raw(
            "select pid from pg_stat_activity where application_name = ? and wait_event_type = 'Lock'",
            [applicationName],
          )) as { rows: { pid: number }[] };
          blockedPid = result.rows[0]?.pid ?? 0;
          return blockedPid !== 0;
        }, 'the statement to wait for the lock');
        await env.admin.raw('select pg_terminate_backend(?)', [blockedPid]);
        // A retry, if any, opens a new session and parks behind the lock again.
        let retriedBehindLock = false;
        await waitFor(async () => {
          const settled = await Promise.race([running.then(() => true), new Promise((resolve) => setTimeout(resolve, 10, false))]);
          if (settled) return true;
          const result = (await env.admin.raw(
            "select count(*)::int as n from pg_stat_activity where application_name = ? and wait_event_type = 'Lock' and pid <> ?",
            [applicationName, blockedPid],
          )) as { rows: { n: number }[] };
          retriedBehindLock = (result.rows[0]?.n ?? 0) > 0;
          return retriedBehindLock;
        }, 'the call to settle or be retried');
        await locker.commit();
        return { outcome: await running, retriedBehindLock };
      } finally {
        if (!locker.isCompleted()) await locker.rollback();
      }
    }

    const read = await terminateWhileBlocked(() => store.getMedia(RECORD.serverName, RECORD.mediaId));
    expect(read.retriedBehindLock).toBe(true);
    expect(read.outcome).toStrictEqual(RECORD);

    const write = await terminateWhileBlocked(() => store.deleteMedia(RECORD.serverName, RECORD.mediaId));
    expect(write.retriedBehindLock).toBe(false);
    expect(write.outcome).toBeInstanceOf(Error);
    expect((write.outcome as { code?: unknown }).code).toBe('57P01');
    // The terminated delete was rolled back with its session, and not run again.
    expect(await store.getMedia(RECORD.serverName, RECORD.mediaId)).toStrictEqual(RECORD);
  });

  it('while the database is unreachable calls reject cleanly; afterwards the same store works again', async () => {
    const proxy = await startLoopbackProxy(PG_URL);
    try {
      const applicationName = uniqueApplicationName('outage');
      const store = await openStore({ applicationName, url: proxy.url });
      const load = startLoad(store, 4);
      await waitFor(() => load.state.successes >= 20, 'the load to run');

      proxy.down();
      const failuresAtOutage = load.state.failures.length;
      await waitFor(() => load.state.failures.length >= failuresAtOutage + 20, 'calls to fail during the outage');
      // Nothing gets through while down.
      const during = await Promise.allSettled(
        Array.from({ length: 8 }, () => store.getMedia(RECORD.serverName, RECORD.mediaId)),
      );
      expect(during.map((outcome) => outcome.status)).toEqual(Array(8).fill('rejected'));
      for (const outcome of during) expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(Error);

      expect(warnings.some((warning) => warning.startsWith('Acquire connection error'))).toBe(true);
      proxy.up();
      const successesAtRecovery = load.state.successes;
      await waitFor(() => load.state.successes >= successesAtRecovery + 50, 'the load to recover');
      await load.stop();
      for (const failure of load.state.failures) expect(failure).toBeInstanceOf(Error);
      expect(await store.getMedia(RECORD.serverName, RECORD.mediaId)).toStrictEqual(RECORD);
    } finally {
      await proxy.close();
    }
  });

  it('cancels a statement that exceeds statementTimeoutMs, with an error, and stays usable', async () => {
    const applicationName = uniqueApplicationName('timeout');
    const store = await openStore({ applicationName, statementTimeoutMs: 100 });
    const shown = (await store.knex.raw('show statement_timeout')) as { rows: { statement_timeout: string }[] };
    expect(shown.rows[0]?.statement_timeout).toBe('100ms');

    const failure = await store.knex.raw('select pg_sleep(10)').then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(Error);
    expect((failure as { code?: unknown }).code).toBe('57014'); // query_canceled
    expect((failure as Error).message).toMatch(/statement timeout/);
    expect(await store.getMedia(RECORD.serverName, RECORD.mediaId)).toStrictEqual(RECORD);
  });

  it('statementTimeoutMs: 0 disables the timeout', async () => {
    const store = await openStore({ applicationName: uniqueApplicationName('notimeout'), statementTimeoutMs: 0 });
    const shown = (await store.knex.raw('show statement_timeout')) as { rows: { statement_timeout: string }[] };
    expect(shown.rows[0]?.statement_timeout).toBe('0');
  });
});
