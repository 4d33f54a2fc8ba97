import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { StaticTokenVerifier, createClientAuth } from '@hsmedia/client-auth';
import { errors } from '@hsmedia/errors';
import {
  MediaService,
  RemoteMediaError,
  parseContentDisposition,
  type RemoteMedia,
  type RemoteMediaRequest,
  type RemoteMediaSource,
} from '@hsmedia/media-core';
import { decodeMultipart } from '@hsmedia/multipart';
import { FsBlobStore } from '@hsmedia/store-fs';
import { createSqliteMetadataStore, type SqliteMetadataStore } from '@hsmedia/store-sqlite';
import { listen, tmpdir, type TempDir } from '@hsmedia/test-fixtures';
import Koa from 'koa';
import { afterEach, describe, expect, it } from 'vitest';
import { mountMediaRoutes, type FederationThumbnail, type FederationThumbnailProvider } from '../src/index.js';
import { ALICE, startHarness, type Harness } from './harness.js';

// ---------------------------------------------------------------------------
// A scripted remote: the test pushes chunks, ends or breaks the body.
// ---------------------------------------------------------------------------

interface Script {
  readonly request: RemoteMediaRequest;
  push(bytes: Uint8Array): void;
  end(): void;
  fail(error: unknown): void;
  /** Resolves when the consumer asks for more (so the test can pace the body). */
  readonly cancelled: Promise<unknown>;
}

class ScriptedRemote implements RemoteMediaSource {
  readonly calls: RemoteMediaRequest[] = [];
  readonly #waiting: ((script: Script) => void)[] = [];
  readonly #scripts: Script[] = [];
  private readonly head: Partial<Omit<RemoteMedia, 'body'>>;
  private readonly failWith: (() => unknown) | undefined;
  constructor(head: Partial<Omit<RemoteMedia, 'body'>> = {}, failWith?: () => unknown) {
    this.head = head;
    this.failWith = failWith;
  }

  async fetchMedia(request: RemoteMediaRequest): Promise<RemoteMedia> {
    this.calls.push(request);
    if (this.failWith) throw this.failWith();
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    let onCancel!: (reason: unknown) => void;
    const cancelled = new Promise<unknown>((resolve) => (onCancel = resolve));
    const body = new ReadableStream<Uint8Array>({
      start: (c) => {
        controller = c;
      },
      cancel: (reason) => onCancel(reason),
    });
    const script: Script = {
      request,
      push: (bytes) => controller.enqueue(bytes),
      end: () => controller.close(),
      fail: (error) => controller.error(error),
      cancelled,
    };
    this.#scripts.push(script);
    for (const waiter of this.#waiting.splice(0)) waiter(script);
    return {
      contentType: this.head.contentType ?? 'application/octet-stream',
      contentDisposition: this.head.contentDisposition ?? null,
      contentLength: this.head.contentLength ?? null,
      body,
    };
  }

  /** The script of the n-th fetch, once it started. */
  script(index = 0): Promise<Script> {
    const existing = this.#scripts[index];
    if (existing) return Promise.resolve(existing);
    return new Promise((resolve) => {
      const check = (): void => {
        const s = this.#scripts[index];
        if (s) resolve(s);
        else this.#waiting.push(check);
      };
      this.#waiting.push(check);
    });
  }
}

const KIB = 1024;

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

function download(mediaId: string, server = 'other.example'): Promise<Response> {
  return fetch(`${h!.url}/_matrix/client/v1/media/download/${server}/${mediaId}`, { headers: ALICE });
}

async function errcodeOf(res: Response): Promise<[number, string]> {
  return [res.status, ((await res.json()) as { errcode: string }).errcode];
}

/** Reads a response body; resolves with the bytes or rejects when the response was aborted. */
async function readBody(res: Response): Promise<Buffer> {
  return Buffer.from(await res.arrayBuffer());
}

/** Reads until at least `count` bytes arrived, keeping the rest of the stream open. */
async function readAtLeast(reader: ReadableStreamDefaultReader<Uint8Array>, count: number): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  while (total < count) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    total += value.byteLength;
  }
  return Buffer.concat(chunks);
}

describe('remote media: streaming tee, single flight, failures', () => {
  it('streams the first client live while storing, then serves the cache with an ETag', async () => {
    const remote = new ScriptedRemote({ contentType: 'img/png', contentDisposition: "attachment; filename*=utf-8''%C3%BC.png" });
    h = await startHarness({ remote });
    const body = randomBytes(300 * KIB);
    const response = download('live1');
    const script = await remote.script();
    script.push(body.subarray(0, 100 * KIB));
    const res = await response;
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('img/png');
    expect(res.headers.get('etag')).toBeNull();
    const reader = res.body!.getReader();
    // The first bytes reach the client while the remote has not finished: causal, not timed.
    const first = await readAtLeast(reader, 100 * KIB);
    expect(first.equals(body.subarray(0, first.byteLength))).toBe(true);
    expect(await h.mediaRows()).toBe(0);
    script.push(body.subarray(100 * KIB));
    script.end();
    const rest = await readAtLeast(reader, body.byteLength);
    expect(Buffer.concat([first, rest]).equals(body)).toBe(true);
    expect((await reader.read()).done).toBe(true);

    const cached = await download('live1');
    expect(cached.headers.get('etag')).toMatch(/^"[0-9a-f]{64}"$/);
    expect(parseContentDisposition(cached.headers.get('content-disposition') ?? '')?.filename).toBe('ü.png');
    expect((await readBody(cached)).equals(body)).toBe(true);
    expect(remote.calls).toHaveLength(1);
    expect(await h.mediaRows()).toBe(1);
  });

  it('remote dies mid-body: the live response is aborted, waiting clients get 502, nothing is cached, the failure is remembered', async () => {
    const remote = new ScriptedRemote();
    h = await startHarness({ remote, remoteFailureTtlMs: 60_000 });
    const live = download('dies');
    const script = await remote.script();
    script.push(randomBytes(100 * KIB));
    const res = await live;
    expect(res.status).toBe(200);
    const waiting = download('dies'); // joins the same fetch and waits for the commit
    const reader = res.body!.getReader();
    await readAtLeast(reader, 100 * KIB);
    script.fail(new RemoteMediaError('bad_response', 'connection reset'));
    await expect(readAtLeast(reader, Number.MAX_SAFE_INTEGER)).rejects.toThrow();
    expect(await errcodeOf(await waiting)).toEqual([502, 'M_UNKNOWN']);
    expect(await h.mediaRows()).toBe(0);
    expect(await h.blobFiles()).toEqual([]);
    // Remembered: no second fetch.
    expect(await errcodeOf(await download('dies'))).toEqual([502, 'M_UNKNOWN']);
    expect(remote.calls).toHaveLength(1);
  });

  it('oversized by Content-Length: 502 M_TOO_LARGE before any byte, nothing cached', async () => {
    const remote = new ScriptedRemote({ contentLength: 2 * 1024 * 1024 + 1 });
    h = await startHarness({ remote, maxRemoteBytes: 2 * 1024 * 1024 });
    expect(await errcodeOf(await download('big'))).toEqual([502, 'M_TOO_LARGE']);
    expect(await h.mediaRows()).toBe(0);
    expect(await h.blobFiles()).toEqual([]);
  });

  it('oversized while streaming: 502 M_TOO_LARGE when caught early, an aborted response when caught late; nothing cached', async () => {
    const remote = new ScriptedRemote();
    h = await startHarness({ remote, maxRemoteBytes: 200 * KIB });
    // Early: the body passes the limit before it went live.
    const early = download('early');
    const s1 = await remote.script(0);
    s1.push(randomBytes(32 * KIB));
    s1.push(randomBytes(200 * KIB));
    expect(await errcodeOf(await early)).toEqual([502, 'M_TOO_LARGE']);
    await s1.cancelled;

    // Late: already streaming; the response must not end as if complete.
    const late = download('late');
    const s2 = await remote.script(1);
    s2.push(randomBytes(100 * KIB));
    const res = await late;
    expect(res.status).toBe(200);
    s2.push(randomBytes(150 * KIB));
    await expect(readBody(res)).rejects.toThrow();
    await s2.cancelled;
    expect(await h.mediaRows()).toBe(0);
    expect(await h.blobFiles()).toEqual([]);
    expect(await errcodeOf(await download('late'))).toEqual([502, 'M_TOO_LARGE']);
  });

  it('remembers failures per (server, id) for remoteFailureTtlMs only', async () => {
    let now = 1_000_000;
    const remote = new ScriptedRemote({}, () => new RemoteMediaError('not_found', 'remote 404'));
    h = await startHarness({ remote, remoteFailureTtlMs: 30_000, clock: { now: () => now } });
    expect(await errcodeOf(await download('gone'))).toEqual([404, 'M_NOT_FOUND']);
    expect(await errcodeOf(await download('gone'))).toEqual([404, 'M_NOT_FOUND']);
    expect(remote.calls).toHaveLength(1);
    // Another ID, another server: their own fetches.
    await download('gone2');
    await download('gone', 'third.example');
    expect(remote.calls).toHaveLength(3);
    now += 30_001;
    expect(await errcodeOf(await download('gone'))).toEqual([404, 'M_NOT_FOUND']);
    expect(remote.calls).toHaveLength(4);
  });

  it('maps remote timeouts to 504 and never passes a remote status through', async () => {
    const remote = new ScriptedRemote({}, () => new RemoteMediaError('timeout', 'idle', { remoteStatus: 500 }));
    h = await startHarness({ remote });
    expect(await errcodeOf(await download('slow'))).toEqual([504, 'M_UNKNOWN']);
  });

  it('many concurrent clients share one fetch; the first leaving does not stop it for the others', async () => {
    const remote = new ScriptedRemote();
    h = await startHarness({ remote });
    const body = randomBytes(400 * KIB);
    const first = new AbortController();
    const firstResponse = fetch(`${h.url}/_matrix/client/v1/media/download/other.example/shared`, {
      headers: ALICE,
      signal: first.signal,
    });
    const script = await remote.script();
    script.push(body.subarray(0, 128 * KIB));
    const res = await firstResponse;
    const reader = res.body!.getReader();
    await readAtLeast(reader, 64 * KIB);
    const others = Array.from({ length: 20 }, () => download('shared').then(async (r) => [r.status, await readBody(r)] as const));
    first.abort();
    script.push(body.subarray(128 * KIB));
    script.end();
    for (const [status, bytes] of await Promise.all(others)) {
      expect(status).toBe(200);
      expect(bytes.equals(body)).toBe(true);
    }
    expect(remote.calls).toHaveLength(1);
    expect(await h.mediaRows()).toBe(1);
  });

  it('small remote bodies are stored before the first answer (no live stream needed)', async () => {
    const remote = new ScriptedRemote({ contentType: 'text/plain' });
    h = await startHarness({ remote });
    const response = download('small');
    const script = await remote.script();
    script.push(new TextEncoder().encode('tiny'));
    script.end();
    const res = await response;
    expect(res.headers.get('etag')).toMatch(/^"[0-9a-f]{64}"$/);
    expect(await res.text()).toBe('tiny');
  });

  it('legacy requests ask the remote for its legacy endpoint; frozen legacy requests never fetch', async () => {
    const remote = new ScriptedRemote();
    h = await startHarness({ remote });
    const pending = fetch(`${h.url}/_matrix/media/v3/download/other.example/old`);
    const script = await remote.script();
    expect(script.request.legacyOnly).toBe(true);
    script.push(new TextEncoder().encode('legacy'));
    script.end();
    expect(await (await pending).text()).toBe('legacy');
    await h.close();

    const frozenRemote = new ScriptedRemote();
    h = await startHarness({ remote: frozenRemote, freezeLegacy: true });
    expect(await errcodeOf(await fetch(`${h.url}/_matrix/media/v3/download/other.example/old`))).toEqual([404, 'M_NOT_FOUND']);
    expect(frozenRemote.calls).toHaveLength(0);
  });
});

// ---------------------------------------------------------------------------
// Serving our media over /_matrix/federation/v1/media/*
// ---------------------------------------------------------------------------

interface FederationServer {
  readonly url: string;
  readonly media: MediaService;
  readonly metadata: SqliteMetadataStore;
  close(): Promise<void>;
}

let fed: FederationServer | undefined;
afterEach(async () => {
  await fed?.close();
  fed = undefined;
});

/** X-Matrix is injected; these tests stand in a check of the header's presence (the app tests run the real one). */
const SIGNED = { Authorization: 'X-Matrix origin="other.example"' } as const;

async function startFederationServer(options: { thumbnails?: FederationThumbnailProvider; remote?: RemoteMediaSource } = {}): Promise<FederationServer> {
  const dir: TempDir = await tmpdir('hsmedia-fed-routes-');
  const blobs = new FsBlobStore({ root: join(dir.path, 'blobs'), fsync: false });
  const metadata = await createSqliteMetadataStore({ path: join(dir.path, 'media.sqlite') });
  const media = new MediaService({
    serverName: 'media.test',
    blobs,
    metadata,
    maxUploadBytes: 4 * 1024 * 1024,
    pendingPollMs: 10,
    ...(options.remote ? { remote: options.remote } : {}),
  });
  const app = new Koa();
  app.silent = true;
  const verifier = new StaticTokenVerifier({ alice_token: '@alice:media.test' });
  const authenticate: Koa.Middleware = async (ctx, next) => {
    const origin = /^X-Matrix origin="([^"]+)"/.exec(ctx.get('Authorization'))?.[1];
    if (origin === undefined) throw errors.unknown('Missing X-Matrix', 401);
    (ctx.state as { origin?: string }).origin = origin;
    await next();
  };
  mountMediaRoutes(app, {
    media,
    authenticate: createClientAuth({ verifier }),
    federation: { authenticate, ...(options.thumbnails ? { thumbnails: options.thumbnails } : {}) },
  });
  const server = await listen(app);
  return {
    url: server.url,
    media,
    metadata,
    async close() {
      await server.close();
      await media.close();
      await metadata.close();
      await dir.cleanup();
    },
  };
}

/** A thumbnail held in memory, served like any media (the seam takes what sendMedia takes). */
function bytesThumbnail(contentType: string, bytes: Uint8Array): FederationThumbnail {
  return {
    contentType,
    contentDisposition: 'inline',
    size: bytes.byteLength,
    etag: null,
    cachedSmall: () => bytes,
    readSmall: async () => bytes,
    open: async () => new Response(bytes).body!,
    discard: () => undefined,
  };
}

async function uploadTo(server: FederationServer, body: Uint8Array, contentType: string, filename?: string): Promise<string> {
  const query = filename === undefined ? '' : `?filename=${encodeURIComponent(filename)}`;
  const res = await fetch(`${server.url}/_matrix/media/v3/upload${query}`, {
    method: 'POST',
    headers: { ...ALICE, 'Content-Type': contentType },
    body,
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { content_uri: string }).content_uri.split('/').pop()!;
}

describe('federation media router', () => {
  it('answers multipart/mixed with {} metadata, the bytes, the type verbatim and the Unicode name; ETag and 304', async () => {
    fed = await startFederationServer();
    const bytes = randomBytes(200 * KIB);
    const id = await uploadTo(fed, bytes, 'img/png', 'ünï 🐱.png');
    const res = await fetch(`${fed.url}/_matrix/federation/v1/media/download/${id}`, { headers: SIGNED });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^multipart\/mixed; boundary=[0-9a-f]{32}$/);
    expect(Number(res.headers.get('content-length'))).toBeGreaterThan(bytes.byteLength);
    const etag = res.headers.get('etag');
    expect(etag).toMatch(/^"[0-9a-f]{64}"$/);
    expect(res.headers.get('cache-control')).toMatch(/^private/);
    const decoded = await decodeMultipart(res.headers.get('content-type')!, res.body!, { maxContentBytes: 1 << 20 });
    if (decoded.kind !== 'content') throw new Error('expected content');
    expect(decoded.metadata).toEqual({});
    expect(decoded.contentType).toBe('img/png');
    expect(parseContentDisposition(decoded.contentDisposition ?? '')?.filename).toBe('ünï 🐱.png');
    expect(Buffer.from(await new Response(decoded.stream).arrayBuffer()).equals(bytes)).toBe(true);

    const again = await fetch(`${fed.url}/_matrix/federation/v1/media/download/${id}`, {
      headers: { ...SIGNED, 'If-None-Match': etag! },
    });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe('');

    const head = await fetch(`${fed.url}/_matrix/federation/v1/media/download/${id}`, { method: 'HEAD', headers: SIGNED });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(res.headers.get('content-length'));
  });

  it('small media comes from memory in the same framing', async () => {
    fed = await startFederationServer();
    const id = await uploadTo(fed, new TextEncoder().encode('hi'), 'text/plain');
    const res = await fetch(`${fed.url}/_matrix/federation/v1/media/download/${id}`, { headers: SIGNED });
    const decoded = await decodeMultipart(res.headers.get('content-type')!, res.body!, { maxContentBytes: 1 << 20 });
    if (decoded.kind !== 'content') throw new Error('expected content');
    expect(await new Response(decoded.stream).text()).toBe('hi');
    expect(decoded.contentDisposition).toBe('inline');
  });

  it('authentication runs first: no X-Matrix is 401 even for bad IDs', async () => {
    fed = await startFederationServer();
    for (const id of ['abc', '..%2F..%2Fetc', 'x'.repeat(300)]) {
      const res = await fetch(`${fed.url}/_matrix/federation/v1/media/download/${id}`);
      expect(res.status).toBe(401);
    }
  });

  it('404 M_NOT_FOUND for unknown and hostile IDs, and for media merely cached from another server', async () => {
    const remote = new ScriptedRemote();
    fed = await startFederationServer({ remote });
    for (const id of ['unknown', 'bad$id', 'x'.repeat(300)]) {
      expect(await errcodeOf(await fetch(`${fed.url}/_matrix/federation/v1/media/download/${id}`, { headers: SIGNED }))).toEqual([
        404,
        'M_NOT_FOUND',
      ]);
    }
    const pending = fetch(`${fed.url}/_matrix/client/v1/media/download/other.example/cachedId`, { headers: ALICE });
    const script = await remote.script();
    script.push(new TextEncoder().encode('theirs'));
    script.end();
    expect(await (await pending).text()).toBe('theirs');
    expect(await errcodeOf(await fetch(`${fed.url}/_matrix/federation/v1/media/download/cachedId`, { headers: SIGNED }))).toEqual([
      404,
      'M_NOT_FOUND',
    ]);
    expect(remote.calls).toHaveLength(1);
  });

  it('timeout_ms waits for a pending upload: 504 M_NOT_YET_UPLOADED when it does not come; 400 for a bad value', async () => {
    fed = await startFederationServer();
    const now = Date.now();
    await fed.metadata.insertMedia({
      serverName: 'media.test',
      mediaId: 'pendingMedia',
      blobId: null,
      contentType: null,
      uploadName: null,
      size: null,
      sha256: null,
      userId: '@alice:media.test',
      createdAt: now,
      uploadedAt: null,
      expiresAt: now + 3_600_000,
      authenticated: false,
      quarantined: false,
      lastAccessAt: null,
    });
    const url = `${fed.url}/_matrix/federation/v1/media/download/pendingMedia`;
    expect(await errcodeOf(await fetch(`${url}?timeout_ms=0`, { headers: SIGNED }))).toEqual([504, 'M_NOT_YET_UPLOADED']);
    expect(await errcodeOf(await fetch(`${url}?timeout_ms=soon`, { headers: SIGNED }))).toEqual([400, 'M_INVALID_PARAM']);
  });

  it('thumbnail: 400 M_UNKNOWN without a provider, 404 for unknown media, the provider\'s bytes in multipart with one', async () => {
    fed = await startFederationServer();
    const id = await uploadTo(fed, randomBytes(100), 'image/png');
    expect(await errcodeOf(await fetch(`${fed.url}/_matrix/federation/v1/media/thumbnail/${id}?width=32&height=32`, { headers: SIGNED }))).toEqual([
      400,
      'M_UNKNOWN',
    ]);
    expect(await errcodeOf(await fetch(`${fed.url}/_matrix/federation/v1/media/thumbnail/nope?width=32&height=32`, { headers: SIGNED }))).toEqual([
      404,
      'M_NOT_FOUND',
    ]);
    await fed.close();

    const seen: string[] = [];
    fed = await startFederationServer({
      thumbnails: async ({ media, query }) => {
        seen.push(`${media.record.mediaId} ${query.get('width')}x${query.get('height')}`);
        return bytesThumbnail('image/jpeg', new TextEncoder().encode('jpeg!'));
      },
    });
    const id2 = await uploadTo(fed, randomBytes(100), 'image/png');
    const res = await fetch(`${fed.url}/_matrix/federation/v1/media/thumbnail/${id2}?width=32&height=24`, { headers: SIGNED });
    expect(res.status).toBe(200);
    const decoded = await decodeMultipart(res.headers.get('content-type')!, res.body!, { maxContentBytes: 1 << 20 });
    if (decoded.kind !== 'content') throw new Error('expected content');
    expect(decoded.contentType).toBe('image/jpeg');
    expect(await new Response(decoded.stream).text()).toBe('jpeg!');
    expect(seen).toEqual([`${id2} 32x24`]);
  });

  it('thumbnail: a large one is streamed like a download, with the ETag, 304 and HEAD of downloads; the provider sees the origin', async () => {
    const origins: (string | undefined)[] = [];
    fed = await startFederationServer({
      // Stands in a thumbnail larger than the in-memory limit: the stored media itself.
      thumbnails: async ({ media, origin }) => {
        origins.push(origin);
        return media;
      },
    });
    const large = randomBytes(1024 * KIB);
    const id = await uploadTo(fed, large, 'image/png');
    const url = `${fed.url}/_matrix/federation/v1/media/thumbnail/${id}?width=32&height=32`;
    const res = await fetch(url, { headers: SIGNED });
    expect(res.status).toBe(200);
    expect(Number(res.headers.get('content-length'))).toBeGreaterThan(large.byteLength);
    const etag = res.headers.get('etag');
    expect(etag).toMatch(/^"[0-9a-f]{64}"$/);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const decoded = await decodeMultipart(res.headers.get('content-type')!, res.body!, { maxContentBytes: 2 << 20 });
    if (decoded.kind !== 'content') throw new Error('expected content');
    expect(decoded.contentType).toBe('image/png');
    expect(decoded.contentDisposition).toBe('inline');
    expect(Buffer.from(await new Response(decoded.stream).arrayBuffer()).equals(large)).toBe(true);

    const again = await fetch(url, { headers: { ...SIGNED, 'If-None-Match': etag! } });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe('');
    const head = await fetch(url, { method: 'HEAD', headers: SIGNED });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(res.headers.get('content-length'));
    expect(origins).toEqual(['other.example', 'other.example', 'other.example']);
  });

  it('wrong methods are 405 M_UNRECOGNIZED, unknown federation paths 404 M_UNRECOGNIZED', async () => {
    fed = await startFederationServer();
    expect(await errcodeOf(await fetch(`${fed.url}/_matrix/federation/v1/media/download/abc`, { method: 'POST', headers: SIGNED }))).toEqual([
      405,
      'M_UNRECOGNIZED',
    ]);
    expect(await errcodeOf(await fetch(`${fed.url}/_matrix/federation/v1/media/other/abc`, { headers: SIGNED }))).toEqual([
      404,
      'M_UNRECOGNIZED',
    ]);
  });
});

