import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Logger } from '@hsmedia/runtime';
import { createAddressPolicy } from '@hsmedia/net-guard';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FederationClient, type FederationClientOptions } from '../src/index.js';
import {
  BOUNDARY,
  failureOf,
  INLINE_TAIL,
  json,
  locationBody,
  loopbackLookup,
  MULTIPART_TYPE,
  ORIGIN,
  remoteFailure,
  signingKey,
  startRemote,
  type ScriptedRemote,
} from './helpers.js';

// The relay's hardening against remotes: bodies that do not match their declared length, remotes
// that drip headers or bodies, and how failures are logged. Scripted remotes on 127.0.0.1.

const V1 = '/_matrix/federation/v1/media/download/abc';
const LEGACY = '/_matrix/media/v3/download/remote.test/abc';
const REQUEST = { serverName: 'remote.test', mediaId: 'abc', maxBytes: 1 << 20, timeoutMs: 0 } as const;

let remote: ScriptedRemote;
let client: FederationClient;

function makeClient(overrides: Partial<FederationClientOptions> = {}, base = remote.base): FederationClient {
  return new FederationClient({
    serverName: ORIGIN,
    signingKey,
    addressPolicy: createAddressPolicy({ allow: ['127.0.0.1/32'] }),
    destinations: { 'remote.test': base },
    lookup: loopbackLookup(),
    ...overrides,
  });
}

/** The head of an inline multipart body up to the media bytes, with the media part's own headers. */
function partHead(headers: string): string {
  return `\r\n--${BOUNDARY}\r\nContent-Type: application/json\r\n\r\n{}\r\n--${BOUNDARY}\r\n${headers}\r\n\r\n`;
}

/** Reads a body to its end, keeping how many bytes arrived before it ended or failed. */
async function drain(body: ReadableStream<Uint8Array>): Promise<{ bytes: number; error: unknown }> {
  let bytes = 0;
  try {
    for await (const chunk of body) bytes += chunk.byteLength;
    return { bytes, error: undefined };
  } catch (error) {
    return { bytes, error };
  }
}

/** A raw TCP remote (for answers `node:http` will not write): `onRequest` gets the socket once the request head is in. */
async function rawRemote(onRequest: (socket: Socket) => void): Promise<{ base: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let head = '';
    const onData = (data: Buffer): void => {
      head += data.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      onRequest(socket);
    };
    socket.on('data', onData);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

/** Writes `text` one byte every `everyMs` until the socket closes. */
function drip(socket: Socket, text: string, everyMs: number): void {
  let index = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || index >= text.length) return void clearInterval(timer);
    socket.write(text[index++]!);
  }, everyMs);
  socket.on('close', () => clearInterval(timer));
}

beforeAll(async () => {
  remote = await startRemote();
});
afterAll(async () => {
  await remote.close();
});
afterEach(() => {
  client?.close();
  remote.routes.clear();
  remote.seen.length = 0;
});

describe('a media part carries exactly its declared Content-Length', () => {
  it('a part that declares 10 bytes and sends 20: bad_response, not one byte passed on', async () => {
    remote.routes.set(V1, (_req, res) => {
      res.writeHead(200, { 'Content-Type': MULTIPART_TYPE });
      res.end(partHead('Content-Type: image/png\r\nContent-Length: 10') + '0123456789EXTRABYTES' + INLINE_TAIL);
    });
    client = makeClient();
    const media = await client.fetchMedia(REQUEST);
    expect(media.contentLength).toBe(10);
    const { bytes, error } = await drain(media.body);
    expect(error).toMatchObject({ name: 'RemoteMediaError', code: 'bad_response' });
    expect(bytes).toBe(0);
  });

  it('the chunk that completes the declared length is held until the part really ends there', async () => {
    let sendRest!: () => void;
    remote.routes.set(V1, (_req, res) => {
      res.writeHead(200, { 'Content-Type': MULTIPART_TYPE });
      res.write(partHead('Content-Type: image/png\r\nContent-Length: 10') + '01234');
      sendRest = () => {
        res.write('56789');
        setImmediate(() => res.end('MORE' + INLINE_TAIL));
      };
    });
    client = makeClient();
    const media = await client.fetchMedia(REQUEST);
    const reader = media.body.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('01234');
    sendRest();
    const error = await failureOf(reader.read());
    expect(error).toMatchObject({ name: 'RemoteMediaError', code: 'bad_response' });
  });

  it('a part that declares 100 bytes and sends 40: bad_response', async () => {
    remote.routes.set(V1, (_req, res) => {
      res.writeHead(200, { 'Content-Type': MULTIPART_TYPE });
      res.end(partHead('Content-Type: image/png\r\nContent-Length: 100') + 'x'.repeat(40) + INLINE_TAIL);
    });
    client = makeClient();
    const media = await client.fetchMedia(REQUEST);
    expect((await drain(media.body)).error).toMatchObject({ code: 'bad_response' });
  });

  it('a part of exactly its declared length is passed on whole', async () => {
    remote.routes.set(V1, (_req, res) => {
      res.writeHead(200, { 'Content-Type': MULTIPART_TYPE });
      res.end(partHead('Content-Type: image/png\r\nContent-Length: 10') + '0123456789' + INLINE_TAIL);
    });
    client = makeClient();
    const media = await client.fetchMedia(REQUEST);
    expect(await drain(media.body)).toEqual({ bytes: 10, error: undefined });
  });

  it('a Location target that declares more than it sends: bad_response', async () => {
    remote.routes.set(V1, (_req, res) => {
      res.writeHead(200, { 'Content-Type': MULTIPART_TYPE });
      res.end(locationBody(`${remote.base}/cdn/short`));
    });
    remote.routes.set('/cdn/short', (req, res) => {
      res.writeHead(200, { 'Content-Type': 'image/png', 'Content-Length': 100 });
      res.write('x'.repeat(40), () => setImmediate(() => req.socket.destroy()));
    });
    client = makeClient();
    const media = await client.fetchMedia(REQUEST);
    expect((await drain(media.body)).error).toMatchObject({ code: 'bad_response' });
  });

  it('legacy and Location bodies that send more than declared: only the declared bytes, never the rest', async () => {
    // HTTP/1.1 framing (RFC 9112 §6.3): the message ends after Content-Length bytes, so what follows
    // is not this body; the connection is not reused for it either.
    const raw = await rawRemote((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 10\r\n\r\n0123456789EXTRA-BYTES-AFTER-THE-BODY');
    });
    try {
      client = makeClient({}, raw.base);
      const legacy = await client.fetchMedia({ ...REQUEST, legacyOnly: true });
      expect(legacy.contentLength).toBe(10);
      expect(await drain(legacy.body)).toEqual({ bytes: 10, error: undefined });
    } finally {
      await raw.close();
    }
  });
});

describe('deadline and minimum rate', () => {
  it('a remote that drips its headers fails with timeout at the overall deadline', async () => {
    const raw = await rawRemote((socket) => drip(socket, `HTTP/1.1 200 OK\r\nContent-Type: ${MULTIPART_TYPE}\r\nX-Padding: ${'p'.repeat(10_000)}\r\n\r\n`, 5));
    try {
      client = makeClient({ timeouts: { totalMs: 300, idleMs: 60_000 } }, raw.base);
      const error = await remoteFailure(client.fetchMedia(REQUEST));
      expect(error.code).toBe('timeout');
      expect(error.message).toContain('300 ms');
    } finally {
      await raw.close();
    }
  });

  it('the deadline covers the body: a body still arriving when it passes fails with timeout', async () => {
    remote.routes.set(V1, (_req, res) => {
      res.writeHead(200, { 'Content-Type': MULTIPART_TYPE });
      res.write(partHead('Content-Type: video/mp4') + 'first bytes');
    });
    client = makeClient({ timeouts: { totalMs: 1000, idleMs: 60_000, minBytesPerSecond: 0 } });
    // Normally the headers are in long before the deadline and the body fails; on a stalled machine
    // the deadline may pass first, which must be the same failure.
    const answer = await client.fetchMedia(REQUEST).catch((error: unknown) => ({ error }));
    const error = 'body' in answer ? (await drain(answer.body)).error : answer.error;
    expect(error).toMatchObject({ name: 'RemoteMediaError', code: 'timeout' });
  });

  it('a body that drips under minBytesPerSecond fails with timeout, idle timeout or not', async () => {
    const raw = await rawRemote((socket) => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Type: ${MULTIPART_TYPE}\r\n\r\n${partHead('Content-Type: video/mp4')}`);
      drip(socket, 'd'.repeat(100_000), 10); // at most 100 bytes/s
    });
    try {
      client = makeClient({ timeouts: { totalMs: 0, idleMs: 60_000, minBytesPerSecond: 2000, rateWindowMs: 200 } }, raw.base);
      const media = await client.fetchMedia(REQUEST);
      const { error } = await drain(media.body);
      expect(error).toMatchObject({ name: 'RemoteMediaError', code: 'timeout' });
      expect((error as Error).message).toContain('under 2000 bytes/s');
    } finally {
      await raw.close();
    }
  });

  it('a slow reader does not count against the remote: only time spent waiting for it does', async () => {
    const body = 'b'.repeat(256 * 1024);
    remote.routes.set(V1, (_req, res) => {
      res.writeHead(200, { 'Content-Type': MULTIPART_TYPE });
      res.end(partHead('Content-Type: video/mp4') + body + INLINE_TAIL);
    });
    // The reader pauses for more than two windows: counted by the wall clock, the second would be empty.
    client = makeClient({ timeouts: { totalMs: 0, minBytesPerSecond: 1000, rateWindowMs: 250 } });
    const media = await client.fetchMedia(REQUEST);
    const reader = media.body.getReader();
    let bytes = (await reader.read()).value!.byteLength;
    await new Promise((resolve) => setTimeout(resolve, 600)); // a slow consumer, not an assertion
    for (;;) {
      const next = await reader.read();
      if (next.done) break;
      bytes += next.value.byteLength;
    }
    expect(bytes).toBe(body.length);
  });

  it('validates the options', () => {
    expect(() => makeClient({ timeouts: { totalMs: -1 } })).toThrow(RangeError);
    expect(() => makeClient({ timeouts: { minBytesPerSecond: 1.5 } })).toThrow(RangeError);
    expect(() => makeClient({ timeouts: { rateWindowMs: 0 } })).toThrow(RangeError);
    expect(() => makeClient({ timeouts: { totalMs: 0, minBytesPerSecond: 0 } })).not.toThrow();
  });
});

describe('logging', () => {
  interface Call {
    readonly level: string;
    readonly obj: Record<string, unknown>;
    readonly msg: string | undefined;
  }
  function captureLogger(): Logger & { calls: Call[] } {
    const calls: Call[] = [];
    const at = (level: string) => (obj: object, msg?: string) => void calls.push({ level, obj: obj as Record<string, unknown>, msg });
    return { calls, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  }

  it('a remote failure is one warn line without a stack', async () => {
    remote.routes.set(V1, (_req, res) => json(res, 404, { errcode: 'M_NOT_FOUND', error: 'nope' }));
    const logger = captureLogger();
    client = makeClient({ logger });
    expect((await remoteFailure(client.fetchMedia(REQUEST))).code).toBe('not_found');
    const loud = logger.calls.filter((call) => call.level !== 'debug');
    expect(loud).toEqual([
      {
        level: 'warn',
        msg: 'remote media fetch failed',
        obj: {
          serverName: 'remote.test',
          mediaId: 'abc',
          what: 'mxc://remote.test/abc',
          failure: 'not_found',
          remoteStatus: 404,
          remoteErrcode: 'M_NOT_FOUND',
          reason: 'mxc://remote.test/abc: remote answered 404 M_NOT_FOUND',
        },
      },
    ]);
  });

  it('a remote 504 M_NOT_YET_UPLOADED is a timeout that keeps the errcode (media-core passes it on)', async () => {
    remote.routes.set(V1, (_req, res) => json(res, 504, { errcode: 'M_NOT_YET_UPLOADED', error: 'later' }));
    const logger = captureLogger();
    client = makeClient({ logger });
    const error = await remoteFailure(client.fetchMedia(REQUEST));
    expect(error).toMatchObject({ code: 'timeout', remoteStatus: 504, remoteErrcode: 'M_NOT_YET_UPLOADED' });
    expect(logger.calls.filter((call) => call.level === 'warn')).toHaveLength(1);
    expect(logger.calls.filter((call) => call.level === 'error')).toHaveLength(0);
  });

  it('an unreachable legacy fallback is logged at warn too', async () => {
    remote.routes.set(LEGACY, (req) => req.socket.destroy());
    const logger = captureLogger();
    client = makeClient({ logger });
    await remoteFailure(client.fetchMedia(REQUEST));
    expect(logger.calls.filter((call) => call.level === 'warn')).toHaveLength(1);
    expect(logger.calls.filter((call) => call.level === 'error')).toHaveLength(0);
    expect(JSON.stringify(logger.calls)).not.toContain('    at ');
  });
});
