import { errors } from '@hsmedia/errors';
import type { Requester } from '@hsmedia/runtime';
import type { Middleware } from 'koa';

/** One logged-in device of the imaginary homeserver. */
export interface Session {
  readonly userId: string;
  readonly deviceId: string;
  readonly isGuest?: boolean;
}

/** Access token → session. A real homeserver looks this up in its own database. */
export type SessionTable = ReadonlyMap<string, Session>;

const BEARER = /^Bearer +(\S+) *$/i;

/**
 * The homeserver's own authentication middleware, in place of
 * `@hsmedia/client-auth`: it checks the `Authorization: Bearer` token
 * against the session table and sets `ctx.state.requester`, which is all
 * `@hsmedia/media-routes` asks of an `authenticate` middleware.
 *
 * Errors: 401 `M_MISSING_TOKEN` without a bearer token, 401 `M_UNKNOWN_TOKEN`
 * for a token that is not a session (spec: client-server API, "Using access tokens").
 */
export function requireSession(sessions: SessionTable): Middleware {
  return async function requireSession(ctx, next) {
    const match = BEARER.exec(ctx.get('Authorization'));
    if (!match) throw errors.missingToken('This homeserver wants an Authorization: Bearer header');
    const session = sessions.get(match[1]!);
    if (session === undefined) throw errors.unknownToken('No such session on this homeserver');
    const requester: Requester = { userId: session.userId, deviceId: session.deviceId, isGuest: session.isGuest ?? false };
    ctx.state['requester'] = requester;
    await next();
  };
}
