import { errors, isMatrixError } from '@hsmedia/errors';
import type { Requester } from '@hsmedia/runtime';
import { describe, expect, it } from 'vitest';
import { MediaService } from './media-service.js';
import { ContentAddressedBlobStore } from './content-addressed-blob-store.js';
import { MemoryBlobStore, MemoryMetadataStore } from './memory/index.js';
import type { MediaCandidate } from './ports/index.js';

// The catalog with a content-addressed blob store (`ContentAddressedBlobStore` over the memory
// stores): identical bytes share one blob, so a blob is deleted only when no record references
// it, and a blob that is refused or loses a race is dropped only when nothing else uses it.

const alice: Requester = { userId: '@alice:example.org', isGuest: false };
async function* bytes(text: string): AsyncGenerator<Uint8Array> {
  yield new TextEncoder().encode(text);
}

function setup(admit?: (candidate: MediaCandidate) => Promise<void>) {
  const blobs = new MemoryBlobStore();
  const metadata = new MemoryMetadataStore();
  const media = new MediaService({
    serverName: 'example.org',
    blobs: new ContentAddressedBlobStore({ objects: blobs, references: metadata }),
    metadata,
    maxUploadBytes: 1024,
    touchIntervalMs: 0,
    ...(admit === undefined ? {} : { admission: { admit } }),
  });
  return { blobs, metadata, media };
}

describe('MediaCatalog with a content-addressed blob store', () => {
  it('keeps a shared blob until the last record that uses it is deleted', async () => {
    const { blobs, media } = setup();
    const first = await media.upload({ body: bytes('same'), requester: alice });
    const second = await media.upload({ body: bytes('same'), requester: alice });
    expect(blobs.blobCount).toBe(1);
    expect(await media.deleteMedia('example.org', first.mediaId)).toBe(true);
    expect(blobs.blobCount).toBe(1);
    const handle = await media.getMedia('example.org', second.mediaId);
    expect(new TextDecoder().decode((await handle.readSmall()) ?? undefined)).toBe('same');
    expect(await media.deleteMedia('example.org', second.mediaId)).toBe(true);
    expect(blobs.blobCount).toBe(0);
  });

  it('a refused upload of bytes another record uses does not take that record’s blob with it', async () => {
    let refuse = false;
    const { blobs, media, metadata } = setup(async () => {
      if (refuse) throw errors.forbidden('Refused');
    });
    const kept = await media.upload({ body: bytes('shared bytes'), requester: alice });
    refuse = true;
    const error = await media.upload({ body: bytes('shared bytes'), requester: alice }).catch((e: unknown) => e);
    expect(isMatrixError(error) && error.httpStatus).toBe(403);
    expect(blobs.blobCount).toBe(1);
    expect((await metadata.summarizeMedia({})).count).toBe(1);
    expect((await media.getMedia('example.org', kept.mediaId)).size).toBe(12);
  });

  it('a refused upload of new bytes leaves nothing behind', async () => {
    const { blobs, metadata, media } = setup(async () => {
      throw errors.forbidden('Refused');
    });
    await expect(media.upload({ body: bytes('fresh'), requester: alice })).rejects.toMatchObject({ httpStatus: 403 });
    expect(blobs.blobCount).toBe(0);
    expect((await metadata.summarizeMedia({})).count).toBe(0);
  });
});

/** Objects whose deletes wait until the test lets them go: a deletion "in flight". */
class HeldDeletes extends MemoryBlobStore {
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

describe('ContentAddressedBlobStore protocol', () => {
  it('stores each distinct content once, under its SHA-256', async () => {
    const objects = new MemoryBlobStore();
    const metadata = new MemoryMetadataStore();
    const blobs = new ContentAddressedBlobStore({ objects, references: metadata });
    const first = await blobs.put(bytes('x'.repeat(100)));
    const second = await blobs.put(bytes('x'.repeat(100)));
    expect(second.blobId).toBe(first.blobId);
    expect(first.blobId).toBe(first.sha256);
    expect(objects.blobCount).toBe(1);
  });

  it('a put of the same bytes while the last reference’s deletion is in flight keeps the blob', async () => {
    const objects = new HeldDeletes();
    let sawDeletion!: () => void;
    const putSawDeletion = new Promise<void>((resolve) => (sawDeletion = resolve));
    const metadata = new (class extends MemoryMetadataStore {
      override async pinBlob(blobId: string, size: number, now: number, staleBefore: number) {
        const answer = await super.pinBlob(blobId, size, now, staleBefore);
        if (answer.deletionInFlight) sawDeletion();
        return answer;
      }
    })();
    const blobs = new ContentAddressedBlobStore({ objects, references: metadata });
    const media = new MediaService({ serverName: 'example.org', blobs, metadata, maxUploadBytes: 1024, touchIntervalMs: 0 });
    const first = await media.upload({ body: bytes('contested'), requester: alice });

    let started!: () => void;
    const deleting = new Promise<void>((resolve) => (started = resolve));
    let release!: () => void;
    objects.held = { started, release: new Promise<void>((resolve) => (release = resolve)) };
    const deletion = media.deleteMedia('example.org', first.mediaId);
    await deleting; // the ledger row is marked, the object is about to go

    const upload = media.upload({ body: bytes('contested'), requester: alice });
    // The put pins the blob, sees the deletion in flight and waits for it.
    await putSawDeletion;
    release();
    expect(await deletion).toBe(true);
    const second = await upload;
    const handle = await media.getMedia('example.org', second.mediaId);
    expect(new TextDecoder().decode((await handle.readSmall()) ?? undefined)).toBe('contested');
    expect(objects.blobCount).toBe(1);
  });

  it('the orphan sweep removes unreferenced and unknown objects past the grace period, and spares the rest', async () => {
    let now = Date.now();
    const clock = { now: () => now };
    const objects = new MemoryBlobStore();
    const metadata = new MemoryMetadataStore();
    const blobs = new ContentAddressedBlobStore({ objects, references: metadata, clock, pinGraceMs: 1000 });
    const media = new MediaService({ serverName: 'example.org', blobs, metadata, maxUploadBytes: 1024, touchIntervalMs: 0, clock });
    const kept = await media.upload({ body: bytes('kept'), requester: alice });
    await blobs.put(bytes('claimed, never referenced (a crash before the insert)'));
    await objects.put(bytes('an object the ledger never heard of'));
    expect(objects.blobCount).toBe(3);
    expect(await blobs.sweepOrphans()).toEqual({ unreferenced: 0, unknown: 0, removed: 0 });
    now += 60_000; // past the grace
    expect(await blobs.sweepOrphans({ dryRun: true })).toEqual({ unreferenced: 1, unknown: 1, removed: 0 });
    expect(await blobs.sweepOrphans()).toEqual({ unreferenced: 1, unknown: 1, removed: 2 });
    expect(objects.blobCount).toBe(1);
    expect((await media.getMedia('example.org', kept.mediaId)).size).toBe(4);
  });

  it('counts references of records and thumbnails for the dedup figures', async () => {
    const { media, metadata } = setup();
    await media.upload({ body: bytes('0123456789'), requester: alice });
    await media.upload({ body: bytes('0123456789'), requester: alice });
    await media.upload({ body: bytes('other'), requester: alice });
    expect(await metadata.blobStorageStats()).toEqual({ blobs: 2, storedBytes: 15, referencedBytes: 25 });
  });
});
