import { signalOf, type SignalSource } from '@hsmedia/runtime';
import type { MediaCatalog } from './media-catalog.js';
import type { LocalMediaFallback, MediaRecord } from './ports/index.js';

/**
 * Asks the local fallback about a local media ID the catalog has no record
 * of, or only a pending one, and gives the record as it is afterwards.
 *
 * - No record: the repository being replaced may have it; its errors are the
 *   client's answer (503 while it cannot be read, 404 for a missing file).
 * - A pending record: it may have been uploaded there since its reservation
 *   was brought in. A failure there changes nothing here: the wait for an
 *   upload goes on with the record as it was.
 */
export async function consultLocalFallback(
  fallback: LocalMediaFallback,
  catalog: MediaCatalog,
  record: MediaRecord | null,
  serverName: string,
  mediaId: string,
  signal: SignalSource | undefined,
): Promise<MediaRecord | null> {
  if (record === null) return (await fallback.bring(mediaId, signalOf(signal))) ? catalog.load(serverName, mediaId) : null;
  try {
    if (await fallback.bring(mediaId, signalOf(signal))) return (await catalog.load(serverName, mediaId)) ?? record;
  } catch (err) {
    catalog.logger.debug({ err, mediaId }, 'the local fallback could not refresh a pending upload');
  }
  return record;
}
