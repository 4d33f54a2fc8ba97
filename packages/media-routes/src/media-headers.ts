import type { ServerResponse } from 'node:http';
import type { Middleware } from 'koa';

/**
 * The Content-Security-Policy the spec recommends for served media, byte for
 * byte (https://spec.matrix.org/v1.12/client-server-api/#content-repository;
 * `plugin-types` is obsolete in browsers but part of the string).
 */
export const MEDIA_CONTENT_SECURITY_POLICY =
  "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; style-src 'unsafe-inline'; object-src 'self';";

/** Hardening headers sent with every media-endpoint response. */
export const MEDIA_SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'Content-Security-Policy': MEDIA_CONTENT_SECURITY_POLICY,
  'X-Content-Type-Options': 'nosniff',
  // Spec v1.4: media is embedded cross-origin by web clients (same section as the policy).
  'Cross-Origin-Resource-Policy': 'cross-origin',
  // Media is user content: keep it out of search engines, as Synapse does (its media repository
  // sends the same value since 1.76).
  'X-Robots-Tag': 'noindex, nofollow, noarchive, noimageindex',
});

const SECURITY_HEADER_ENTRIES: readonly (readonly [string, string])[] = Object.entries(MEDIA_SECURITY_HEADERS);

/**
 * The one writer of the media security headers. Straight to Node (nothing
 * is sent yet): Koa's `ctx.set` adds two calls and checks per header.
 */
function writeSecurityHeaders(res: ServerResponse): void {
  for (const [name, value] of SECURITY_HEADER_ENTRIES) res.setHeader(name, value);
}

/**
 * The headers of every answer that carries media (or a 304 about it), on
 * every route: the security headers, `Cache-Control`, and the strong
 * `ETag` when the bytes are stored (a live remote body has none yet).
 */
export function writeMediaHeaders(res: ServerResponse, cacheControl: string, etag: string | null): void {
  writeSecurityHeaders(res);
  res.setHeader('Cache-Control', cacheControl);
  if (etag !== null) res.setHeader('ETag', etag);
}

/**
 * Middleware that adds {@link MEDIA_SECURITY_HEADERS} to every response
 * (errors included), so even a mis-served body cannot run script.
 */
export function mediaSecurityHeaders(): Middleware {
  // No async wrapper: one promise fewer on every request.
  return function mediaSecurityHeadersMiddleware(ctx, next) {
    writeSecurityHeaders(ctx.res);
    return next();
  };
}
