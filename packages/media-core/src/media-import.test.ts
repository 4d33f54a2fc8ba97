import { errors, isMatrixError } from '@hsmedia/errors';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ImportError, MediaImports, type ImportedMediaRecord } from './media-import.js';
import { MediaService } from './media-service.js';
import { MemoryBlobStore, MemoryMetadataStore } from './memory/index.js';
import type { MediaAdmission, MediaCandidate } from './ports/index.js';

// The shared import sink (issue 24) on the in-memory stores (conformance-
// tested like the SQL and filesystem ones), through the MediaService a
// server uses: what it stores is served, what it refuses leaves nothing.

const SERVER = 'example.org';
const REMOTE = 'remote.example';
const enc = (text: string): Uint8Array => new TextEncoder().encode(text);
const sha256 = (bytes: Uint8Array | string): string => createHash('sha256').update(bytes).digest('hex');
async function* iter(...chunks: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const chunk of chunks) yield chunk;
}
async function* failing(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
  throw new Error('source file went away');
}
async function readAll(stream: ReadableStream<Uint8Array>): Promise<string> {
  return new Response(stream).text();
}

function setup(admission?: MediaAdmission) {
  const blobs = new MemoryBlobStore();
  const metadata = new MemoryMetadataStore();
  const media = new MediaService({
    serverName: SERVER,
    blobs,
    metadata,
    maxUploadBytes: 1 << 20,
    touchIntervalMs: 0,
    ...(admission === undefined ? {} : { admission }),
  });
  const imports = new MediaImports({ catalog: media.catalog, actor: 'synapse-import' });
  const nothingKept = async (): Promise<void> => {
    expect((await metadata.summarizeMedia({})).count).toBe(0);
    expect(blobs.blobCount).toBe(0);
  };
  return { blobs, metadata, media, imports, nothingKept };
}

function item(mediaId: string, overrides: Partial<ImportedMediaRecord> = {}): ImportedMediaRecord {
  return {
    serverName: SERVER,
    mediaId,
    contentType: 'text/plain',
    uploadName: 'a.txt',
    userId: '@alice:example.org',
    createdAt: 1_700_000_000_000,
    lastAccessAt: null,
    quarantined: false,
    protected: false,
    ...overrides,
  };
}

async function code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'ok';
  } catch (err) {
    if (err instanceof ImportError) return err.code;
    if (isMatrixError(err)) return err.errcode;
    throw err;
  }
}

describe('MediaImports', () => {
  it('imports local and remote media under their own IDs, served byte for byte; a rerun imports nothing twice', async () => {
    const { media, imports, blobs, metadata } = setup();
    const bytes = enc('hello synapse');
    const local = item('localMedia1', { expectedSize: bytes.byteLength, expectedSha256: sha256(bytes), authenticated: true, lastAccessAt: 1_700_000_100_000 });
    expect(await imports.importMedia(local, iter(bytes))).toBe('imported');
    const remote = item('remoteMedia1', { serverName: REMOTE, userId: null, contentType: 'image/png', uploadName: null });
    expect(await imports.importMedia(remote, iter(enc('remote '), enc('bytes')))).toBe('imported');

    const handle = await media.getMedia(SERVER, 'localMedia1');
    expect(await readAll(await handle.open())).toBe('hello synapse');
    expect(handle.record).toMatchObject({ userId: '@alice:example.org', uploadName: 'a.txt', createdAt: 1_700_000_000_000, uploadedAt: 1_700_000_000_000, authenticated: true, lastAccessAt: 1_700_000_100_000 });
    const remoteHandle = await media.getMedia(REMOTE, 'remoteMedia1', { allowRemote: false });
    expect(await readAll(await remoteHandle.open())).toBe('remote bytes');
    expect(remoteHandle.record.userId).toBeNull();

    expect(await imports.has(SERVER, 'localMedia1')).toBe(true);
    expect(await imports.has(SERVER, 'nope')).toBe(false);
    expect(await imports.importMedia(local, iter(bytes))).toBe('present');
    expect(await imports.importMedia(remote, iter(enc('remote bytes')))).toBe('present');
    expect(blobs.blobCount).toBe(2);
    expect((await metadata.summarizeMedia({})).count).toBe(2);
  });

  it('refuses a size mismatch (more or fewer bytes), a hash mismatch, bad IDs and a failing source, keeping nothing', async () => {
    const { imports, nothingKept } = setup();
    expect(await code(imports.importMedia(item('tooMany', { expectedSize: 3 }), iter(enc('four'))))).toBe('size-mismatch');
    expect(await code(imports.importMedia(item('tooFew', { expectedSize: 5 }), iter(enc('four'))))).toBe('size-mismatch');
    expect(await code(imports.importMedia(item('badHash', { expectedSha256: sha256('other') }), iter(enc('four'))))).toBe('hash-mismatch');
    expect(await code(imports.importMedia(item('../escape'), iter(enc('x'))))).toBe('invalid-id');
    expect(await code(imports.importMedia(item('ok', { serverName: 'bad server' }), iter(enc('x'))))).toBe('invalid-id');
    expect(await code(imports.importMedia(item('ok', { expectedSize: -1 }), iter(enc('x'))))).toBe('invalid-record');
    expect(await code(imports.importMedia(item('noBytes'), null))).toBe('invalid-record');
    await expect(imports.importMedia(item('broken'), failing(enc('partial')))).rejects.toThrow('source file went away');
    const aborted = AbortSignal.abort();
    await expect(imports.importMedia(item('aborted'), iter(enc('x')), aborted)).rejects.toThrow();
    await nothingKept();
  });

  it('goes through the admission stage: a refusal keeps nothing', async () => {
    const refuseExe: MediaAdmission = {
      async admit(candidate: MediaCandidate) {
        if (candidate.contentType === 'application/x-msdownload') throw errors.forbidden('no executables');
      },
    };
    const { imports, nothingKept } = setup(refuseExe);
    expect(await code(imports.importMedia(item('exe', { contentType: 'application/x-msdownload' }), iter(enc('MZ'))))).toBe('refused');
    await nothingKept();
  });

  it('keeps quarantine: the hash is blocked, and unquarantined media with that hash is imported quarantined (Synapse system quarantine)', async () => {
    const { media, imports, metadata } = setup();
    expect(await imports.importMedia(item('bad1', { quarantined: true }), iter(enc('evil')))).toBe('imported');
    expect((await metadata.getMedia(SERVER, 'bad1'))?.quarantined).toBe(true);
    expect(await metadata.isHashBlocked(sha256('evil'))).toBe(true);
    expect((await metadata.listBlockedHashes({ limit: 10 }))[0]?.blockedBy).toBe('synapse-import');
    expect(await code(media.getMedia(SERVER, 'bad1'))).toBe('M_NOT_FOUND');

    expect(await imports.importMedia(item('copy', { serverName: REMOTE, userId: null }), iter(enc('evil')))).toBe('imported');
    expect((await metadata.getMedia(REMOTE, 'copy'))?.quarantined).toBe(true);
    // Protected media is exempt from quarantine by hash.
    expect(await imports.importMedia(item('kept', { protected: true }), iter(enc('evil')))).toBe('imported');
    expect(await metadata.getMedia(SERVER, 'kept')).toMatchObject({ quarantined: false, protected: true });
  });

  it('imports created-but-never-uploaded media as pending (M_NOT_YET_UPLOADED), completed by a later import with bytes', async () => {
    const { media, imports, metadata, blobs } = setup();
    const createdAt = Date.now();
    expect(await imports.importMedia(item('pending1', { pending: true, contentType: null, uploadName: null, createdAt }), null)).toBe('imported');
    expect((await metadata.getMedia(SERVER, 'pending1'))?.expiresAt).toBe(createdAt + 24 * 3600 * 1000);
    expect(await code(media.getMedia(SERVER, 'pending1', { timeoutMs: 0 }))).toBe('M_NOT_YET_UPLOADED');
    expect(await imports.importMedia(item('pending1', { pending: true, createdAt }), null)).toBe('present');
    expect(blobs.blobCount).toBe(0);

    expect(await imports.importMedia(item('pending1', { createdAt }), iter(enc('late bytes')))).toBe('imported');
    expect(await readAll(await (await media.getMedia(SERVER, 'pending1')).open())).toBe('late bytes');
    // An expired reservation answers 404, like Synapse after `unused_expiration_time`.
    expect(await imports.importMedia(item('expired', { pending: true, createdAt: 1_000 }), null)).toBe('imported');
    expect(await code(media.getMedia(SERVER, 'expired', { timeoutMs: 0 }))).toBe('M_NOT_FOUND');
  });

  it('imports thumbnails with their size, method, type and animation; a rerun and a different type are told apart', async () => {
    const { media, imports, metadata, blobs } = setup();
    const original = enc('png original');
    await imports.importMedia(item('pic', { contentType: 'image/png' }), iter(original));
    const crop = { width: 32, height: 32, method: 'crop' as const, contentType: 'image/png' };
    expect(await imports.importThumbnail(SERVER, 'pic', crop, iter(enc('crop32')))).toBe('imported');
    expect(await imports.importThumbnail(SERVER, 'pic', crop, iter(enc('crop32')))).toBe('present');
    expect(await imports.importThumbnail(SERVER, 'pic', { ...crop, contentType: 'image/webp', animated: true }, iter(enc('anim')))).toBe('imported');
    // A scale thumbnail byte-for-byte equal to its original stays its own row.
    expect(await imports.importThumbnail(SERVER, 'pic', { width: 1, height: 1, method: 'scale', contentType: 'image/png' }, iter(original))).toBe('imported');
    const rows = await metadata.listThumbnails(SERVER, 'pic');
    expect(rows.map((r) => `${r.width}x${r.height}/${r.method}/${r.contentType}/${r.animated}`).sort()).toEqual([
      '1x1/scale/image/png/false',
      '32x32/crop/image/png/false',
      '32x32/crop/image/webp/true',
    ]);
    const thumb = await media.catalog.thumbnails.listThumbnails(SERVER, 'pic');
    const cropRow = thumb.find((r) => r.contentType === 'image/png' && r.method === 'crop')!;
    expect(await readAll((await blobs.open(cropRow.blobId))!)).toBe('crop32');

    expect(await code(imports.importThumbnail(SERVER, 'pic', { ...crop, width: 0 }, iter(enc('x'))))).toBe('invalid-record');
    expect(await code(imports.importThumbnail(SERVER, 'pic', { ...crop, width: 64, expectedSize: 2 }, iter(enc('xyz'))))).toBe('size-mismatch');
    expect((await metadata.listThumbnails(SERVER, 'pic')).length).toBe(3);
  });

  it('keeps the profile flag of complete and pending media', async () => {
    const { imports, metadata } = setup();
    expect(await imports.importMedia(item('avatar', { profile: true }), iter(enc('face')))).toBe('imported');
    expect(await imports.importMedia(item('plain'), iter(enc('not a face')))).toBe('imported');
    expect(await imports.importMedia(item('later', { profile: true, pending: true, createdAt: Date.now() }), null)).toBe('imported');
    expect(await metadata.getMedia(SERVER, 'avatar')).toMatchObject({ profile: true });
    expect((await metadata.getMedia(SERVER, 'plain'))?.profile).toBeUndefined();
    expect(await imports.importMedia(item('later', { profile: true }), iter(enc('late face')))).toBe('imported');
    expect(await metadata.getMedia(SERVER, 'later')).toMatchObject({ profile: true, size: 9 });
    expect((await metadata.summarizeMedia({ profile: true })).count).toBe(2);
  });

  it('announced pages: acts on the looked-up answers, and answers gone stale keep nothing twice and honour the blocked-hash list', async () => {
    const { imports, metadata, blobs } = setup();
    const records = ['p0', 'p1', 'p2', 'p3'].map((id) => item(id, { expectedSha256: sha256(id) }));
    await metadata.blockHash({ sha256: sha256('p1'), reason: null, blockedBy: null, blockedAt: 1 });
    expect(await imports.importMedia(records[0]!, iter(enc('p0')))).toBe('imported');
    await imports.prefetch(records);
    // Stale: p2 arrived and p3's hash was blocked after the page was looked up.
    expect(await metadata.insertMedia({ ...(await metadata.getMedia(SERVER, 'p0'))!, mediaId: 'p2' })).toBe(true);
    await metadata.blockHash({ sha256: sha256('p3'), reason: null, blockedBy: null, blockedAt: 1 });
    const outcomes = await Promise.all(records.map((record) => imports.importMedia(record, iter(enc(record.mediaId)))));
    expect(outcomes).toEqual(['present', 'imported', 'present', 'imported']);
    expect((await metadata.getMedia(SERVER, 'p1'))?.quarantined).toBe(true);
    expect((await metadata.getMedia(SERVER, 'p3'))?.quarantined).toBe(true);
    expect(blobs.blobCount).toBe(3);
    expect(await imports.has(SERVER, 'p2')).toBe(true);
  });

  it('writes the rows of items in flight together: a failing write keeps no row and no blob of any of them', async () => {
    const { imports, metadata, blobs } = setup();
    const ids = Array.from({ length: 24 }, (_, index) => `many${index}`);
    expect(await Promise.all(ids.map((id) => imports.importMedia(item(id), iter(enc(id)))))).toEqual(ids.map(() => 'imported'));
    expect((await metadata.summarizeMedia({})).count).toBe(ids.length);
    const failing = ['f0', 'f1', 'f2'].map((id) => item(id));
    await imports.prefetch(failing);
    await metadata.close();
    const results = await Promise.allSettled(failing.map((record) => imports.importMedia(record, iter(enc(record.mediaId)))));
    expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(blobs.blobCount).toBe(ids.length);
  });

  it('admits a thumbnail of remote media known only through it: refused when its hash is blocked', async () => {
    const { imports, metadata } = setup();
    await metadata.blockHash({ sha256: sha256('blocked thumb'), reason: null, blockedBy: null, blockedAt: 1 });
    const spec = { width: 96, height: 96, method: 'crop' as const, contentType: 'image/jpeg' };
    expect(await imports.importThumbnail(REMOTE, 'onlyThumb', spec, iter(enc('fine thumb')))).toBe('imported');
    expect(await code(imports.importThumbnail(REMOTE, 'blockedThumb', spec, iter(enc('blocked thumb'))))).toBe('blocked');
    expect(await metadata.listThumbnails(REMOTE, 'blockedThumb')).toEqual([]);
  });
});
