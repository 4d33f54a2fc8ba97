import { request } from 'node:http';
import { join } from 'node:path';
import { StaticTokenVerifier, createClientAuth } from '@hsmedia/client-auth';
import { MediaService, type MediaServiceOptions } from '@hsmedia/media-core';
import type { Clock } from '@hsmedia/runtime';
import { FsBlobStore } from '@hsmedia/store-fs';
import { createSqliteMetadataStore, type SqliteMetadataStore } from '@hsmedia/store-sqlite';
import { listen, tmpdir, type TempDir } from '@hsmedia/test-fixtures';
import Koa from 'koa';
import { mountMediaRoutes, type MediaRateLimits } from '../src/index.js';
import { blobFilesUnder, countMediaRows } from './store-inspect.js';

export const SERVER_NAME = 'media.test';
export const ALICE = { Authorization: 'Bearer alice_token' } as const;
export const BOB = { Authorization: 'Bearer bob_token' } as const;
export const GUEST = { Authorization: 'Bearer guest_token' } as const;

/** A clock the test moves by hand. */
export class ManualClock implements Clock {
  current: number;
  constructor(start: number = 1_700_000_000_000) {
    this.current = start;
  }
  now(): number {
    return this.current;
  }
  advance(ms: number): void {
    this.current += ms;
  }
}

/** One media server instance over (possibly shared) real stores. */
export interface LimitsHarness {
  readonly url: string;
  readonly dir: TempDir;
  readonly blobs: FsBlobStore;
  readonly metadata: SqliteMetadataStore;
  readonly media: MediaService;
  blobFiles(): Promise<string[]>;
  mediaRows(): Promise<number>;
  /** A second server instance on the same SQLite file and blob directory. */
  startPeer(overrides?: Partial<MediaServiceOptions>): Promise<{ url: string; media: MediaService }>;
  close(): Promise<void>;
}

export interface LimitsHarnessOptions {
  readonly service?: Partial<MediaServiceOptions>;
  readonly rateLimits?: MediaRateLimits;
}

function appFor(media: MediaService, rateLimits: MediaRateLimits | undefined): Koa {
  const app = new Koa();
  app.silent = true;
  const verifier = new StaticTokenVerifier({
    alice_token: '@alice:media.test',
    bob_token: '@bob:media.test',
    guest_token: { userId: '@guest:media.test', isGuest: true },
  });
  mountMediaRoutes(app, {
    media,
    authenticate: createClientAuth({ verifier }),
    ...(rateLimits === undefined ? {} : { rateLimits }),
  });
  return app;
}

export async function startLimitsHarness(options: LimitsHarnessOptions = {}): Promise<LimitsHarness> {
  const dir = await tmpdir('hsmedia-limits-');
  const blobs = new FsBlobStore({ root: join(dir.path, 'blobs'), fsync: false });
  const metadata = await createSqliteMetadataStore({ path: join(dir.path, 'media.sqlite') });
  const base: MediaServiceOptions = { serverName: SERVER_NAME, blobs, metadata, maxUploadBytes: 2 * 1024 * 1024 };
  const media = new MediaService({ ...base, ...options.service });
  const server = await listen(appFor(media, options.rateLimits));
  const peers: { close(): Promise<void> }[] = [];
  return {
    url: server.url,
    dir,
    blobs,
    metadata,
    media,
    blobFiles: () => blobFilesUnder(blobs.root),
    mediaRows: () => countMediaRows(metadata),
    async startPeer(overrides = {}) {
      const peerMetadata = await createSqliteMetadataStore({ path: join(dir.path, 'media.sqlite') });
      const peerMedia = new MediaService({ ...base, metadata: peerMetadata, ...overrides });
      const peerServer = await listen(appFor(peerMedia, undefined));
      peers.push({
        async close() {
          await peerServer.close();
          await peerMedia.close();
          await peerMetadata.close();
        },
      });
      return { url: peerServer.url, media: peerMedia };
    },
    async close() {
      for (const peer of peers) await peer.close();
      await server.close();
      await media.close();
      await metadata.close();
      await dir.cleanup();
    },
  };
}

export async function createId(url: string, headers: Record<string, string> = ALICE): Promise<{ mediaId: string; expiresAt: number }> {
  const res = await fetch(`${url}/_matrix/media/v1/create`, {
    method: 'POST',
    headers: { ...headers, 'Content-Type': 'application/json' },
    body: '{}',
  });
  if (res.status !== 200) throw new Error(`create failed: ${res.status} ${await res.text()}`);
  const json = (await res.json()) as { content_uri: string; unused_expires_at: number };
  return { mediaId: json.content_uri.slice(`mxc://${SERVER_NAME}/`.length), expiresAt: json.unused_expires_at };
}

export function putMedia(
  url: string,
  mediaId: string,
  body: Uint8Array | string,
  headers: Record<string, string> = ALICE,
): Promise<Response> {
  return fetch(`${url}/_matrix/media/v3/upload/${SERVER_NAME}/${mediaId}`, {
    method: 'PUT',
    headers: { ...headers, 'Content-Type': 'application/octet-stream' },
    body,
  });
}

export function postUpload(url: string, body: Uint8Array | string, headers: Record<string, string> = ALICE): Promise<Response> {
  return fetch(`${url}/_matrix/media/v3/upload`, {
    method: 'POST',
    headers: { ...headers, 'Content-Type': 'application/octet-stream' },
    body,
  });
}

export function download(url: string, mediaId: string, query = '', headers: Record<string, string> = ALICE): Promise<Response> {
  return fetch(`${url}/_matrix/client/v1/media/download/${SERVER_NAME}/${mediaId}${query}`, { headers });
}

export async function expectError(res: Response, status: number, errcode: string): Promise<Record<string, unknown>> {
  const body = (await res.json()) as Record<string, unknown>;
  if (res.status !== status || body['errcode'] !== errcode) {
    throw new Error(`expected ${status} ${errcode}, got ${res.status} ${JSON.stringify(body)}`);
  }
  return body;
}

/**
 * Starts a request with a huge declared body, sends only `firstChunk` of it,
 * and resolves with the response (status, JSON) and how many bytes were sent
 * by then. The request is never finished by the client: a response proves
 * the server answered without reading the body.
 */
export function sendPartially(
  url: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  declaredLength: number,
  firstChunk: Uint8Array,
): Promise<{ status: number; json: Record<string, unknown>; sent: number; finished: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, {
      method,
      headers: { ...headers, 'Content-Type': 'application/octet-stream', 'Content-Length': String(declaredLength) },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const finished = req.writableFinished;
        req.destroy();
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({
          status: res.statusCode ?? 0,
          json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>),
          sent: firstChunk.byteLength,
          finished,
        });
      });
    });
    req.write(firstChunk);
  });
}
