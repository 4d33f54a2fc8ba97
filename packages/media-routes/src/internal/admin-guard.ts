import { errors } from '@hsmedia/errors';
import type { Requester } from '@hsmedia/runtime';
import type { Context, Middleware } from 'koa';
import { requesterOf, type MediaRouteState } from '../route-context.js';

/**
 * Whether an authenticated requester is a server admin. The request is passed too, for checks that
 * ask the homeserver with the caller's own token.
 */
export type AdminCheck = (requester: Requester, ctx: Context) => boolean | Promise<boolean>;

/**
 * The middleware every admin router runs after `authenticate`: guests and non-admins get 403, and
 * no admin answer is cached by anyone on the way.
 */
export function requireAdmin(isAdmin: AdminCheck): Middleware<MediaRouteState> {
  return async (ctx, next) => {
    const requester = requesterOf(ctx);
    if (requester.isGuest || !(await isAdmin(requester, ctx))) throw errors.forbidden('You are not a server admin');
    ctx.set('Cache-Control', 'no-store');
    await next();
  };
}
