import { randomBytes } from 'node:crypto';
import { stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  hasBlobReferenceLedger,
  MediaCatalog,
  MediaImports,
  MediaService,
  OrphanBlobSweep,
  type BlobPutOptions,
  type BlobReferenceLedger,
  type ByteSource,
  type ImportedMediaRecord,
  type MediaMetadataStore,
  type StoredBlob,
} from '@hsmedia/media-core';
import { FsBlobStore } from '@hsmedia/store-fs';
import { createPostgresMetadataStore } from '@hsmedia/store-postgres';
import { createSqliteMetadataStore } from '@hsmedia/store-sqlite';
import { openPostgresTestEnv, PG_URL } from '@hsmedia/test-fixtures/postgres';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { startMaintenance } from '../src/maintenance.js';
import { openStores } from '../src/stores.js';
import { tempDir } from './helpers.js';

// The orphan sweep on a plain (not content-addressed) store: random blob IDs on a real
// FsBlobStore, the reference ledger of a real SQLite or PostgreSQL metadata store. What a
// killed import leaves (bytes stored, no row) goes after the grace period; what a row
// references, what is younger than the grace (a put on its way to its row) and a file
// hard-linked in with an old mtime stay.

const env = await openPostgresTestEnv('PostgreSQL tests of the orphan sweep');
const GRACE_MS = 60_000;
const SERVER = 'example.org';
const alice = { userId: `@alice:${SERVER}`, isGuest: false };

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

const dirs: { cleanup(): Promise<void> }[] = [];
const closers: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const close of closers) await close();
  await env.dispose();
  for (const dir of dirs) await dir.cleanup();
});

type Ledgered = MediaMetadataStore & BlobReferenceLedger;

const backends: { name: string; skip: boolean; open(dir: string): Promise<Ledgered> }[] = [
  {
    name: 'SQLite',
    skip: false,
    open: async (dir) => {
      const store = await createSqliteMetadataStore({ path: join(dir, 'media.sqlite') });
      closers.push(() => store.close());
      return ledgered(store);
    },
  },
  {
    name: 'PostgreSQL',
    skip: env.unavailable !== undefined,
    open: async () => {
      const store = await createPostgresMetadataStore({ url: PG_URL, searchPath: await env.createSchema(), pool: { max: 4 } });
      closers.push(() => store.close());
      return ledgered(store);
    },
  },
];

function ledgered(store: MediaMetadataStore): Ledgered {
  if (!hasBlobReferenceLedger(store)) throw new Error('the store keeps no reference ledger');
  return store;
}

/** The sweep as the server builds it, with "now" at `now`. */
function sweepAt(objects: FsBlobStore, references: BlobReferenceLedger, now: number): OrphanBlobSweep {
  return new OrphanBlobSweep({ objects, references, graceMs: GRACE_MS, clock: { now: () => now } });
}

async function changedAt(objects: FsBlobStore, root: string, blobId: string): Promise<number> {
  const info = await stat(join(root, objects.relativePathOf(blobId)!));
  return Math.max(info.ctimeMs, info.mtimeMs);
}

/**
 * Waits until the filesystem's clock reaches the whole millisecond after `after` (file times tick
 * coarsely, so two files written one after the other may share one): a probe file is rewritten
 * until its ctime is that late. Answers that millisecond.
 */
async function fsClockPast(dir: string, after: number): Promise<number> {
  const probe = join(dir, 'clock-probe');
  for (;;) {
    await writeFile(probe, 'tick');
    const { ctimeMs } = await stat(probe);
    if (ctimeMs >= Math.floor(after) + 1) {
      await unlink(probe);
      return Math.floor(after) + 1;
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
}

function item(mediaId: string): ImportedMediaRecord {
  return { serverName: SERVER, mediaId, contentType: 'application/octet-stream', uploadName: null, userId: alice.userId, createdAt: 1_600_000_000_000, lastAccessAt: null, quarantined: false, protected: false };
}

function catalogOver(blobs: FsBlobStore, records: MediaMetadataStore): MediaCatalog {
  return new MediaCatalog({ serverName: SERVER, blobs, records, thumbnails: records, touchIntervalMs: 0, cache: { maxRecords: 0, maxBlobBytes: 0, thumbnailBytes: 0 } });
}

/** A store that "dies" once a blob is stored: nothing it does afterwards reaches the disk. */
class DyingBlobStore extends FsBlobStore {
  dead = false;
  override async put(source: ByteSource, options?: BlobPutOptions): Promise<StoredBlob> {
    const stored = await super.put(source, options);
    this.dead = true;
    return stored;
  }
  override async delete(blobId: string): Promise<boolean> {
    if (this.dead) throw new Error('killed');
    return super.delete(blobId);
  }
}

/** `records` whose inserts fail once `blobs` died: the row of the item in flight is never written. */
function dyingRecords(records: MediaMetadataStore, blobs: DyingBlobStore): MediaMetadataStore {
  return new Proxy(records, {
    get(target, key, receiver) {
      const value: unknown = Reflect.get(target, key, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (blobs.dead && typeof key === 'string' && /^(insert|publish|upsert)/i.test(key)) return Promise.reject(new Error('killed'));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

describe.each(backends)('the orphan sweep of a plain store on $name', (backend) => {
  it.skipIf(backend.skip)('removes an old unreferenced blob; keeps a referenced one, a fresh one and a linked file with an old mtime', async () => {
    const dir = await tempDir('hsmedia-orphan-plain-');
    dirs.push(dir);
    const root = join(dir.path, 'media');
    const objects = new FsBlobStore({ root, fsync: false });
    const metadata = await backend.open(dir.path);
    const media = new MediaService({ serverName: SERVER, blobs: objects, metadata, maxUploadBytes: 1 << 20, touchIntervalMs: 0, cache: { maxRecords: 0, maxBlobBytes: 0 } });

    const uploaded = await media.upload({ body: once(randomBytes(300)), requester: alice });
    const referenced = (await metadata.getMedia(SERVER, uploaded.mediaId))!.blobId!;
    const orphan = await objects.put(once(randomBytes(200)));
    const oldFile = join(dir.path, 'synapse-file');
    await writeFile(oldFile, randomBytes(100));
    const years = new Date('2019-01-01T00:00:00Z');
    await utimes(oldFile, years, years);
    const oldEnough = Math.max(await changedAt(objects, root, referenced), await changedAt(objects, root, orphan.blobId));

    // Everything below enters the store after `oldEnough`.
    const cut = await fsClockPast(dir.path, oldEnough);
    const fresh = await objects.put(once(randomBytes(250)));
    const linked = (await objects.linkFile(oldFile))!;
    expect(linked).not.toBeNull();
    expect((await stat(join(root, objects.relativePathOf(linked.blobId)!))).mtimeMs).toBe(years.getTime());
    const freshFrom = Math.min(await changedAt(objects, root, fresh.blobId), await changedAt(objects, root, linked.blobId));
    expect(freshFrom).toBeGreaterThanOrEqual(cut);

    // "Now" is one grace period past a moment between the two groups (the clock gives whole milliseconds).
    const sweep = sweepAt(objects, metadata, cut + GRACE_MS);
    expect(await sweep.sweep({ dryRun: true })).toEqual({ unreferenced: 0, unknown: 1, removed: 0 });
    expect(await objects.stat(orphan.blobId)).not.toBeNull();
    expect(await sweep.sweep()).toEqual({ unreferenced: 0, unknown: 1, removed: 1 });
    expect(await objects.stat(orphan.blobId)).toBeNull();
    expect(await objects.stat(referenced)).not.toBeNull();
    expect(await objects.stat(fresh.blobId)).not.toBeNull();
    expect(await objects.stat(linked.blobId)).not.toBeNull();
    expect((await stat(oldFile)).isFile()).toBe(true);

    // Once past the grace the young ones go too (nothing names them); the referenced one stays, and serves.
    expect(await sweepAt(objects, metadata, Date.now() + GRACE_MS).sweep()).toEqual({ unreferenced: 0, unknown: 2, removed: 2 });
    expect(await objects.stat(fresh.blobId)).toBeNull();
    expect(await objects.stat(linked.blobId)).toBeNull();
    expect((await stat(oldFile)).isFile()).toBe(true);
    const handle = await media.getMedia(SERVER, uploaded.mediaId);
    let served = 0;
    for await (const part of await handle.open()) served += part.byteLength;
    expect(served).toBe(300);

    // A deleted record's blob leaves a ledger row with no reference; the sweep drops it (the object is already gone).
    expect(await media.deleteMedia(SERVER, uploaded.mediaId)).toBe(true);
    expect(await objects.stat(referenced)).toBeNull();
    expect(await metadata.listUnreferencedBlobs(Number.MAX_SAFE_INTEGER, '', 10)).toEqual([referenced]);
    expect(await sweepAt(objects, metadata, Date.now() + GRACE_MS).sweep()).toEqual({ unreferenced: 1, unknown: 0, removed: 0 });
    expect(await metadata.listUnreferencedBlobs(Number.MAX_SAFE_INTEGER, '', 10)).toEqual([]);
  }, 60_000);

  it.skipIf(backend.skip)('a killed import leaves its blob without a row: the sweep takes it after the grace, and the rerun imports the item', async () => {
    const dir = await tempDir('hsmedia-orphan-killed-');
    dirs.push(dir);
    const root = join(dir.path, 'media');
    const metadata = await backend.open(dir.path);
    const bytes = randomBytes(4096);

    const dying = new DyingBlobStore({ root, fsync: false });
    const killed = new MediaImports({ catalog: catalogOver(dying, dyingRecords(metadata, dying)), actor: 'test' });
    await expect(killed.importMedia(item('killedItem'), once(bytes))).rejects.toThrow('killed');
    const objects = new FsBlobStore({ root, fsync: false });
    const left: string[] = [];
    for await (const listed of objects.listBlobs()) left.push(listed.blobId);
    expect(left).toHaveLength(1);
    expect(await metadata.getMedia(SERVER, 'killedItem')).toBeNull();

    // The rerun imports the item again, into a new blob.
    const rerun = new MediaImports({ catalog: catalogOver(objects, metadata), actor: 'test' });
    expect(await rerun.importMedia(item('killedItem'), once(bytes))).toBe('imported');
    const record = (await metadata.getMedia(SERVER, 'killedItem'))!;
    expect(record.blobId).not.toBe(left[0]);

    // Within the grace the leftover is spared (as an import in flight would be); past it, it goes.
    const leftAt = await changedAt(objects, root, left[0]!);
    expect(await sweepAt(objects, metadata, Math.floor(leftAt) + GRACE_MS / 2).sweep()).toEqual({ unreferenced: 0, unknown: 0, removed: 0 });
    expect(await sweepAt(objects, metadata, Date.now() + GRACE_MS).sweep()).toEqual({ unreferenced: 0, unknown: 1, removed: 1 });
    expect(await objects.stat(left[0]!)).toBeNull();
    const all: string[] = [];
    for await (const listed of objects.listBlobs()) all.push(listed.blobId);
    expect(all).toEqual([record.blobId]);
  }, 60_000);
});

describe('the server without dedup', () => {
  it('runs the orphan sweep on its maintenance schedule (dedup.orphan_sweep_interval, dedup.orphan_grace)', async () => {
    const dir = await tempDir('hsmedia-orphan-schedule-');
    dirs.push(dir);
    const parsed = parseConfig(
      {
        server_name: SERVER,
        database: { sqlite: { path: join(dir.path, 'media.sqlite') } },
        media_store: { filesystem: { path: join(dir.path, 'media') } },
        dedup: { orphan_grace: '1ms', orphan_sweep_interval: '20ms' },
      },
      dir.path,
    );
    if (!parsed.ok) throw new Error(JSON.stringify(parsed));
    expect(parsed.config.dedup.enabled).toBe(false);
    const stores = await openStores(parsed.config);
    closers.push(() => stores.close());
    expect(stores.orphanSweep).toBeDefined();
    const orphan = await stores.blobs.put(once(randomBytes(100)));
    // Waits for the event: the scheduled run that removed the orphan (each run comes an interval, 20 times the grace, after the last).
    let removed: () => void = () => undefined;
    const swept = new Promise<void>((resolve) => (removed = resolve));
    const logger = {
      debug() {},
      warn() {},
      error() {},
      info(obj: object) {
        const fields = obj as { job?: string; removed?: number };
        if (fields.job === 'blob-orphan-sweep' && fields.removed === 1) removed();
      },
    };
    const maintenance = await startMaintenance(parsed.config, stores, logger);
    try {
      await swept;
      expect(await stores.blobs.stat(orphan.blobId)).toBeNull();
    } finally {
      await maintenance.scheduler.close();
    }
  }, 60_000);
});
