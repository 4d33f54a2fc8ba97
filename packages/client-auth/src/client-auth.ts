import { ErrCode, MatrixError, errors } from '@hsmedia/errors';
import type { Requester } from '@hsmedia/runtime';
import type { Context, Middleware } from 'koa';
import type { AccessTokenVerifier } from './verifier.js';

/** Options for {@link createClientAuth}. */
export interface ClientAuthOptions {
  readonly verifier: AccessTokenVerifier;
  /**
   * Accept the deprecated `?access_token=` query parameter (spec v1.11–v1.19
   * require it; the unreleased v1.20 drops it). Default true.
   */
  readonly allowQueryToken?: boolean;
  /** Refuse guests with 403 `M_GUEST_ACCESS_FORBIDDEN` (config, preview_url). Default false. */
  readonly forbidGuests?: boolean;
}

/** Koa state set by {@link createClientAuth}. */
export interface ClientAuthState {
  requester: Requester;
}

const BEARER_RE = /^Bearer +(\S+) *$/i;

/**
 * The access token of a request, or null when there is none.
 * Throws 401 `M_MISSING_TOKEN` for ambiguous requests (header and query
 * parameter together, or the parameter twice), as Synapse does.
 */
export function accessTokenFrom(ctx: Context, allowQueryToken: boolean = true): string | null {
  const header = ctx.get('Authorization');
  let fromHeader: string | null = null;
  if (header !== '') {
    const match = BEARER_RE.exec(header);
    // A non-Bearer Authorization header carries no access token.
    fromHeader = match ? match[1]! : null;
  }
  if (!allowQueryToken) return fromHeader;
  // Common case, no parsing: a parameter name can only decode to access_token if spelled out or percent-encoded.
  const query = ctx.querystring;
  if (query === '' || (!query.includes('access_token') && !query.includes('%'))) return fromHeader;
  const fromQuery = new URLSearchParams(query).getAll('access_token');
  if (fromQuery.length === 0) return fromHeader;
  if (fromQuery.length > 1) throw errors.missingToken('Too many access_token query parameters');
  if (fromHeader !== null) throw errors.missingToken('Mixing Authorization headers and access_token query parameters');
  return fromQuery[0] === '' ? null : fromQuery[0]!;
}

/**
 * The `user_id` query parameter of an application service acting as one of
 * its users (https://spec.matrix.org/v1.12/application-service-api/#identity-assertion),
 * or undefined. Given twice it is 400 `M_INVALID_PARAM`: which user acts must never be a guess.
 */
export function assertedUserIdFrom(ctx: Context): string | undefined {
  const query = ctx.querystring;
  // Common case, no parsing (every thumbnail has a query): the name can only decode to user_id if spelled out or percent-encoded.
  if (query === '' || (!query.includes('user_id') && !query.includes('%'))) return undefined;
  const values = new URLSearchParams(query).getAll('user_id');
  if (values.length > 1) throw errors.invalidParam('Query parameter user_id given more than once');
  return values[0] === '' ? undefined : values[0];
}

/**
 * Koa middleware that requires a valid access token and sets
 * `ctx.state.requester`. Put it first on every authenticated route, so the
 * token is checked before anything else about the request (even a malformed
 * media ID answers 401 to an anonymous caller).
 *
 * A `user_id` query parameter (an application service's identity assertion)
 * goes to the verifier, so a bridged user's uploads count as theirs (quota,
 * ownership, rate limits); `WhoamiTokenVerifier` asks the homeserver, which
 * decides whether the service may act as that user.
 *
 * Errors: 401 `M_MISSING_TOKEN` (no token), 401 `M_UNKNOWN_TOKEN` (unknown token),
 * 403 `M_GUEST_ACCESS_FORBIDDEN` (`forbidGuests`), and whatever the verifier throws.
 *
 * @example
 * ```ts
 * const authenticate = createClientAuth({ verifier: new WhoamiTokenVerifier({ homeserverUrl }) });
 * router.get('/_matrix/client/v1/media/config', authenticate, handler);
 * ```
 */
export function createClientAuth(options: ClientAuthOptions): Middleware<ClientAuthState> {
  const { verifier } = options;
  const allowQueryToken = options.allowQueryToken ?? true;
  const forbidGuests = options.forbidGuests ?? false;
  const admit = (ctx: Context, requester: Requester | null): void => {
    if (requester === null) throw errors.unknownToken();
    if (forbidGuests && requester.isGuest) throw guestForbidden();
    ctx.state.requester = requester;
  };
  const verifyThenNext = async (ctx: Context, next: () => Promise<unknown>, token: string, options: { userId: string } | undefined): Promise<void> => {
    admit(ctx, await verifier.verify(token, undefined, options));
    await next();
  };
  // Not async: a known answer (token table, cache hit) goes on to `next` without a promise or frame of
  // its own; a throw here reaches Koa as a rejection all the same (koa-compose catches it).
  return function clientAuth(ctx, next) {
    const token = accessTokenFrom(ctx, allowQueryToken);
    if (token === null) throw errors.missingToken();
    const userId = assertedUserIdFrom(ctx);
    const options = userId === undefined ? undefined : { userId };
    const known = verifier.known?.(token, options);
    if (known === undefined) return verifyThenNext(ctx, next, token, options);
    admit(ctx, known);
    return next();
  };
}

function guestForbidden(): MatrixError {
  return new MatrixError(ErrCode.GUEST_ACCESS_FORBIDDEN, 'Guest access not allowed');
}

/**
 * Middleware placed after {@link createClientAuth} on endpoints guests may not
 * use (`config`, `preview_url`: not on the list of
 * https://spec.matrix.org/v1.12/client-server-api/#guest-access): 403 `M_GUEST_ACCESS_FORBIDDEN`.
 */
export function requireNonGuest(): Middleware<Partial<ClientAuthState>> {
  return async function requireNonGuestMiddleware(ctx, next) {
    const requester = ctx.state.requester;
    if (!requester) throw errors.missingToken();
    if (requester.isGuest) throw guestForbidden();
    await next();
  };
}
