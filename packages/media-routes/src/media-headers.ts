import type { Middleware } from 'koa';

/**
 * The Content-Security-Policy the spec recommends for served media, byte for
 * byte (digest §1.0; `plugin-types` is obsolete in browsers but part of the string).
 */
export const MEDIA_CONTENT_SECURITY_POLICY =
  "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; style-src 'unsafe-inline'; object-src 'self';";

/** Hardening headers sent with every media-endpoint response. */
export const MEDIA_SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'Content-Security-Policy': MEDIA_CONTENT_SECURITY_POLICY,
  'X-Content-Type-Options': 'nosniff',
  // Spec v1.4: media is embedded cross-origin by web clients.
  'Cross-Origin-Resource-Policy': 'cross-origin',
});

/**
 * Middleware that adds {@link MEDIA_SECURITY_HEADERS} to every response
 * (errors included), so even a mis-served body cannot run script.
 */
export function mediaSecurityHeaders(): Middleware {
  return async function mediaSecurityHeadersMiddleware(ctx, next) {
    ctx.set(MEDIA_SECURITY_HEADERS);
    await next();
  };
}
