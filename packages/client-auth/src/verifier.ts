import type { Requester } from '@hsmedia/runtime';

/**
 * Turns an access token into the user it belongs to.
 * Resolves null for a token the homeserver does not know (→ 401 `M_UNKNOWN_TOKEN`);
 * throws a `MatrixError` when it cannot tell (homeserver down, timeout).
 */
export interface AccessTokenVerifier {
  verify(token: string, signal?: AbortSignal): Promise<Requester | null>;
}
