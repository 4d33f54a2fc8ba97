/**
 * `auth.homeserver_admins`: the homeserver's server admins are admins of the media admin API
 * too, so the reverse-proxied `/_synapse/admin/v1/media/*` routes keep working for them.
 */
import { accessTokenFrom, HomeserverAdminCheck } from '@hsmedia/client-auth';
import { abortSignalFor } from '@hsmedia/koa-matrix';
import type { Requester } from '@hsmedia/runtime';
import type { Context } from 'koa';
import type { MediaServerConfig } from './config.js';

/** The check for `createOperations`, or undefined when the option is off (or not in homeserver mode). */
export function homeserverAdminsOf(config: MediaServerConfig): ((requester: Requester, ctx: Context) => Promise<boolean>) | undefined {
  if (config.auth.kind !== 'homeserver' || !config.auth.homeserverAdmins) return undefined;
  const check = new HomeserverAdminCheck({ homeserverUrl: config.auth.homeserverUrl });
  return async (requester, ctx) => {
    // The request was authenticated with this token a moment ago; ask with the same one.
    const token = accessTokenFrom(ctx);
    if (token === null) return false;
    return check.isAdmin(requester.userId, token, abortSignalFor(ctx));
  };
}
