import { isMatrixError } from '@hsmedia/errors';
import type { Requester } from '@hsmedia/runtime';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MediaAdmin } from './media-admin.js';
import { MediaService } from './media-service.js';
import { MemoryBlobStore, MemoryMetadataStore } from './memory/index.js';
import type { MediaRecord, RemoteMedia, RemoteMediaSource } from './ports/index.js';

// Quarantine that sticks to content (issue 14): the blocked-hash list on the
// in-memory stores (conformance-tested like the SQL ones), through the
// services a server uses. The remote is a scripted source.

const SERVER = 'example.org';
const REMOTE = 'remote.example';
const alice: Requester = { userId: '@alice:example.org', isGuest: false };
const admin1 = '@admin:example.org';
const enc = (text: string): Uint8Array => new TextEncoder().encode(text);
const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');
async function* iter(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/** A remote that always answers `text`, counting its calls. */
class FixedRemote implements RemoteMediaSource {
  calls = 0;
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
  async fetchMedia(): Promise<RemoteMedia> {
    this.calls++;
    const bytes = enc(this.text);
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes);
        controller.close();
      },
    });
    return { body, contentType: 'text/plain', contentLength: bytes.byteLength, contentDisposition: null };
  }
}

function setup(remoteText = 'remote bytes') {
  let now = 1_000_000;
  const clock = { now: () => now };
  const blobs = new MemoryBlobStore();
  const metadata = new MemoryMetadataStore();
  const remote = new FixedRemote(remoteText);
  const options = { serverName: SERVER, blobs, metadata, maxUploadBytes: 1 << 20, clock, touchIntervalMs: 0, remote, remoteFailureTtlMs: 0 };
  const media = new MediaService({ ...options, cache: { recordTtlMs: 3_600_000 } });
  const admin = new MediaAdmin({ media, queries: metadata });
  const upload = async (text: string): Promise<string> => (await media.upload({ body: iter(enc(text)), contentType: 'text/plain', requester: alice })).mediaId;
  const stored = async (): Promise<{ records: number; blobs: number }> => ({ records: (await metadata.summarizeMedia({})).count, blobs: blobs.blobCount });
  /** A second instance sharing the stores, with its own caches. */
  const otherInstance = () => new MediaService(options);
  return { blobs, metadata, media, admin, remote, upload, stored, otherInstance, advance: (ms: number) => void (now += ms) };
}

async function outcome(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return '200';
  } catch (error) {
    if (isMatrixError(error)) return `${error.httpStatus} ${error.errcode}`;
    throw error;
  }
}

describe('the blocked-hash list', () => {
  it('refuses a re-upload of quarantined bytes with 403 M_FORBIDDEN and keeps nothing of it', async () => {
    const { admin, media, upload, stored } = setup();
    const first = await upload('bad bytes');
    expect(await admin.setQuarantined(SERVER, first, true, { by: admin1, reason: 'abuse' })).toBe(true);
    expect(await admin.listBlockedHashes({ limit: 10 })).toEqual([{ sha256: sha256('bad bytes'), reason: 'abuse', blockedBy: admin1, blockedAt: 1_000_000 }]);
    const before = await stored();
    expect(await outcome(upload('bad bytes'))).toBe('403 M_FORBIDDEN');
    expect(await stored()).toEqual(before);
    // Async uploads too: the reserved ID stays pending, the bytes are not kept.
    const { mediaId } = await media.createMedia(alice);
    const blobsBefore = (await stored()).blobs;
    expect(await outcome(media.uploadPending({ serverName: SERVER, mediaId, body: iter(enc('bad bytes')), contentType: 'text/plain', requester: alice }))).toBe('403 M_FORBIDDEN');
    expect((await stored()).blobs).toBe(blobsBefore);
    expect(await outcome(upload('good bytes'))).toBe('200');
  });

  it('keeps refusing a remote item that was quarantined, purged and fetched again; nothing is cached', async () => {
    const { admin, media, remote, stored } = setup('remote bad bytes');
    expect(await outcome(media.getMedia(REMOTE, 'remoteItem01', { allowLive: false }))).toBe('200');
    expect(await admin.setQuarantined(REMOTE, 'remoteItem01', true)).toBe(true);
    expect(await admin.deleteMedia(REMOTE, 'remoteItem01')).toBe(true);
    expect(await stored()).toEqual({ records: 0, blobs: 0 });
    expect(await outcome(media.getMedia(REMOTE, 'remoteItem01', { allowLive: false }))).toBe('404 M_NOT_FOUND');
    expect(remote.calls).toBe(2);
    expect(await stored()).toEqual({ records: 0, blobs: 0 });
    // The same bytes under another remote ID are refused as well.
    expect(await outcome(media.getMedia(REMOTE, 'otherItem001', { allowLive: false }))).toBe('404 M_NOT_FOUND');
    expect(await stored()).toEqual({ records: 0, blobs: 0 });
  });

  it('blocks a hash before any item has it, and releasing by hash lifts the block', async () => {
    const { admin, upload } = setup();
    expect(await admin.quarantineByHash(sha256('future bytes').toUpperCase(), true, { by: admin1 })).toBe(0);
    expect(await outcome(upload('future bytes'))).toBe('403 M_FORBIDDEN');
    expect(await admin.quarantineByHash(sha256('future bytes'), false)).toBe(0);
    expect(await admin.listBlockedHashes({ limit: 10 })).toEqual([]);
    expect(await outcome(upload('future bytes'))).toBe('200');
  });

  it('does not serve other records with a blocked hash, except protected ones', async () => {
    const { admin, media, metadata, blobs, upload } = setup();
    const first = await upload('shared bytes');
    const copy = await upload('other bytes');
    const kept = await upload('other bytes');
    expect(await admin.setProtected(SERVER, kept, true)).toBe(true);
    // A record with the same bytes that predates the block (as another instance or an import writes it).
    const blob = await blobs.put(iter(enc('shared bytes')));
    const record: MediaRecord = { ...(await metadata.getMedia(SERVER, first))!, mediaId: 'preexisting01', blobId: blob.blobId };
    expect(await metadata.insertMedia(record)).toBe(true);
    expect(await admin.setQuarantined(SERVER, first, true)).toBe(true);
    expect(await outcome(media.getMedia(SERVER, 'preexisting01'))).toBe('404 M_NOT_FOUND');
    expect(await admin.quarantineByHash(sha256('other bytes'), true)).toBe(1);
    expect(await outcome(media.getMedia(SERVER, copy))).toBe('404 M_NOT_FOUND');
    expect(await outcome(media.getMedia(SERVER, kept))).toBe('200');
  });

  it('releasing an item unblocks its hash only when no other item with it is still quarantined', async () => {
    const { admin, upload } = setup();
    const one = await upload('twice');
    const two = await upload('twice');
    expect(await admin.quarantineByHash(sha256('twice'), true)).toBe(2);
    expect(await admin.setQuarantined(SERVER, one, false)).toBe(true);
    expect(await admin.listBlockedHashes({ limit: 10 })).toHaveLength(1);
    expect(await admin.setQuarantined(SERVER, two, false)).toBe(true);
    expect(await admin.listBlockedHashes({ limit: 10 })).toEqual([]);
  });

  it('another instance sharing the store stops serving blocked bytes once its cached answer expires', async () => {
    const { admin, upload, otherInstance, advance } = setup();
    const mediaId = await upload('seen elsewhere');
    const other = otherInstance();
    expect(await outcome(other.getMedia(SERVER, mediaId))).toBe('200');
    // Blocked by hash alone (no flag on the record), so only the list can refuse it.
    await admin.blockHash({ sha256: sha256('seen elsewhere'), reason: null, blockedBy: admin1 });
    advance(60_001);
    expect(await outcome(other.getMedia(SERVER, mediaId))).toBe('404 M_NOT_FOUND');
  });
});
