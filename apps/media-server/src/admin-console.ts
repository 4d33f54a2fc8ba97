import { ADMIN_CONSOLE_BASE_PATH, ADMIN_CONSOLE_SECURITY_HEADERS, type AdminConsole, type AdminConsoleFile } from '@hsmedia/admin-console';
import { errors } from '@hsmedia/errors';
import { Router } from '@koa/router';
import type { Context } from 'koa';

/** Asset names as Vite writes them: a name, a content hash, an extension. Anything else is not looked up. */
const ASSET_NAME_RE = /^[A-Za-z0-9_-]{1,100}\.[a-z]{2,4}$/;

function send(ctx: Context, file: AdminConsoleFile): void {
  // Replaces the media policy that mountMediaRoutes sets on every answer with the console's own.
  for (const [name, value] of Object.entries(ADMIN_CONSOLE_SECURITY_HEADERS)) ctx.set(name, value);
  ctx.set('Cache-Control', file.cacheControl);
  ctx.set('ETag', file.etag);
  ctx.type = file.contentType;
  if (ctx.get('If-None-Match') === file.etag) {
    ctx.status = 304;
    return;
  }
  ctx.body = file.body;
}

/**
 * The admin console's static files at `/_hsmedia/admin/` (`admin_console.enabled`):
 * the page itself and its hashed assets, looked up by exact name in the table
 * loaded at start (never a path joined from the request). The page needs no
 * token: it asks for one and sends it with each API request.
 */
export function createAdminConsoleRouter(adminConsole: AdminConsole): Router {
  // strict: `/_hsmedia/admin` (redirected) and `/_hsmedia/admin/` (the page) are different routes.
  const router = new Router({ strict: true });
  const base = ADMIN_CONSOLE_BASE_PATH;
  const page = adminConsole.file('');
  if (page === undefined) throw new Error('admin console: no page');
  router.get(base.slice(0, -1), (ctx) => {
    ctx.status = 308;
    ctx.redirect(base);
  });
  router.get(base, (ctx) => send(ctx, page));
  router.get(`${base}assets/:name`, (ctx) => {
    const { name } = ctx.params as { name: string };
    const file = ASSET_NAME_RE.test(name) ? adminConsole.file(`assets/${name}`) : undefined;
    if (file === undefined) throw errors.notFound('No such file');
    send(ctx, file);
  });
  return router;
}
