import { ApiError, request, seg } from './api.js';

/**
 * Thumbnails fetched with the token and shown through object URLs. Only the
 * raster types the server's thumbnailer writes are accepted: anything else
 * (an SVG, HTML, a type the server did not mean) is refused and never becomes
 * a URL, so no content from users runs in the console. Originals are never
 * fetched at all.
 */
const RASTER_TYPES = new Set(['image/png', 'image/jpeg', 'image/webp', 'image/gif']);
/** A few at a time: a grid of a hundred items must not open a hundred requests. */
const MAX_CONCURRENT = 4;

let running = 0;
const waiting: (() => void)[] = [];
/** Object URLs made for the current view; revoked when the view changes. */
const made = new Set<string>();

async function slot<T>(task: () => Promise<T>): Promise<T> {
  if (running >= MAX_CONCURRENT) await new Promise<void>((resolve) => waiting.push(resolve));
  running++;
  try {
    return await task();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

/** Whether the console asks for a thumbnail of this type at all. */
export function mayHaveThumbnail(mediaType: string | null): boolean {
  return mediaType !== null && /^(image\/(png|jpeg|gif|webp|bmp|tiff|heic|avif)|video\/)/i.test(mediaType);
}

/** The outcome of one thumbnail fetch: an object URL, or why there is none. */
export type ThumbnailResult = { readonly url: string } | { readonly refused: string };

/** Fetches a scaled thumbnail of a media item through the client API with the token. */
export function fetchThumbnail(serverName: string, mediaId: string, width: number, height: number): Promise<ThumbnailResult> {
  return slot(async () => {
    try {
      const response = await request(`/_matrix/client/v1/media/thumbnail/${seg(serverName)}/${seg(mediaId)}?width=${width}&height=${height}&method=scale`);
      const type = (response.headers.get('Content-Type') ?? '').split(';')[0]!.trim().toLowerCase();
      if (!RASTER_TYPES.has(type)) return { refused: `not shown: the server answered ${type || 'no type'}` };
      const bytes = await response.arrayBuffer();
      const url = URL.createObjectURL(new Blob([bytes], { type }));
      made.add(url);
      return { url };
    } catch (error) {
      if (error instanceof ApiError) return { refused: `${error.errcode}: ${error.message}` };
      throw error;
    }
  });
}

/** Revokes every object URL of the view being left. */
export function revokeThumbnails(): void {
  for (const url of made) URL.revokeObjectURL(url);
  made.clear();
}
