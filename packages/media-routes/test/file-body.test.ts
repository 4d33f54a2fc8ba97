import { readdirSync, readlinkSync, truncateSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { StaticTokenVerifier, createClientAuth } from '@hsmedia/client-auth';
import { errors } from '@hsmedia/errors';
import { MediaService } from '@hsmedia/media-core';
import { decodeMultipart } from '@hsmedia/multipart';
import { FsBlobStore } from '@hsmedia/store-fs';
import { createSqliteMetadataStore, type SqliteMetadataStore } from '@hsmedia/store-sqlite';
import { binaryBytes, listen, tmpdir, type TempDir } from '@hsmedia/test-fixtures';
import Koa from 'koa';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { mountMediaRoutes } from '../src/index.js';

// Stored files are written from the FileHandle with reused buffers (internal/write-file-body.ts),
// for client downloads and inside federation multipart answers alike: bytes, framing, and the
// file closed on every exit.

const MiB = 1024 * 1024;
const ALICE = { Authorization: 'Bearer alice_token' } as const;
/** X-Matrix is injected; a header check stands in for it (the app tests run the real one). */
const SIGNED = { Authorization: 'X-Matrix origin="other.example"' } as const;

interface Server {
  readonly url: string;
  readonly blobs: FsBlobStore;
  close(): Promise<void>;
}

let server: Server;
let dir: TempDir;
let metadata: SqliteMetadataStore;
beforeEach(async () => {
  dir = await tmpdir('hsmedia-file-body-');
  const blobs = new FsBlobStore({ root: join(dir.path, 'blobs'), fsync: false });
  metadata = await createSqliteMetadataStore({ path: join(dir.path, 'media.sqlite') });
  const media = new MediaService({ serverName: 'media.test', blobs, metadata, maxUploadBytes: 64 * MiB });
  const app = new Koa();
  app.silent = true;
  const authenticate: Koa.Middleware = async (ctx, next) => {
    const origin = /^X-Matrix origin="([^"]+)"/.exec(ctx.get('Authorization'))?.[1];
    if (origin === undefined) throw errors.unknown('Missing X-Matrix', 401);
    (ctx.state as { origin?: string }).origin = origin;
    await next();
  };
  mountMediaRoutes(app, {
    media,
    authenticate: createClientAuth({ verifier: new StaticTokenVerifier({ alice_token: '@alice:media.test' }) }),
    federation: { authenticate },
  });
  const http = await listen(app);
  server = {
    url: http.url,
    blobs,
    async close() {
      await http.close();
      await media.close();
    },
  };
});
afterEach(async () => {
  await server.close();
  await metadata.close();
  await dir.cleanup();
});

async function uploadBytes(bytes: Uint8Array): Promise<string> {
  const res = await fetch(`${server.url}/_matrix/media/v3/upload?filename=big.bin`, {
    method: 'POST',
    headers: { ...ALICE, 'Content-Type': 'application/octet-stream' },
    body: bytes,
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { content_uri: string }).content_uri.split('/').pop()!;
}

const clientUrl = (mediaId: string): string => `${server.url}/_matrix/client/v1/media/download/media.test/${mediaId}`;
const federationUrl = (mediaId: string): string => `${server.url}/_matrix/federation/v1/media/download/${mediaId}`;

/** Descriptors of this process that point into the blob store. */
function openBlobFiles(): string[] {
  const open: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(server.blobs.root)) open.push(target);
    } catch {
      // closed while listing
    }
  }
  return open;
}

/** The one finished blob file on disk. */
function onlyBlobPath(): string {
  const found: string[] = [];
  const walk = (path: string): void => {
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      if (entry.isDirectory()) walk(join(path, entry.name));
      else found.push(join(path, entry.name));
    }
  };
  walk(join(server.blobs.root, 'blobs'));
  expect(found).toHaveLength(1);
  return found[0]!;
}

/** Reads a response with node:http: status, the declared length, the bytes, and whether it ended cleanly. */
function getRaw(url: string, headers: Record<string, string>): Promise<{ status: number; length: number; body: Buffer; complete: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      const settle = (): void =>
        resolve({ status: res.statusCode ?? 0, length: Number(res.headers['content-length']), body: Buffer.concat(chunks), complete: res.complete });
      res.once('end', settle);
      res.once('error', settle);
      res.once('aborted', settle);
    });
    req.once('error', reject);
    req.end();
  });
}

/** Starts a download, reads one chunk, then cuts the connection mid-body. */
function disconnectAfterFirstChunk(url: string, headers: Record<string, string>): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      expect(res.statusCode).toBe(200);
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.on('error', (error) => {
      if (!req.destroyed) reject(error);
    });
    req.end();
  });
}

describe.runIf(process.platform === 'linux')('stored files on the byte path', () => {
  it('a federation download frames the file byte for byte, with the exact Content-Length, and closes it', async () => {
    const bytes = binaryBytes(6 * MiB + 77, 21);
    const mediaId = await uploadBytes(bytes);
    const res = await fetch(federationUrl(mediaId), { headers: SIGNED });
    expect(res.status).toBe(200);
    const declared = Number(res.headers.get('content-length'));
    const raw = Buffer.from(await res.arrayBuffer());
    expect(raw.byteLength).toBe(declared);
    const decoded = await decodeMultipart(res.headers.get('content-type')!, new Response(raw).body!, { maxContentBytes: 8 * MiB });
    expect(decoded.kind).toBe('content');
    if (decoded.kind !== 'content') return;
    const content = Buffer.from(await new Response(decoded.stream).arrayBuffer());
    expect(Buffer.compare(content, bytes)).toBe(0);
    await vi.waitFor(() => expect(openBlobFiles()).toEqual([]), { timeout: 10_000, interval: 20 });
  });

  it('a federation requester that disconnects mid-body gets its file closed, and serving goes on', async () => {
    const bytes = binaryBytes(32 * MiB, 22);
    const mediaId = await uploadBytes(bytes);
    await disconnectAfterFirstChunk(federationUrl(mediaId), SIGNED);
    await vi.waitFor(() => expect(openBlobFiles()).toEqual([]), { timeout: 10_000, interval: 20 });
    const again = await getRaw(federationUrl(mediaId), SIGNED);
    expect(again.status).toBe(200);
    expect(again.complete).toBe(true);
    expect(again.body.byteLength).toBe(again.length);
  });

  it('a file shorter than its record cuts the download instead of ending it short, and is closed', async () => {
    const bytes = binaryBytes(4 * MiB, 23);
    const mediaId = await uploadBytes(bytes);
    truncateSync(onlyBlobPath(), 3 * MiB + 5);
    const client = await getRaw(clientUrl(mediaId), ALICE);
    expect(client.status).toBe(200);
    expect(client.length).toBe(4 * MiB);
    expect(client.complete).toBe(false);
    expect(client.body.byteLength).toBeLessThan(4 * MiB);
    const federation = await getRaw(federationUrl(mediaId), SIGNED);
    expect(federation.status).toBe(200);
    expect(federation.complete).toBe(false);
    expect(federation.body.byteLength).toBeLessThan(federation.length);
    await vi.waitFor(() => expect(openBlobFiles()).toEqual([]), { timeout: 10_000, interval: 20 });
  });

  it('many concurrent whole and ranged downloads all get their exact bytes', async () => {
    const bytes = binaryBytes(3 * MiB + 1234, 24);
    const mediaId = await uploadBytes(bytes);
    const ranges = Array.from({ length: 12 }, (_, index) => {
      const start = index * 200_003;
      return { start, end: Math.min(bytes.byteLength - 1, start + 700_001 + index) };
    });
    const [whole, ...parts] = await Promise.all([
      getRaw(clientUrl(mediaId), ALICE),
      ...ranges.map(({ start, end }) => getRaw(clientUrl(mediaId), { ...ALICE, Range: `bytes=${start}-${end}` })),
    ]);
    expect(Buffer.compare(whole!.body, bytes)).toBe(0);
    parts.forEach((part, index) => {
      expect(part.status).toBe(206);
      expect(Buffer.compare(part.body, bytes.subarray(ranges[index]!.start, ranges[index]!.end + 1))).toBe(0);
    });
    await vi.waitFor(() => expect(openBlobFiles()).toEqual([]), { timeout: 10_000, interval: 20 });
  });
});
