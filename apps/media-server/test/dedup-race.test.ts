import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { ContentAddressedBlobStore, MediaService, type BlobStore } from '@hsmedia/media-core';
import { FsBlobStore } from '@hsmedia/store-fs';
import { createPostgresMetadataStore, type PostgresMetadataStore } from '@hsmedia/store-postgres';
import { openPostgresTestEnv, PG_URL } from '@hsmedia/test-fixtures/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './helpers.js';

// Two instances of the content-addressed store (each its own PostgreSQL pool and service, one
// media directory, one schema), racing on the same bytes: the blob must survive every
// interleaving of "delete the last reference" on one with "upload the same bytes" on the other.
const env = await openPostgresTestEnv('PostgreSQL tests of dedup');
const alice = { userId: '@alice:example.org', isGuest: false };

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/** Objects whose next delete waits for the test (the deletion "in flight"). */
class HeldDeletes extends FsBlobStore {
  held: { started: () => void; release: Promise<void> } | null = null;
  override async delete(blobId: string): Promise<boolean> {
    const held = this.held;
    if (held !== null) {
      this.held = null;
      held.started();
      await held.release;
    }
    return super.delete(blobId);
  }
}

describe.skipIf(env.unavailable !== undefined)('content-addressed blobs shared by two instances on PostgreSQL', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let schema: string;
  const stores: PostgresMetadataStore[] = [];

  beforeAll(async () => {
    dir = await tempDir('h15dedup-race-');
    schema = await env.createSchema();
  }, 60_000);
  afterAll(async () => {
    for (const store of stores) await store.close();
    await env.dispose();
    await dir?.cleanup();
  });

  async function instance(objects = new FsBlobStore({ root: join(dir.path, 'media'), fsync: false })) {
    const metadata = await createPostgresMetadataStore({ url: PG_URL, searchPath: schema, pool: { max: 4 } });
    stores.push(metadata);
    const blobs: BlobStore = new ContentAddressedBlobStore({ objects, references: metadata, deletionLeaseMs: 60_000 });
    const media = new MediaService({ serverName: 'example.org', blobs, metadata, maxUploadBytes: 1 << 20, touchIntervalMs: 0, cache: { maxRecords: 0, maxBlobBytes: 0 } });
    return { metadata, blobs, media, objects };
  }

  async function readBack(media: MediaService, mediaId: string): Promise<string> {
    const handle = await media.getMedia('example.org', mediaId);
    const parts: Uint8Array[] = [];
    for await (const part of await handle.open()) parts.push(part);
    return createHash('sha256').update(Buffer.concat(parts)).digest('hex');
  }

  it('20 concurrent uploads of the same bytes across both instances store one object counted 20 times', async () => {
    const [a, b] = [await instance(), await instance()];
    const bytes = randomBytes(64 * 1024);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const uploads = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).media.upload({ body: once(bytes), requester: alice })));
    expect(new Set(uploads.map((upload) => upload.mediaId)).size).toBe(20);
    const row = (await env.admin.withSchema(schema).table('blob_refs').where({ blob_id: sha256 }).first()) as { ref_count: number; pin_count: number };
    expect({ refs: Number(row.ref_count), pins: Number(row.pin_count) }).toEqual({ refs: 20, pins: 0 });
    expect(await readBack(b.media, uploads[0]!.mediaId)).toBe(sha256);
    for (const upload of uploads) await (upload === uploads[3] ? a : b).media.deleteMedia('example.org', upload.mediaId);
    expect(await a.objects.stat(sha256)).toBeNull();
  }, 60_000);

  it('B uploads the same bytes while A’s deletion of the last reference is in flight: B’s blob survives', async () => {
    const held = new HeldDeletes({ root: join(dir.path, 'media'), fsync: false });
    const [a, b] = [await instance(held), await instance()];
    const bytes = randomBytes(10_000);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const first = await a.media.upload({ body: once(bytes), requester: alice });
    let started!: () => void;
    const deleting = new Promise<void>((resolve) => (started = resolve));
    let release!: () => void;
    held.held = { started, release: new Promise<void>((resolve) => (release = resolve)) };
    const deletion = a.media.deleteMedia('example.org', first.mediaId);
    await deleting;
    const upload = b.media.upload({ body: once(bytes), requester: alice });
    // B's pin is in the ledger (it found the deletion in flight and waits) before A's object goes.
    await expect.poll(async () => Number(((await env.admin.withSchema(schema).table('blob_refs').where({ blob_id: sha256 }).first()) as { pin_count: number }).pin_count), { timeout: 30_000 }).toBe(1);
    release();
    expect(await deletion).toBe(true);
    const second = await upload;
    expect(await readBack(a.media, second.mediaId)).toBe(sha256);
  }, 60_000);

  it('30 rounds of delete-last-reference on A racing an upload of the same bytes on B never lose B’s blob', async () => {
    const [a, b] = [await instance(), await instance()];
    for (let round = 0; round < 30; round++) {
      const bytes = randomBytes(4096);
      const first = await a.media.upload({ body: once(bytes), requester: alice });
      const [, second] = await Promise.all([a.media.deleteMedia('example.org', first.mediaId), b.media.upload({ body: once(bytes), requester: alice })]);
      expect(await readBack(a.media, second.mediaId)).toBe(createHash('sha256').update(bytes).digest('hex'));
    }
  }, 120_000);
});
