import { isMatrixError } from '@hsmedia/errors';
import type { Requester } from '@hsmedia/runtime';
import { describe, expect, it } from 'vitest';
import { SCANNER_ACTOR } from './media-scan-stage.js';
import { MediaService } from './media-service.js';
import type { MediaServiceScanningOptions } from './scanning-setup.js';
import { MemoryBlobStore, MemoryMetadataStore } from './memory/index.js';
import type { MediaScanner, ScanRequest, ScanVerdict } from './ports/index.js';

// A scanner that flags bytes containing "VIRUS", fails while `down` and
// can be held until released: the scan stage's logic on the in-memory stores.
// The real clamd runs in `@hsmedia/clamav` and the media-server tests.
class ScriptedScanner implements MediaScanner {
  down = false;
  scans = 0;
  version = 'v1';
  #held: (() => void)[] | null = null;

  hold(): void {
    this.#held = [];
  }

  release(): void {
    const held = this.#held ?? [];
    this.#held = null;
    for (const go of held) go();
  }

  async scan(request: ScanRequest): Promise<ScanVerdict> {
    this.scans++;
    if (this.#held !== null) await new Promise<void>((go) => this.#held!.push(go));
    if (this.down) throw new Error('scanner down');
    let text = '';
    for await (const chunk of request.bytes) text += Buffer.from(chunk).toString('latin1');
    return text.includes('VIRUS') ? { verdict: 'infected', signature: 'Test.Virus' } : { verdict: 'clean' };
  }

  async signatureVersion(): Promise<string> {
    return this.version;
  }
}

const alice: Requester = { userId: '@alice:example.org', isGuest: false };

function serviceWith(scanner: MediaScanner, scanning: Partial<MediaServiceScanningOptions> = {}, metadata = new MemoryMetadataStore()) {
  const media = new MediaService({
    serverName: 'example.org',
    blobs: new MemoryBlobStore(),
    metadata,
    maxUploadBytes: 1024 * 1024,
    pendingPollMs: 20,
    scanning: { scanner, retryIntervalMs: 0, versionPollMs: 0, ...scanning },
  });
  return { media, metadata };
}

async function upload(media: MediaService, text: string): Promise<string> {
  const body = (async function* one() {
    yield Buffer.from(text);
  })();
  const { mediaId } = await media.upload({ body, contentType: 'text/plain', requester: alice });
  return mediaId;
}

async function errcodeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'served';
  } catch (err) {
    return isMatrixError(err) ? `${err.status} ${err.errcode}` : String(err);
  }
}

describe('the scan stage', () => {
  it('keeps new uploads pending until a clean verdict, then serves them; a waiting reader is answered at once', async () => {
    const scanner = new ScriptedScanner();
    scanner.hold();
    const { media, metadata } = serviceWith(scanner);
    const mediaId = await upload(media, 'hello');
    expect((await metadata.getMedia('example.org', mediaId))?.scanState).toBe('pending');
    expect(await errcodeOf(media.getMedia('example.org', mediaId, { timeoutMs: 0 }))).toBe('504 M_NOT_YET_UPLOADED');
    const waiting = media.getMedia('example.org', mediaId, { timeoutMs: 60_000 });
    expect(media.scanning?.queueDepth).toBe(1);
    scanner.release();
    const announced: string[] = [];
    media.onMediaStored((record) => announced.push(`${record.mediaId}:${record.scanState}`));
    const handle = await waiting;
    expect(handle.record.scanState).toBe('clean');
    // Announced (e.g. to the thumbnailer) only once clean, never while pending.
    expect(announced).toEqual([`${mediaId}:clean`]);
    await media.close();
  });

  it('quarantines infected media with the signature as reason, blocks its hash and records the act', async () => {
    const scanner = new ScriptedScanner();
    const { media, metadata } = serviceWith(scanner);
    const mediaId = await upload(media, 'a VIRUS inside');
    expect(await errcodeOf(media.getMedia('example.org', mediaId, { timeoutMs: 60_000 }))).toBe('404 M_NOT_FOUND');
    const record = await metadata.getMedia('example.org', mediaId);
    expect(record).toMatchObject({ scanState: 'infected', quarantined: true });
    expect(await metadata.isHashBlocked(record!.sha256!)).toBe(true);
    expect(await metadata.listBlockedHashes({ limit: 10 })).toEqual([expect.objectContaining({ reason: 'virus scan: Test.Virus', blockedBy: SCANNER_ACTOR })]);
    const audit = await metadata.listAdminActions({ limit: 10 });
    expect(audit).toEqual([expect.objectContaining({ action: 'quarantine', actor: SCANNER_ACTOR, target: `mxc://example.org/${mediaId}`, reason: 'virus scan: Test.Virus' })]);
    // The same bytes again are refused at upload: the hash is blocked.
    expect(await errcodeOf(upload(media, 'a VIRUS inside'))).toBe('403 M_FORBIDDEN');
    await media.close();
  });

  it('fails closed when the scanner is down, retries later, then serves', async () => {
    const scanner = new ScriptedScanner();
    scanner.down = true;
    const { media, metadata } = serviceWith(scanner);
    const mediaId = await upload(media, 'hello');
    expect(await errcodeOf(media.getMedia('example.org', mediaId, { timeoutMs: 100 }))).toBe('504 M_NOT_YET_UPLOADED');
    expect((await metadata.getMedia('example.org', mediaId))?.scanState).toBe('failed');
    scanner.down = false;
    expect(await media.scanning!.retryUndecided()).toBe(1);
    expect((await media.getMedia('example.org', mediaId, { timeoutMs: 60_000 })).record.scanState).toBe('clean');
    await media.close();
  });

  it('serves unscanned media only when the policy says so, and keeps oversize media unserved by default', async () => {
    const scanner = new ScriptedScanner();
    const closed = serviceWith(scanner, { maxBytes: 3 });
    const big = await upload(closed.media, 'hello');
    expect(await errcodeOf(closed.media.getMedia('example.org', big, { timeoutMs: 100 }))).toBe('504 M_NOT_YET_UPLOADED');
    expect((await closed.metadata.getMedia('example.org', big))?.scanState).toBe('oversize');
    expect(scanner.scans).toBe(0);
    await closed.media.close();
    const open = serviceWith(scanner, { maxBytes: 3, onOversize: 'serve' });
    const served = await upload(open.media, 'hello');
    expect((await open.media.getMedia('example.org', served, { timeoutMs: 60_000 })).record.scanState).toBe('clean');
    await open.media.close();
  });

  it('scans each item once when two services share the store, and agrees on the verdict', async () => {
    const scanner = new ScriptedScanner();
    const metadata = new MemoryMetadataStore();
    const first = serviceWith(scanner, {}, metadata);
    const second = serviceWith(scanner, {}, metadata);
    scanner.hold();
    const mediaId = await upload(first.media, 'hello');
    const other = await second.media.scanning!.scanNow('example.org', mediaId);
    expect(other.state).toBe('busy');
    scanner.release();
    expect((await second.media.getMedia('example.org', mediaId, { timeoutMs: 60_000 })).record.scanState).toBe('clean');
    expect(scanner.scans).toBe(1);
    await first.media.close();
    await second.media.close();
  });

  it('rescans on demand and after a signature update', async () => {
    const scanner = new ScriptedScanner();
    const { media, metadata } = serviceWith(scanner, { versionPollMs: 60_000, rescansPerSecond: 1000 });
    const mediaId = await upload(media, 'hello');
    await media.getMedia('example.org', mediaId, { timeoutMs: 60_000 });
    expect(await media.scanning!.scanNow('example.org', mediaId, true)).toEqual({ state: 'clean' });
    expect(scanner.scans).toBe(2);
    await media.signatureWatch!.check();
    scanner.version = 'v2';
    await media.signatureWatch!.check();
    expect(await media.signatureWatch!.rescanning).toBe(1);
    expect(scanner.scans).toBe(3);
    expect((await metadata.getMedia('example.org', mediaId))?.scanState).toBe('clean');
    await media.close();
  });

  it('scans a thumbnail a remote server made before it is recorded: infected refused and its hash blocked, a scanner failure refused under fail_closed', async () => {
    const scanner = new ScriptedScanner();
    const { media, metadata } = serviceWith(scanner);
    const admitThumbnail = async (text: string) => {
      const blob = await media.catalog.blobs.put(
        (async function* one() {
          yield Buffer.from(text);
        })(),
      );
      const candidate = { kind: 'remote_thumbnail', serverName: 'remote.example', mediaId: 'thumbOnly', blobId: blob.blobId, size: blob.size, sha256: blob.sha256, contentType: 'image/png', userId: null } as const;
      return { blob, result: await errcodeOf(media.catalog.admit(candidate)) };
    };
    expect((await admitThumbnail('a clean thumbnail')).result).toBe('served');
    const infected = await admitThumbnail('a VIRUS thumbnail');
    expect(infected.result).toBe('404 M_NOT_FOUND');
    expect(await metadata.isHashBlocked(infected.blob.sha256)).toBe(true);
    scanner.down = true;
    expect((await admitThumbnail('another clean thumbnail')).result).toBe('503 M_UNKNOWN');
    expect(scanner.scans).toBe(3);
    await media.close();
  });

  it('serves a remote thumbnail the scanner could not check only with on_error: serve', async () => {
    const scanner = new ScriptedScanner();
    scanner.down = true;
    const { media } = serviceWith(scanner, { onError: 'serve' });
    const blob = await media.catalog.blobs.put(
      (async function* one() {
        yield Buffer.from('unchecked');
      })(),
    );
    const candidate = { kind: 'remote_thumbnail', serverName: 'remote.example', mediaId: 'thumbOnly', blobId: blob.blobId, size: blob.size, sha256: blob.sha256, contentType: 'image/png', userId: null } as const;
    expect(await errcodeOf(media.catalog.admit(candidate))).toBe('served');
    await media.close();
  });
});
