import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readdir } from 'node:fs/promises';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startServer, type StartedServer } from '../src/server.js';
import { openStores, type OpenStores } from '../src/stores.js';
import { LogSink, tempDir, testConfig } from './helpers.js';

// The relay end to end: b.test (a real server, in process) fetches remote.test's media from a
// scripted remote on 127.0.0.1 that writes raw bytes, so it can lie about lengths. Clients talk to
// b.test over raw TCP, so every byte b.test puts on the wire is seen: a response must never carry
// more or fewer bytes than it declares, and a failed fetch caches nothing.

const TOKEN = 'relay_token';
const BOUNDARY = 'relay0b0undary';
const DOWNLOAD_V1 = '/_matrix/federation/v1/media/download/';
const LIVE_SIZE = 256 * 1024; // past the live window (64 KiB): the first client is streamed to as bytes arrive

let dir: { path: string; cleanup(): Promise<void> };
let remote: Server;
let b: StartedServer;
let storesB: OpenStores;
const log = new LogSink();
/** Scripted answers of remote.test by media ID: raw HTTP/1.1 response bytes. */
const answers = new Map<string, (socket: Socket) => void>();

function multipart(partHeaders: string, bytes: string | Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(`\r\n--${BOUNDARY}\r\nContent-Type: application/json\r\n\r\n{}\r\n--${BOUNDARY}\r\n${partHeaders}\r\n\r\n`),
    Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes),
    Buffer.from(`\r\n--${BOUNDARY}--\r\n`),
  ]);
}

/** A whole raw 200 answer with a multipart body, closing the connection after it. */
function multipartAnswer(body: Buffer): (socket: Socket) => void {
  return (socket) =>
    socket.end(
      Buffer.concat([
        Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: multipart/mixed; boundary=${BOUNDARY}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`),
        body,
      ]),
    );
}

function startRemote(): Promise<string> {
  remote = createServer((socket) => {
    socket.on('error', () => undefined);
    let head = '';
    const onData = (data: Buffer): void => {
      head += data.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      const path = head.split(' ')[1] ?? '';
      const mediaId = path.startsWith(DOWNLOAD_V1) ? path.slice(DOWNLOAD_V1.length).split('?')[0]! : '';
      const answer = answers.get(mediaId);
      if (answer !== undefined) return answer(socket);
      const text = JSON.stringify({ errcode: 'M_UNRECOGNIZED', error: 'Unrecognized request' });
      socket.end(`HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: ${text.length}\r\nConnection: close\r\n\r\n${text}`);
    };
    socket.on('data', onData);
  });
  remote.listen(0, '127.0.0.1');
  return once(remote, 'listening').then(() => `http://127.0.0.1:${(remote.address() as AddressInfo).port}`);
}

interface RawAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  /** Every byte after the header block, as sent. */
  readonly body: Buffer;
}

/** GET over a fresh TCP connection (`Connection: close`); everything b.test sends until it closes. */
async function rawGet(path: string): Promise<RawAnswer> {
  const url = new URL(b.url);
  const socket = connect(Number(url.port), '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', () => undefined); // an aborted response may reset the connection
  socket.write(`GET ${path} HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`);
  await once(socket, 'close');
  const all = Buffer.concat(chunks);
  const end = all.indexOf('\r\n\r\n');
  expect(end).toBeGreaterThan(0);
  const [statusLine, ...lines] = all.subarray(0, end).toString('latin1').split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(statusLine!.split(' ')[1]), headers, body: all.subarray(end + 4) };
}

const download = (mediaId: string): Promise<RawAnswer> => rawGet(`/_matrix/client/v1/media/download/remote.test/${mediaId}`);

/** Files under the media store (blobs and staging files alike). */
async function storedFiles(): Promise<string[]> {
  const entries = await readdir((b.config.mediaStore as { path: string }).path, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
}

/** Files in the media store before the test began. */
let filesBefore: string[] = [];

async function expectNothingCached(mediaId: string): Promise<void> {
  expect(await storesB.metadata.getMedia('remote.test', mediaId)).toBeNull();
  expect(await storedFiles()).toEqual(filesBefore);
}

beforeAll(async () => {
  dir = await tempDir('hsmedia-remote-relay-');
  const remoteBase = await startRemote();
  const config = testConfig(join(dir.path, 'b.test'), {
    server_name: 'b.test',
    log_level: 'info',
    auth: { tokens: { [TOKEN]: '@alice:b.test' } },
    federation: { destinations: { 'remote.test': remoteBase }, ip_range_allowlist: ['127.0.0.1/32'], failure_cache_ms: 0 },
  });
  b = await startServer(config, { logDestination: log });
  storesB = await openStores(b.config);
}, 60_000);

beforeEach(async () => {
  filesBefore = await storedFiles();
});

afterEach(() => {
  answers.clear();
});

afterAll(async () => {
  await storesB?.close();
  await b?.close();
  if (remote !== undefined) {
    remote.close();
    await once(remote, 'close');
  }
  await dir?.cleanup();
});

describe('a relayed part carries exactly the bytes it declares', () => {
  it('a part of exactly its declared length is relayed and cached', async () => {
    answers.set('exact', multipartAnswer(multipart('Content-Type: text/plain\r\nContent-Length: 10', '0123456789')));
    const answer = await download('exact');
    expect([answer.status, answer.headers['content-length'], answer.body.toString()]).toEqual([200, '10', '0123456789']);
    expect(await storesB.metadata.getMedia('remote.test', 'exact')).toMatchObject({ size: 10 });
  });

  it.each([
    ['more', 'overSmall', multipart('Content-Type: text/plain\r\nContent-Length: 10', '0123456789 and then some more bytes')],
    ['fewer', 'underSmall', multipart('Content-Type: text/plain\r\nContent-Length: 100', 'only forty bytes of the declared hundred')],
  ])('a small part with %s bytes than declared: 502 M_UNKNOWN before any header, nothing cached', async (_which, mediaId, body) => {
    answers.set(mediaId, multipartAnswer(body));
    const answer = await download(mediaId);
    expect(answer.status).toBe(502);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(answer.body.toString())).toMatchObject({ errcode: 'M_UNKNOWN' });
    expect(answer.body.length).toBe(Number(answer.headers['content-length']));
    await expectNothingCached(mediaId);
  });

  it('a large part that sends more than declared: the first client never gets a complete answer nor a byte more, nothing cached', async () => {
    const declared = Buffer.alloc(LIVE_SIZE, 0x61);
    answers.set('overLive', multipartAnswer(multipart(`Content-Type: video/mp4\r\nContent-Length: ${LIVE_SIZE}`, Buffer.concat([declared, Buffer.from('EXTRA')]))));
    const answer = await download('overLive');
    if (answer.status === 200) {
      // Streamed live: aborted before its last declared byte.
      expect(answer.headers['content-length']).toBe(String(LIVE_SIZE));
      expect(answer.body.length).toBeLessThan(LIVE_SIZE);
    } else {
      expect(answer.status).toBe(502);
      expect(answer.body.length).toBe(Number(answer.headers['content-length']));
    }
    expect(answer.body.includes('EXTRA')).toBe(false);
    await expectNothingCached('overLive');
    // The next client asks the remote again (nothing cached, no failure remembered) and gets a clean 502.
    const again = await download('overLive');
    expect(again.status === 502 || again.body.length < LIVE_SIZE).toBe(true);
  });

  it('a large part that sends fewer than declared and ends cleanly: the first client is aborted, nothing cached', async () => {
    answers.set('underLive', multipartAnswer(multipart(`Content-Type: video/mp4\r\nContent-Length: ${LIVE_SIZE + 1000}`, Buffer.alloc(LIVE_SIZE, 0x62))));
    const answer = await download('underLive');
    if (answer.status === 200) expect(answer.body.length).toBeLessThan(LIVE_SIZE + 1000);
    else expect(answer.status).toBe(502);
    await expectNothingCached('underLive');
  });
});

describe('a first client that leaves mid-relay', () => {
  it('does not stop the fetch: the media is cached whole and the next client gets every byte', async () => {
    const size = 4 * 1024 * 1024;
    const bytes = randomBytes(size);
    const body = multipart(`Content-Type: video/mp4\r\nContent-Length: ${size}`, bytes);
    const firstPart = 2 * LIVE_SIZE;
    let sendRest!: () => void;
    const restAllowed = new Promise<void>((resolve) => (sendRest = resolve));
    answers.set('leaver', (socket) => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Type: multipart/mixed; boundary=${BOUNDARY}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
      socket.write(body.subarray(0, firstPart));
      // The rest only once the first client has left, so it leaves while the remote is still sending.
      void restAllowed.then(() => socket.end(body.subarray(firstPart)));
    });
    const url = new URL(b.url);
    const first = connect(Number(url.port), '127.0.0.1');
    first.on('error', () => undefined);
    first.write(`GET /_matrix/client/v1/media/download/remote.test/leaver HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`);
    let received = 0;
    await new Promise<void>((resolve) => {
      first.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received > 128 * 1024) resolve();
      });
    });
    first.destroy();
    await once(first, 'close');
    sendRest();
    // The fetch is shared: the next client waits for it (or finds it cached) and gets the whole media.
    const answer = await download('leaver');
    expect(answer.status).toBe(200);
    expect(answer.body.equals(bytes)).toBe(true);
    expect(await storesB.metadata.getMedia('remote.test', 'leaver')).toMatchObject({ size });
    // One blob more, no staging file left.
    expect((await storedFiles()).filter((file) => !filesBefore.includes(file))).toHaveLength(1);
  }, 60_000);
});

describe('errors passed on from the remote', () => {
  it('a remote 504 M_NOT_YET_UPLOADED reaches the client as 504 M_NOT_YET_UPLOADED', async () => {
    const text = JSON.stringify({ errcode: 'M_NOT_YET_UPLOADED', error: 'Media has not been uploaded yet' });
    answers.set('pending', (socket) =>
      socket.end(`HTTP/1.1 504 Gateway Timeout\r\nContent-Type: application/json\r\nContent-Length: ${text.length}\r\nConnection: close\r\n\r\n${text}`),
    );
    const answer = await download('pending');
    expect(answer.status).toBe(504);
    expect(JSON.parse(answer.body.toString())).toMatchObject({ errcode: 'M_NOT_YET_UPLOADED' });
    await expectNothingCached('pending');
  });

  it('remote failures are logged at warn, one line without a stack, never at error', async () => {
    const before = log.lines.length;
    answers.set('boom', (socket) => socket.destroy());
    expect((await download('boom')).status).toBe(502);
    const lines = log.lines.slice(before).filter((line) => line['msg'] !== 'request');
    const failures = lines.filter((line) => line['msg'] === 'remote media fetch failed');
    expect(failures.length).toBeGreaterThanOrEqual(1);
    for (const line of failures) {
      expect(line['level']).toBe('warn');
      expect(JSON.stringify(line)).not.toContain('    at ');
    }
    expect(lines.filter((line) => String(line['msg']).startsWith('remote media fetch failed') && line['level'] !== 'warn')).toEqual([]);
  });
});
