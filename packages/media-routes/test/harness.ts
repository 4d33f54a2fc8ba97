import { join } from 'node:path';
import { StaticTokenVerifier, createClientAuth } from '@hsmedia/client-auth';
import { MediaService, type MediaServiceOptions } from '@hsmedia/media-core';
import { FsBlobStore } from '@hsmedia/store-fs';
import { createSqliteMetadataStore, type SqliteMetadataStore } from '@hsmedia/store-sqlite';
import { listen, tmpdir, type TempDir } from '@hsmedia/test-fixtures';
import Koa from 'koa';
import { mountMediaRoutes } from '../src/index.js';
import { blobFilesUnder, countMediaRows } from './store-inspect.js';

export const SERVER_NAME = 'media.test';
export const ALICE = { Authorization: 'Bearer alice_token' } as const;
export const GUEST = { Authorization: 'Bearer guest_token' } as const;

/** A full media server on real stores: FsBlobStore in a temp dir, SQLite file, real HTTP on 127.0.0.1. */
export interface Harness {
  readonly url: string;
  readonly dir: TempDir;
  readonly blobs: FsBlobStore;
  readonly metadata: SqliteMetadataStore;
  readonly media: MediaService;
  /** Files under the blob store root (finished and staging), recursively. */
  blobFiles(): Promise<string[]>;
  /** Number of media rows in SQLite. */
  mediaRows(): Promise<number>;
  close(): Promise<void>;
}

export async function startHarness(overrides: Partial<MediaServiceOptions> = {}): Promise<Harness> {
  const dir = await tmpdir('hsmedia-routes-');
  const blobs = new FsBlobStore({ root: join(dir.path, 'blobs'), fsync: false });
  const metadata = await createSqliteMetadataStore({ path: join(dir.path, 'media.sqlite') });
  const media = new MediaService({
    serverName: SERVER_NAME,
    blobs,
    metadata,
    maxUploadBytes: 2 * 1024 * 1024,
    ...overrides,
  });
  const app = new Koa();
  app.silent = true;
  const verifier = new StaticTokenVerifier({
    alice_token: '@alice:media.test',
    guest_token: { userId: '@guest:media.test', isGuest: true },
  });
  mountMediaRoutes(app, { media, authenticate: createClientAuth({ verifier }) });
  const server = await listen(app);
  return {
    url: server.url,
    dir,
    blobs,
    metadata,
    media,
    blobFiles: () => blobFilesUnder(blobs.root),
    mediaRows: () => countMediaRows(metadata),
    async close() {
      await server.close();
      await media.close();
      await metadata.close();
      await dir.cleanup();
    },
  };
}

export async function upload(
  h: Harness,
  body: Uint8Array | string,
  options: { contentType?: string; filename?: string; query?: string } = {},
): Promise<{ mediaId: string; contentUri: string }> {
  const query = options.query ?? (options.filename === undefined ? '' : `?filename=${encodeURIComponent(options.filename)}`);
  const headers: Record<string, string> = { ...ALICE };
  if (options.contentType !== undefined) headers['Content-Type'] = options.contentType;
  const res = await fetch(`${h.url}/_matrix/media/v3/upload${query}`, { method: 'POST', headers, body });
  if (res.status !== 200) throw new Error(`upload failed: ${res.status} ${await res.text()}`);
  const json = (await res.json()) as { content_uri: string };
  const mediaId = json.content_uri.slice(`mxc://${SERVER_NAME}/`.length);
  return { mediaId, contentUri: json.content_uri };
}
