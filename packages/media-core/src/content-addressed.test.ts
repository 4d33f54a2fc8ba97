import { errors, isMatrixError } from '@hsmedia/errors';
import type { Requester } from '@hsmedia/runtime';
import { describe, expect, it } from 'vitest';
import { MediaService } from './media-service.js';
import { MemoryBlobStore, MemoryMetadataStore } from './memory/index.js';
import type { BlobPutOptions, BlobStore, ByteSource, MediaCandidate, StoredBlob } from './ports/index.js';

// The catalog with a content-addressed blob store (`BlobStore.contentAddressed`): identical bytes
// share one blob, so a blob is deleted only when no record references it, and a blob that is
// refused or loses a race is dropped only when nothing else uses it.

/** Stores each distinct content once: a second put of the same bytes answers the first blob ID. */
class DedupBlobStore extends MemoryBlobStore implements BlobStore {
  readonly contentAddressed = true;
  readonly #byHash = new Map<string, StoredBlob>();

  override async put(source: ByteSource, options: BlobPutOptions = {}): Promise<StoredBlob> {
    const stored = await super.put(source, options);
    const existing = this.#byHash.get(stored.sha256);
    if (existing !== undefined && (await this.stat(existing.blobId)) !== null) {
      await super.delete(stored.blobId);
      return existing;
    }
    this.#byHash.set(stored.sha256, stored);
    return stored;
  }
}

const alice: Requester = { userId: '@alice:example.org', isGuest: false };
async function* bytes(text: string): AsyncGenerator<Uint8Array> {
  yield new TextEncoder().encode(text);
}

function setup(admit?: (candidate: MediaCandidate) => Promise<void>) {
  const blobs = new DedupBlobStore();
  const metadata = new MemoryMetadataStore();
  const media = new MediaService({
    serverName: 'example.org',
    blobs,
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
