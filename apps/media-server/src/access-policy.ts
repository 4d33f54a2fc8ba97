import { allOfPolicies, HttpAccessPolicy, ServerDenyListPolicy, type MediaAccessPolicy } from '@hsmedia/media-core';
import type { Logger } from '@hsmedia/runtime';

/**
 * `access_policy:` resolved: who media is served to and whose media is
 * fetched. The direction of MSC3911 (media tied to the events and rooms that
 * use it, https://github.com/matrix-org/matrix-spec-proposals/pull/3911)
 * without waiting for it: the HTTP policy lets the homeserver (or an
 * appservice that knows rooms) decide per user or server and `mxc` URI.
 */
export interface AccessPolicyConfig {
  /** Servers whose federation requests for media get 403 `M_FORBIDDEN`. */
  readonly denyServingTo: readonly string[];
  /** Servers whose uncached media is 404 without contacting them (Synapse's `prevent_media_downloads_from`). */
  readonly preventDownloadsFrom: readonly string[];
  /** The endpoint asked before serving; undefined when none. */
  readonly http:
    | { readonly url: string; readonly cacheTtlMs: number; readonly timeoutMs: number; readonly token: string | undefined }
    | undefined;
}

/** The policy `MediaService` asks before serving, or undefined when the config sets none (allow-all). */
export function createAccessPolicy(config: AccessPolicyConfig, logger: Logger): MediaAccessPolicy | undefined {
  const policies: MediaAccessPolicy[] = [];
  // The deny list first: a refused server costs no question to the endpoint.
  if (config.denyServingTo.length > 0) policies.push(new ServerDenyListPolicy({ denyServingTo: config.denyServingTo }));
  if (config.http !== undefined) policies.push(new HttpAccessPolicy({ ...config.http, logger }));
  return policies.length === 0 ? undefined : allOfPolicies(policies);
}
