import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isMatrixError, MatrixError } from '@hsmedia/errors';
import { afterEach, describe, expect, it } from 'vitest';
import { allOfPolicies, allowAllPolicy, ServerDenyListPolicy } from './access-policies.js';
import { HttpAccessPolicy } from './http-access-policy.js';
import { MediaService } from './media-service.js';
import { MemoryBlobStore, MemoryMetadataStore } from './memory/index.js';
import type { MediaAccess, MediaAccessPolicy, MediaRecord, RemoteMedia, RemoteMediaRequest, RemoteMediaSource } from './ports/index.js';
import { newMediaRecord } from './media-record.js';

const record: MediaRecord = {
  ...newMediaRecord({ serverName: 'example.org', mediaId: 'abc', contentType: 'image/png', uploadName: null, size: 1, createdAt: 1, authenticated: true, lastAccessAt: 1 }),
  blobId: 'b',
  sha256: '00',
  uploadedAt: 1,
};
const alice: MediaAccess = { requester: { userId: '@alice:example.org', isGuest: false }, legacy: false, purpose: 'download' };
const fromOrigin = (origin: string): MediaAccess => ({ origin, legacy: false, purpose: 'download' });

/** What a policy check ends with: undefined when allowed, the MatrixError when refused. */
async function verdictOf(policy: MediaAccessPolicy, access: MediaAccess): Promise<MatrixError | undefined> {
  try {
    await policy.check(record, access);
    return undefined;
  } catch (err) {
    if (!isMatrixError(err)) throw err;
    return err;
  }
}

describe('allowAllPolicy and ServerDenyListPolicy', () => {
  it('allow-all answers synchronously', () => {
    expect(allowAllPolicy.check(record, alice)).toBeUndefined();
  });

  it('refuses listed origins with 403 M_FORBIDDEN, case-insensitively, and nobody else', async () => {
    const policy = new ServerDenyListPolicy({ denyServingTo: ['Evil.example'] });
    const refused = await verdictOf(policy, fromOrigin('evil.EXAMPLE'));
    expect(refused).toMatchObject({ httpStatus: 403, errcode: 'M_FORBIDDEN' });
    expect(refused?.message).toContain('evil.EXAMPLE');
    expect(policy.check(record, fromOrigin('good.example'))).toBeUndefined();
    expect(policy.check(record, alice)).toBeUndefined();
    expect(policy.check(record, { legacy: true, purpose: 'thumbnail' })).toBeUndefined();
  });
});

describe('allOfPolicies', () => {
  const asyncAllow: MediaAccessPolicy = { check: async () => undefined };
  const denyAlice: MediaAccessPolicy = {
    check: async (_record, access) => {
      if (access.requester?.userId === '@alice:example.org') throw new MatrixError('M_FORBIDDEN', 'no alice', { httpStatus: 403 });
    },
  };

  it('is allow-all when empty and the policy itself when alone', () => {
    expect(allOfPolicies([])).toBe(allowAllPolicy);
    expect(allOfPolicies([denyAlice])).toBe(denyAlice);
  });

  it('allows only what every policy allows; stays synchronous while every answer is', async () => {
    const denyList = new ServerDenyListPolicy({ denyServingTo: ['evil.example'] });
    expect(allOfPolicies([allowAllPolicy, denyList]).check(record, alice)).toBeUndefined();
    const composed = allOfPolicies([denyList, asyncAllow, denyAlice]);
    expect(await verdictOf(composed, fromOrigin('evil.example'))).toMatchObject({ httpStatus: 403 });
    expect(await verdictOf(composed, alice)).toMatchObject({ message: 'no alice' });
    expect(await verdictOf(composed, fromOrigin('good.example'))).toBeUndefined();
  });
});

/** A real policy endpoint on 127.0.0.1; `answer` decides each request (it may leave it unanswered). */
class PolicyServer {
  readonly requests: Record<string, unknown>[] = [];
  readonly headers: IncomingMessage['headers'][] = [];
  answer: (body: Record<string, unknown>, res: ServerResponse) => void = (_body, res) => json(res, 200, { allow: true });
  readonly #server: Server;

  constructor() {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
        this.requests.push(body);
        this.headers.push(req.headers);
        this.answer(body, res);
      });
    });
  }

  async start(): Promise<string> {
    this.#server.listen(0, '127.0.0.1');
    await once(this.#server, 'listening');
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/check`;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
}

describe('HttpAccessPolicy', () => {
  const servers: PolicyServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.stop()));
  });
  async function start(options: { cacheTtlMs?: number; timeoutMs?: number } = {}) {
    const server = new PolicyServer();
    servers.push(server);
    const url = await server.start();
    let now = 1_000_000;
    const clock = { now: () => now };
    const policy = new HttpAccessPolicy({ url, cacheTtlMs: options.cacheTtlMs ?? 60_000, timeoutMs: options.timeoutMs ?? 10_000, token: 's3cret', clock });
    return { server, policy, advance: (ms: number) => void (now += ms) };
  }

  it('asks with the requester, mxc and purpose and the token; caches the allow and answers synchronously on a hit', async () => {
    const { server, policy, advance } = await start();
    expect(await verdictOf(policy, alice)).toBeUndefined();
    expect(server.requests).toEqual([{ user_id: '@alice:example.org', legacy: false, mxc: 'mxc://example.org/abc', purpose: 'download' }]);
    expect(server.headers[0]?.authorization).toBe('Bearer s3cret');
    expect(policy.check(record, alice)).toBeUndefined();
    expect(server.requests).toHaveLength(1);
    // Another purpose or another subject is another question.
    await policy.check(record, { ...alice, purpose: 'thumbnail' });
    await policy.check(record, fromOrigin('other.example'));
    expect(server.requests.slice(1)).toEqual([
      { user_id: '@alice:example.org', legacy: false, mxc: 'mxc://example.org/abc', purpose: 'thumbnail' },
      { origin: 'other.example', legacy: false, mxc: 'mxc://example.org/abc', purpose: 'download' },
    ]);
    advance(60_000);
    await policy.check(record, alice);
    expect(server.requests).toHaveLength(4);
  });

  it('refuses with the endpoint errcode and message (M_NOT_FOUND as 404), cached too', async () => {
    const { server, policy } = await start();
    server.answer = (body, res) =>
      json(res, 200, body['origin'] !== undefined ? { allow: false, errcode: 'M_NOT_FOUND' } : { allow: false, errcode: 'ORG.EXAMPLE.NOT_IN_ROOM', error: 'Not in the room' });
    expect(await verdictOf(policy, alice)).toMatchObject({ httpStatus: 403, errcode: 'ORG.EXAMPLE.NOT_IN_ROOM', message: 'Not in the room' });
    expect(await verdictOf(policy, fromOrigin('other.example'))).toMatchObject({ httpStatus: 404, errcode: 'M_NOT_FOUND' });
    expect(() => policy.check(record, alice)).toThrow('Not in the room');
    expect(server.requests).toHaveLength(2);
  });

  it('a refusal with unusable details is still a refusal: 403 M_FORBIDDEN', async () => {
    const { server, policy } = await start();
    server.answer = (_body, res) => json(res, 200, { allow: false, errcode: 'not a code!', error: 42 });
    expect(await verdictOf(policy, alice)).toMatchObject({ httpStatus: 403, errcode: 'M_FORBIDDEN', message: 'Access to this media is denied by policy' });
  });

  it('asks once for concurrent checks of one key', async () => {
    const { server, policy } = await start();
    const held: ServerResponse[] = [];
    server.answer = (_body, res) => void held.push(res);
    const checks = [policy.check(record, alice), policy.check(record, alice), policy.check(record, alice)];
    while (held.length === 0) await new Promise((resolve) => setImmediate(resolve));
    json(held[0]!, 200, { allow: true });
    await Promise.all(checks);
    expect(server.requests).toHaveLength(1);
  });

  it.each([
    ['a non-2xx status', (res: ServerResponse) => json(res, 500, { allow: true })],
    ['not JSON', (res: ServerResponse) => json(res, 200, '<html>')],
    ['JSON without a boolean allow', (res: ServerResponse) => json(res, 200, { allow: 'yes' })],
    ['a JSON array', (res: ServerResponse) => json(res, 200, [true])],
    ['an oversized body', (res: ServerResponse) => json(res, 200, { allow: true, pad: 'x'.repeat(100_000) })],
  ])('fails closed on %s: 502 M_UNKNOWN, not cached', async (_name, answer) => {
    const { server, policy } = await start();
    server.answer = (_body, res) => answer(res);
    expect(await verdictOf(policy, alice)).toMatchObject({ httpStatus: 502, errcode: 'M_UNKNOWN', message: 'The media access policy gave no usable answer' });
    server.answer = (_body, res) => json(res, 200, { allow: true });
    expect(await verdictOf(policy, alice)).toBeUndefined();
  });

  it('fails closed when the endpoint is down (502) or slower than the timeout (504)', async () => {
    const { server, policy } = await start({ timeoutMs: 200 });
    // Never answered: only the policy's own timeout ends the wait.
    server.answer = () => undefined;
    expect(await verdictOf(policy, alice)).toMatchObject({ httpStatus: 504, errcode: 'M_UNKNOWN', message: 'The media access policy did not answer in time' });
    await server.stop();
    servers.length = 0;
    expect(await verdictOf(policy, alice)).toMatchObject({ httpStatus: 502, errcode: 'M_UNKNOWN', message: 'The media access policy could not be reached' });
  });

  it('refuses a bad configuration', () => {
    expect(() => new HttpAccessPolicy({ url: 'ftp://x/', cacheTtlMs: 0, timeoutMs: 1 })).toThrow('http(s)');
    expect(() => new HttpAccessPolicy({ url: 'http://127.0.0.1/', cacheTtlMs: -1, timeoutMs: 1 })).toThrow('cacheTtlMs');
    expect(() => new HttpAccessPolicy({ url: 'http://127.0.0.1/', cacheTtlMs: 0, timeoutMs: 0 })).toThrow('timeoutMs');
  });
});

describe('MediaService preventDownloadsFrom', () => {
  /** Counts the fetches that reach the remote side. */
  class CountingRemote implements RemoteMediaSource {
    readonly calls: string[] = [];
    async fetchMedia(request: RemoteMediaRequest): Promise<RemoteMedia> {
      this.calls.push(request.serverName);
      const bytes = new TextEncoder().encode('remote bytes');
      return { contentType: 'text/plain', contentDisposition: null, contentLength: bytes.byteLength, body: new Blob([bytes]).stream() };
    }
  }

  it('answers 404 for a listed server without contacting it, fetches from others, and still serves what is cached', async () => {
    const remote = new CountingRemote();
    const metadata = new MemoryMetadataStore();
    const media = new MediaService({ serverName: 'example.org', blobs: new MemoryBlobStore(), metadata, maxUploadBytes: 100, remote, preventDownloadsFrom: ['Blocked.example'] });
    try {
      expect(media.mayFetchFrom('blocked.example')).toBe(false);
      await expect(media.getMedia('blocked.example', 'abc')).rejects.toMatchObject({ httpStatus: 404, errcode: 'M_NOT_FOUND' });
      expect(remote.calls).toEqual([]);
      (await media.getMedia('fine.example', 'abc', { allowLive: false })).discard();
      expect(remote.calls).toEqual(['fine.example']);
      // Cached before the server was listed: Synapse keeps serving it.
      const cached = (await metadata.getMedia('fine.example', 'abc'))!;
      await metadata.insertMedia({ ...cached, serverName: 'blocked.example' });
      (await media.getMedia('blocked.example', 'abc')).discard();
      expect(remote.calls).toEqual(['fine.example']);
    } finally {
      await media.close();
    }
  });
});
