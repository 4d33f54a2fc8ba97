import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MediaService } from '@hsmedia/media-core';
import { MemoryMetadataStore } from '@hsmedia/media-core/memory';
import { mountMediaRoutes } from '@hsmedia/media-routes';
import { FsBlobStore } from '@hsmedia/store-fs';
import { Router } from '@koa/router';
import Koa from 'koa';
import { requireSession, type Session, type SessionTable } from './session-auth.js';

/** Options for {@link createHomeserver}. */
export interface HomeserverOptions {
  /** The homeserver's name, used in `mxc://` URIs. */
  readonly serverName: string;
  /** Where uploaded bytes go (FsBlobStore creates `blobs/` and `staging/` below it). */
  readonly mediaDir: string;
  /** Logged-in sessions by access token. */
  readonly sessions: SessionTable;
  /** Largest upload in bytes. Default 10 MiB. */
  readonly maxUploadBytes?: number;
}

/** The composed homeserver, not yet listening. */
export interface Homeserver {
  readonly app: Koa;
  readonly media: MediaService;
  /** Listens on 127.0.0.1 (port 0 picks one) and resolves with `http://127.0.0.1:<port>`. */
  listen(port?: number): Promise<string>;
  /** Stops listening, flushes the media service and closes the metadata store. */
  close(): Promise<void>;
}

/**
 * An imaginary homeserver that takes the media repository from `@hsmedia`
 * and keeps everything else its own: its sessions and auth middleware and
 * its own routes (here `/account/whoami`) next to the media ones. Media
 * records live in memory (`@hsmedia/media-core/memory`), bytes on disk.
 *
 * @example
 * ```ts
 * const homeserver = createHomeserver({ serverName: 'example.org', mediaDir: './media', sessions });
 * const url = await homeserver.listen(8008);
 * ```
 */
export function createHomeserver(options: HomeserverOptions): Homeserver {
  // Media records in process memory (lost on restart): a real homeserver passes its own
  // MediaMetadataStore here, on its own database, or one of @hsmedia/store-sqlite/-postgres.
  const metadata = new MemoryMetadataStore();
  const media = new MediaService({
    serverName: options.serverName,
    blobs: new FsBlobStore({ root: options.mediaDir }),
    metadata,
    maxUploadBytes: options.maxUploadBytes ?? 10 * 1024 * 1024,
  });
  const authenticate = requireSession(options.sessions);

  // The homeserver's own endpoints share the auth middleware with the media ones.
  const account = new Router({ prefix: '/_matrix/client/v3' });
  account.get('/account/whoami', authenticate, (ctx) => {
    const { userId, deviceId } = ctx.state['requester'] as { userId: string; deviceId: string };
    ctx.body = { user_id: userId, device_id: deviceId };
  });

  const app = new Koa();
  // Errors, CORS, security headers, the media routers, then our routers, then M_UNRECOGNIZED.
  mountMediaRoutes(app, { media, authenticate, routers: [account] });

  let server: Server | undefined;
  return {
    app,
    media,
    listen(port = 0) {
      return new Promise((resolve, reject) => {
        const httpServer = createServer(app.callback());
        httpServer.once('error', reject);
        httpServer.listen(port, '127.0.0.1', () => {
          server = httpServer;
          resolve(`http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`);
        });
      });
    },
    async close() {
      if (server !== undefined) {
        const listening = server;
        server = undefined;
        listening.closeAllConnections();
        await new Promise<void>((resolve) => listening.close(() => resolve()));
      }
      await media.close();
      // The service does not close the stores it was given; the last access times are flushed by now.
      await metadata.close();
    },
  };
}

/** The demo sessions `npm start` prints. A real homeserver creates these at login. */
export const DEMO_SESSIONS: SessionTable = new Map<string, Session>([
  ['alice-session-token', { userId: '@alice:example.localhost', deviceId: 'ALICEPHONE' }],
  ['bob-session-token', { userId: '@bob:example.localhost', deviceId: 'BOBLAPTOP' }],
]);
