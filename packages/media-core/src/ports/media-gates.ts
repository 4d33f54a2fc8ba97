import type { Requester } from '@hsmedia/runtime';
import type { MediaRecord } from './metadata-store.js';

/**
 * Who is asking for media and how, as the access policy sees it. Exactly
 * one of `requester` (a client with an access token) and `origin` (another
 * server, X-Matrix verified) is set, or neither (a deprecated
 * unauthenticated `/_matrix/media/v3/*` request, `legacy: true`).
 */
export interface MediaAccess {
  readonly requester?: Requester | undefined;
  /** The verified origin of a federation request. */
  readonly origin?: string | undefined;
  /** The request arrived on a deprecated unauthenticated endpoint. */
  readonly legacy: boolean;
  /** What is being read: the media itself or one of its thumbnails. */
  readonly purpose: 'download' | 'thumbnail';
}

/**
 * Decides whether media may be served, before any byte is: after the
 * built-in rules (quarantine, the legacy freeze) have passed. Refuses by
 * throwing a `MatrixError` (404 `M_NOT_FOUND` hides the media, 403
 * `M_FORBIDDEN` says it exists). Called on every served request, cache hits
 * included, so it must be cheap; a synchronous answer avoids a promise.
 */
export interface MediaAccessPolicy {
  check(record: MediaRecord, access: MediaAccess): void | Promise<void>;
}

/**
 * Bytes that are stored but not yet visible: a local upload, an async upload
 * into a reserved ID, remote media fetched for the cache, or a thumbnail a
 * remote server made. `sha256` is the hash of every stored byte.
 */
export interface MediaCandidate {
  readonly kind: 'upload' | 'remote' | 'remote_thumbnail';
  readonly serverName: string;
  readonly mediaId: string;
  readonly blobId: string;
  readonly size: number;
  readonly sha256: string;
  readonly contentType: string;
  /** The uploader of local media; null for remote media. */
  readonly userId: string | null;
}

/**
 * The stage between "bytes stored" and "media visible" (a virus scanner or
 * a blocked-hash list sits here). `admit` resolves to let the media be
 * recorded and served, or throws a `MatrixError` to refuse it: the blob is
 * then deleted and no record is written, so nothing of it remains.
 *
 * Remote media is streamed to its first client while it is stored, so for
 * remote media a refusal stops the caching and every later read, not the
 * first live stream.
 */
export interface MediaAdmission {
  admit(candidate: MediaCandidate, signal: AbortSignal | undefined): Promise<void>;
}
