/**
 * The paths of one remote media fetch: the v1 federation endpoint (multipart,
 * inline bytes or a `Location` part), the legacy `/_matrix/media/v3` endpoint
 * when the remote does not know v1, and unsigned GETs of `Location` and
 * redirect targets; every failure as a `RemoteMediaError`.
 */
import { isValidMediaId, RemoteMediaError, type RemoteMedia } from '@hsmedia/media-core';
import { decodeMultipart } from '@hsmedia/multipart';
import type { Logger } from '@hsmedia/runtime';
import { isUnknownEndpoint, readRemoteError, remoteError, toRemoteMediaError } from '../remote-errors.js';
import { firstHeader, type Transport, type TransportResponse } from '../transport.js';
import { exactLength } from './exact-length.js';
import { FetchWatch, type FetchLimits } from './fetch-watch.js';
import { mapStreamErrors } from './map-stream-errors.js';

/** Room for multipart framing, the JSON part and headers on top of the media bytes. */
const MULTIPART_OVERHEAD = 256 * 1024;

/**
 * One fetch of remote bytes (media or a thumbnail): where the v1 federation
 * endpoint and its legacy counterpart are, and the caps. `fetchMedia` and
 * `fetchThumbnail` differ only in these paths.
 */
export interface FetchPlan {
  readonly serverName: string;
  readonly mediaId: string;
  readonly maxBytes: number;
  readonly timeoutMs: number;
  readonly signal: AbortSignal | undefined;
  /** Signed request target on the v1 federation endpoint (query in a fixed order: the signature covers it). */
  readonly v1Path: string;
  /** Signed request target on the deprecated `/_matrix/media/v3` endpoint. */
  readonly legacyPath: string;
  /** `mxc://server/id`, with the thumbnail size for thumbnails: names the fetch in errors and logs. */
  readonly what: string;
}

/** What the fetch paths need from `FederationClient`. */
export interface MediaFetchContext {
  /** A signed GET on a discovered server (X-Matrix, targets tried in turn). */
  readonly signedGet: (
    destination: string,
    path: string,
    maxBodyBytes: number,
    remoteTimeoutMs: number | undefined,
    signal: AbortSignal | undefined,
  ) => Promise<TransportResponse>;
  readonly transport: Transport;
  readonly maxRedirects: number;
  readonly idleMs: number;
  /** The overall deadline and minimum rate of every fetch. */
  readonly limits: FetchLimits;
  readonly logger: Logger;
  /** Our signing key's ID, named in the warning when a remote refuses our signature. */
  readonly keyId?: string;
}

/** A plan being run: its signal also fires on the fetch's deadline and rate checks. */
interface RunningPlan extends FetchPlan {
  readonly signal: AbortSignal;
  readonly watch: FetchWatch;
}

function parseLength(text: string | undefined): number | null {
  return text !== undefined && /^\d{1,15}$/.test(text) ? Number(text) : null;
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

/**
 * Runs a {@link FetchPlan}: v1 (or legacy only), every failure mapped to a
 * `RemoteMediaError` and logged. `check` vets the answer before its body
 * is read; when it throws, the body is cancelled.
 *
 * The whole fetch, body included, is under the deadline and the rate check of
 * `context.limits` (`RemoteMediaError` `timeout`), and the body must carry exactly the
 * length the remote declared for it (`bad_response`).
 */
export async function fetchPlanned(
  context: MediaFetchContext,
  plan: FetchPlan,
  legacyOnly: boolean,
  failureLog: string,
  check?: (media: RemoteMedia) => void,
): Promise<RemoteMedia> {
  const { serverName, mediaId } = plan;
  const watch = new FetchWatch(context.limits, plan.what, plan.signal);
  const running: RunningPlan = { ...plan, signal: watch.signal, watch };
  try {
    if (!isValidMediaId(mediaId)) {
      throw new RemoteMediaError('not_found', `Invalid media ID ${JSON.stringify(mediaId)}`);
    }
    const answer = legacyOnly ? await fetchLegacy(context, running) : await fetchV1(context, running);
    const body = answer.contentLength === null ? answer.body : exactLength(answer.body, answer.contentLength, plan.what);
    const media: RemoteMedia = {
      ...answer,
      body: mapStreamErrors(body, (error) => toRemoteMediaError(error, running.signal), () => watch.end()),
    };
    if (check !== undefined) {
      try {
        check(media);
      } catch (error) {
        await media.body.cancel().catch(() => undefined);
        throw error;
      }
    }
    return media;
  } catch (error) {
    watch.end();
    const mapped = toRemoteMediaError(error, running.signal);
    if (mapped instanceof RemoteMediaError) {
      // Any remote (or any user asking for unreachable media) can cause these at will: one line, no stack.
      context.logger.warn(
        {
          serverName,
          mediaId,
          what: plan.what,
          failure: mapped.code,
          ...(mapped.remoteStatus === undefined ? {} : { remoteStatus: mapped.remoteStatus }),
          ...(mapped.remoteErrcode === undefined ? {} : { remoteErrcode: mapped.remoteErrcode }),
          reason: mapped.message,
        },
        failureLog,
      );
      if (mapped.remoteStatus === 401) warnSignatureRefused(context, serverName);
    }
    throw mapped;
  }
}

/**
 * A 401 to a signed request: the remote could not verify our X-Matrix signature
 * (https://spec.matrix.org/v1.12/server-server-api/#request-authentication), most often because
 * our key is not the one our homeserver publishes. Every fetch from every remote fails until fixed.
 */
function warnSignatureRefused(context: MediaFetchContext, serverName: string): void {
  context.logger.warn(
    {
      serverName,
      key_id: context.keyId,
      hint:
        `remotes fetch our public key from /_matrix/key/v2/server of our server name: check that it publishes ${context.keyId ?? 'our key'} ` +
        '(signing_key_path must be the homeserver\'s own key file)',
    },
    'remote refused our request signature (401)',
  );
}

/** A remote answer whose body errors are not mapped yet (`fetchPlanned` maps them once). */
async function fetchV1(context: MediaFetchContext, plan: RunningPlan): Promise<RemoteMedia> {
  const { serverName, maxBytes, timeoutMs, signal, what } = plan;
  const res = plan.watch.response(await context.signedGet(serverName, plan.v1Path, maxBytes + MULTIPART_OVERHEAD, timeoutMs, signal));
  if (res.status !== 200) {
    const info = await readRemoteError(res);
    if (isUnknownEndpoint(info.status, info.errcode, info.isJson)) {
      context.logger.debug({ serverName, status: info.status, errcode: info.errcode }, 'v1 media endpoint unknown; using legacy');
      return fetchLegacy(context, plan);
    }
    throw remoteError(info, what);
  }
  const contentType = firstHeader(res.headers, 'content-type') ?? '';
  if (!/^multipart\/mixed\s*(;|$)/i.test(contentType)) {
    await res.body.cancel();
    throw new RemoteMediaError('bad_response', `${what}: expected multipart/mixed, got ${JSON.stringify(contentType)}`);
  }
  if (res.contentLength !== null && res.contentLength > maxBytes + MULTIPART_OVERHEAD) {
    await res.body.cancel();
    throw new RemoteMediaError('too_large', `${what}: ${res.contentLength} bytes exceeds the limit of ${maxBytes}`);
  }
  const decoded = await decodeMultipart(contentType, res.body, {
    maxContentBytes: maxBytes,
    signal,
  });
  if (decoded.kind === 'location') {
    // https://spec.matrix.org/v1.12/server-server-api/#content-repository: a `Location` is a plain GET without X-Matrix; type and disposition come from that response.
    return fetchUnsigned(context, new URL(decoded.location), plan, context.maxRedirects);
  }
  return {
    contentType: decoded.contentType ?? null,
    contentDisposition: decoded.contentDisposition ?? null,
    contentLength: parseLength(decoded.headers['content-length']),
    body: decoded.stream,
  };
}

/**
 * The deprecated `/_matrix/media/v3` endpoint, for servers predating v1
 * (https://spec.matrix.org/v1.12/server-server-api/#content-repository).
 */
async function fetchLegacy(context: MediaFetchContext, plan: RunningPlan): Promise<RemoteMedia> {
  const { serverName, maxBytes, timeoutMs, signal, what } = plan;
  const res = plan.watch.response(await context.signedGet(serverName, plan.legacyPath, maxBytes, timeoutMs, signal));
  const location = firstHeader(res.headers, 'location');
  if (isRedirect(res.status) && location !== undefined) {
    await res.body.cancel();
    // Redirects from the legacy endpoint go to a CDN: absolute URLs only.
    if (!URL.canParse(location)) {
      throw new RemoteMediaError('bad_response', `${what}: legacy redirect to a relative URL`);
    }
    if (context.maxRedirects <= 0) {
      throw new RemoteMediaError('bad_response', `${what}: legacy endpoint redirects, redirects disabled`);
    }
    return fetchUnsigned(context, new URL(location), plan, context.maxRedirects - 1);
  }
  return mediaFromPlainResponse(res, plan, `${what} (legacy)`);
}

/** An unsigned GET of a `Location` or redirect target, following a few redirects. */
async function fetchUnsigned(context: MediaFetchContext, url: URL, plan: RunningPlan, redirectsLeft: number): Promise<RemoteMedia> {
  const { maxBytes, signal } = plan;
  const what = `${plan.what} via ${url.protocol}//${url.host}`;
  for (let left = redirectsLeft; ; left--) {
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new RemoteMediaError('bad_response', `${what}: redirect to a non-http(s) URL`);
    }
    if (url.username !== '' || url.password !== '') {
      throw new RemoteMediaError('bad_response', `${what}: redirect URL carries credentials`);
    }
    const res = plan.watch.response(
      await context.transport.request({ url, maxBodyBytes: maxBytes, headersTimeoutMs: Math.max(context.idleMs, plan.timeoutMs), signal }),
    );
    const location = firstHeader(res.headers, 'location');
    if (isRedirect(res.status) && location !== undefined) {
      await res.body.cancel();
      if (left <= 0) throw new RemoteMediaError('bad_response', `${what}: too many redirects`);
      url = new URL(location, url);
      continue;
    }
    return mediaFromPlainResponse(res, plan, what);
  }
}

/** A non-multipart media response (legacy endpoint, `Location` target). */
async function mediaFromPlainResponse(res: TransportResponse, plan: RunningPlan, what: string): Promise<RemoteMedia> {
  if (res.status !== 200) {
    throw remoteError(await readRemoteError(res), what);
  }
  if (res.contentLength !== null && res.contentLength > plan.maxBytes) {
    await res.body.cancel();
    throw new RemoteMediaError('too_large', `${what}: ${res.contentLength} bytes exceeds the limit of ${plan.maxBytes}`);
  }
  return {
    contentType: firstHeader(res.headers, 'content-type') ?? null,
    contentDisposition: firstHeader(res.headers, 'content-disposition') ?? null,
    contentLength: res.contentLength,
    body: res.body,
  };
}
