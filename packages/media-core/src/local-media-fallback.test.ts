import { errors, isMatrixError } from '@hsmedia/errors';
import { describe, expect, it } from 'vitest';
import { MediaImports } from './media-import.js';
import { MediaService } from './media-service.js';
import { MemoryBlobStore, MemoryMetadataStore } from './memory/index.js';
import type { LocalMediaFallback } from './ports/index.js';

const SERVER = 'here.example';

async function* bytesOf(text: string): AsyncGenerator<Uint8Array> {
  yield new TextEncoder().encode(text);
}

/** A fallback that imports from a fixed table of "old repository" items, counting its calls. */
function setup(table: Record<string, string | 'pending'>, failure?: () => Error | null): { media: MediaService; calls: string[] } {
  const calls: string[] = [];
  // The fallback imports into the service it serves: the sink exists only once the service does.
  const sink: { imports?: MediaImports } = {};
  const fallback: LocalMediaFallback = {
    async bring(mediaId) {
      calls.push(mediaId);
      const error = failure?.();
      if (error) throw error;
      const bytes = table[mediaId];
      if (bytes === undefined) return false;
      const record = { serverName: SERVER, mediaId, contentType: 'text/plain', uploadName: 'a.txt', userId: '@u:here.example', createdAt: Date.now(), lastAccessAt: null, quarantined: false, protected: false };
      await sink.imports!.importMedia(bytes === 'pending' ? { ...record, pending: true } : record, bytes === 'pending' ? null : bytesOf(bytes));
      return true;
    },
  };
  const media = new MediaService({ serverName: SERVER, blobs: new MemoryBlobStore(), metadata: new MemoryMetadataStore(), maxUploadBytes: 1 << 20, localFallback: fallback, defaultTimeoutMs: 0 });
  sink.imports = new MediaImports({ catalog: media.catalog });
  return { media, calls };
}

async function text(media: MediaService, mediaId: string): Promise<string> {
  const handle = await media.getMedia(SERVER, mediaId);
  const small = await handle.readSmall();
  return new TextDecoder().decode(small ?? new Uint8Array());
}

describe('MediaService with a LocalMediaFallback', () => {
  it('serves an unknown local ID the fallback brings in, and asks it only once', async () => {
    const { media, calls } = setup({ old1: 'from the old repository' });
    expect(await text(media, 'old1')).toBe('from the old repository');
    expect(await text(media, 'old1')).toBe('from the old repository');
    expect(calls).toEqual(['old1']);
    await media.close();
  });

  it('answers 404 as before for an ID the fallback does not know, and never asks it for remote media or bad IDs', async () => {
    const { media, calls } = setup({});
    for (const [server, id] of [[SERVER, 'missing'], ['other.example', 'x'], [SERVER, 'bad id!']] as const) {
      const error = await media.getMedia(server, id, { allowRemote: false }).catch((e: unknown) => e);
      expect(isMatrixError(error) && error.errcode).toBe('M_NOT_FOUND');
    }
    expect(calls).toEqual(['missing']);
    await media.close();
  });

  it('answers a created-but-never-uploaded item with 504 M_NOT_YET_UPLOADED, like the old repository', async () => {
    const { media } = setup({ reserved: 'pending' });
    const error = await media.getMedia(SERVER, 'reserved', { timeoutMs: 0 }).catch((e: unknown) => e);
    expect(isMatrixError(error) && [error.errcode, error.status]).toEqual(['M_NOT_YET_UPLOADED', 504]);
    await media.close();
  });

  it('asks again for a reservation brought in pending: uploaded there since, it is served; a failure there keeps the wait (504, not 503)', async () => {
    const table: Record<string, string | 'pending'> = { later: 'pending' };
    let down = false;
    const { media, calls } = setup(table, () => (down ? errors.unknown('down', 503) : null));
    const waiting = async (): Promise<unknown> => (await media.getMedia(SERVER, 'later', { timeoutMs: 0 }).catch((e: unknown) => e)) as unknown;
    expect(await waiting()).toMatchObject({ errcode: 'M_NOT_YET_UPLOADED', status: 504 });
    down = true;
    expect(await waiting()).toMatchObject({ errcode: 'M_NOT_YET_UPLOADED', status: 504 });
    down = false;
    table['later'] = 'uploaded there';
    expect(await text(media, 'later')).toBe('uploaded there');
    expect(calls).toEqual(['later', 'later', 'later']);
    await media.close();
  });

  it('passes the fallback error through (the old repository unreachable: 503) and serves once it recovers', async () => {
    let down = true;
    const { media } = setup({ old2: 'back' }, () => (down ? errors.unknown('The media repository being replaced is unavailable', 503) : null));
    const error = await media.getMedia(SERVER, 'old2').catch((e: unknown) => e);
    expect(isMatrixError(error) && [error.errcode, error.status]).toEqual(['M_UNKNOWN', 503]);
    down = false;
    expect(await text(media, 'old2')).toBe('back');
    await media.close();
  });
});
