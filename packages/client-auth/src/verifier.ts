import type { Requester } from '@hsmedia/runtime';

/** What a request says besides its token. */
export interface VerifyOptions {
  /**
   * The `user_id` query parameter: an application service acting as one of
   * its users (https://spec.matrix.org/v1.12/application-service-api/#identity-assertion).
   * A verifier that knows application services resolves the token to this
   * user when the service may act as them; others ignore it.
   */
  readonly userId?: string;
}

/**
 * Turns an access token into the user it belongs to.
 * Resolves null for a token the homeserver does not know (→ 401 `M_UNKNOWN_TOKEN`);
 * throws a `MatrixError` when it cannot tell (homeserver down, timeout) or
 * refuses an identity assertion (403 `M_FORBIDDEN`).
 */
export interface AccessTokenVerifier {
  verify(token: string, signal?: AbortSignal, options?: VerifyOptions): Promise<Requester | null>;
  /**
   * The answer {@link verify} would give, when the verifier already knows it
   * (a token table, a cached answer); `undefined` when it would have to ask.
   * Optional: it lets the common request skip a promise and an await.
   */
  known?(token: string, options?: VerifyOptions): Requester | null | undefined;
}
