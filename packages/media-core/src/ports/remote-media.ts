import type { ThumbnailMethod } from './thumbnails.js';

/** A request for another server's media. */
export interface RemoteMediaRequest {
  readonly serverName: string;
  readonly mediaId: string;
  /** Refuse bodies larger than this (502 M_TOO_LARGE at the edge). */
  readonly maxBytes: number;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /**
   * The request itself arrived on a deprecated unauthenticated endpoint: a
   * source may go straight to the remote's legacy endpoint (spec v1.11 §"freeze").
   */
  readonly legacyOnly?: boolean;
}

/** A remote media body as it arrives. */
export interface RemoteMedia {
  readonly contentType: string | null;
  readonly contentDisposition: string | null;
  readonly contentLength: number | null;
  readonly body: ReadableStream<Uint8Array>;
}

/**
 * A request for a thumbnail of another server's media (https://spec.matrix.org/v1.12/server-server-api/#content-repository,
 * `GET /_matrix/federation/v1/media/thumbnail/{mediaId}`). `maxBytes` caps
 * the thumbnail's bytes.
 */
export interface RemoteThumbnailRequest extends RemoteMediaRequest {
  readonly width: number;
  readonly height: number;
  readonly method: ThumbnailMethod;
  readonly animated: boolean;
}

/**
 * The types a remote thumbnail may have (the client thumbnail response's
 * `Content-Type` enum, https://spec.matrix.org/v1.12/client-server-api/#thumbnails; the federation thumbnail part SHOULD use them). A
 * remote thumbnail of any other type is refused.
 */
export const REMOTE_THUMBNAIL_CONTENT_TYPES: readonly string[] = Object.freeze([
  'image/jpeg',
  'image/png',
  'image/apng',
  'image/gif',
  'image/webp',
]);

/** Fetches media from other servers. Throws `RemoteMediaError` on failure. */
export interface RemoteMediaSource {
  fetchMedia(request: RemoteMediaRequest): Promise<RemoteMedia>;
  /**
   * Fetches a thumbnail the remote makes of its own media (optional: a
   * source without it makes thumbnails of remote media come from the
   * fetched original). The answer's type is one of
   * {@link REMOTE_THUMBNAIL_CONTENT_TYPES}; failures as for `fetchMedia`.
   */
  fetchThumbnail?(request: RemoteThumbnailRequest): Promise<RemoteMedia>;
}

