import { fork, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TokenBucketRateLimiter, type MediaChange } from '@hsmedia/media-core';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IpcMediaChangeFeed, IpcTokenBuckets, type WorkerChannel } from '../src/cluster-ipc.js';
import { createLogger } from '../src/logger.js';
import { SharedLimitsHealth, SharedRateLimiter } from '../src/shared-limits.js';
import { LogSink, tempDir } from './helpers.js';

// The worker side of the supervisor's IPC (cluster-ipc.ts) over a real IPC channel: this test
// process plays the worker, a forked child the supervisor. The child is scripted: it answers
// nothing (a supervisor stuck or gone), or sends what the test asks it to.

const SILENT_SUPERVISOR = `process.on('message', (message) => { if (message && message.type === 'say') for (const m of message.messages) process.send(m); });`;

let dir: Awaited<ReturnType<typeof tempDir>>;
let supervisor: ChildProcess;
let channel: WorkerChannel;

beforeAll(async () => {
  dir = await tempDir('hsmedia-ipc-');
  const script = join(dir.path, 'supervisor.cjs');
  await writeFile(script, SILENT_SUPERVISOR);
  supervisor = fork(script, [], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
  await new Promise<void>((resolve) => supervisor.once('spawn', resolve));
  channel = supervisor as unknown as WorkerChannel;
});

afterAll(async () => {
  if (supervisor.exitCode === null) {
    supervisor.kill('SIGTERM');
    await new Promise((resolve) => supervisor.once('exit', resolve));
  }
  await dir?.cleanup();
});

describe('IpcTokenBuckets', () => {
  it('a supervisor that does not answer: the draw fails after a second, and the limiter falls back to its own bucket, logs once, sets the gauge', async () => {
    const buckets = new IpcTokenBuckets(channel);
    const sink = new LogSink();
    const registry = new Registry();
    const health = new SharedLimitsHealth('supervisor', createLogger({ level: 'info', destination: sink }), registry);
    const limiter = new SharedRateLimiter('download', { perSecond: 0.01, burst: 2 }, buckets, health, new TokenBucketRateLimiter({ perSecond: 0.01, burst: 2 }));
    const decisions = await Promise.all([limiter.take('@alice:example.org'), limiter.take('@alice:example.org'), limiter.take('@alice:example.org')]);
    // This process's own bucket of 2: two pass, the third is refused; nothing throws.
    expect(decisions.map((decision) => decision.allowed)).toEqual([true, true, false]);
    expect(health.degraded).toBe(true);
    expect(await registry.getSingleMetricAsString('hsmedia_shared_limits_degraded')).toMatch(/ 1$/m);
    expect(sink.lines.filter((line) => String(line['msg']).startsWith('shared rate limits unavailable'))).toHaveLength(1);
    buckets.close();
  }, 30_000);

  it('answers from the supervisor are paired with their draws by id; unknown ids are ignored', async () => {
    const buckets = new IpcTokenBuckets(channel);
    const rate = { perSecond: 1, burst: 5 };
    const first = buckets.take('download:@alice:example.org', rate, 1);
    const second = buckets.take('download:@bob:example.org', rate, 1);
    // The scripted supervisor answers the second draw first, and one draw nobody made.
    supervisor.send({
      type: 'say',
      messages: [
        { type: 'hsmedia:taken', id: 2, allowed: false, retryAfterMs: 1500 },
        { type: 'hsmedia:taken', id: 99, allowed: true, retryAfterMs: 0 },
        { type: 'hsmedia:taken', id: 1, allowed: true, retryAfterMs: 0 },
      ],
    });
    expect(await first).toEqual({ allowed: true });
    expect(await second).toEqual({ allowed: false, retryAfterMs: 1500 });
    buckets.close();
  });

  it('without a channel to the supervisor a draw fails at once', async () => {
    const closed: WorkerChannel = { send: undefined, on: () => undefined, off: () => undefined };
    await expect(new IpcTokenBuckets(closed).take('k', { perSecond: 1, burst: 1 }, 1)).rejects.toThrow(/no IPC channel/);
  });
});

describe('IpcMediaChangeFeed', () => {
  it('delivers changes relayed by the supervisor and drops malformed ones (and resyncs, which are never relayed)', async () => {
    const feed = new IpcMediaChangeFeed(channel);
    const heard: MediaChange[] = [];
    feed.subscribe((change) => heard.push(change));
    const valid = { kind: 'media', serverName: 'example.org', mediaId: 'abc', cause: 'quarantine' };
    supervisor.send({
      type: 'say',
      messages: [
        { type: 'hsmedia:change', change: { kind: 'media', serverName: 'example.org', mediaId: '', cause: 'quarantine' } },
        { type: 'hsmedia:change', change: { kind: 'resync' } },
        { type: 'hsmedia:change', change: 'not a change' },
        { type: 'hsmedia:change', change: valid },
      ],
    });
    await expect.poll(() => heard.length).toBe(1);
    expect(heard).toEqual([valid]);
    // A change published here reaches this process's listeners too.
    await feed.publish({ kind: 'blocked-hashes' });
    expect(heard).toEqual([valid, { kind: 'blocked-hashes' }]);
    feed.close();
  });
});
