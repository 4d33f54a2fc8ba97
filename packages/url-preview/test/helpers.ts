import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Requester } from '@hsmedia/runtime';
import type { StorePreviewImage } from '@hsmedia/url-preview';

/** One request a fixture server received. */
export interface LoggedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: http.IncomingHttpHeaders;
}

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void | Promise<void>;

/** A real HTTP server on a loopback address, with a log of every request and every connection. */
export interface FixtureSite {
  readonly host: string;
  readonly port: number;
  /** `http://host:port` */
  readonly origin: string;
  readonly requests: LoggedRequest[];
  /** Connections accepted (a refused preview must not even connect). */
  connections: number;
  route(path: string, handler: Handler): void;
  /** Requests whose path (without query) is `path`. */
  hits(path: string): number;
  close(): Promise<void>;
}

export async function startSite(host: string = '127.0.0.1'): Promise<FixtureSite> {
  const routes = new Map<string, Handler>();
  const sockets = new Set<Socket>();
  const requests: LoggedRequest[] = [];
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    requests.push({ method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers });
    const handler = routes.get(path);
    if (handler === undefined) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
      return;
    }
    Promise.resolve(handler(req, res)).catch((error: unknown) => {
      res.destroy(error as Error);
    });
  });
  const site: FixtureSite = {
    host,
    port: 0,
    origin: '',
    requests,
    connections: 0,
    route: (path, handler) => routes.set(path, handler),
    hits: (path) => requests.filter((r) => r.path.split('?')[0] === path).length,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  server.on('connection', (socket: Socket) => {
    site.connections += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return Object.assign(site, { port, origin });
}

export function html(body: string, contentType: string = 'text/html; charset=utf-8'): Handler {
  return (_req, res) => {
    res.writeHead(200, { 'Content-Type': contentType }).end(body);
  };
}

export function bytes(data: Uint8Array, contentType: string, headers: Record<string, string> = {}): Handler {
  return (_req, res) => {
    res.writeHead(200, { 'Content-Type': contentType, 'Content-Length': String(data.byteLength), ...headers }).end(data);
  };
}

export function redirect(location: string, status: number = 302): Handler {
  return (_req, res) => {
    res.writeHead(status, { Location: location }).end();
  };
}

/** A valid 1x1 PNG with its IHDR saying `width` x `height` (only the header matters to the probe). */
export function pngHeader(width: number, height: number): Uint8Array {
  const out = Buffer.alloc(33 + 12);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(out, 0);
  out.writeUInt32BE(13, 8);
  out.write('IHDR', 12, 'latin1');
  out.writeUInt32BE(width, 16);
  out.writeUInt32BE(height, 20);
  out.writeUInt8(8, 24); // bit depth
  out.writeUInt8(6, 25); // RGBA
  out.writeUInt32BE(0, 29); // CRC (not checked by the probe)
  out.writeUInt32BE(0, 33);
  out.write('IEND', 37, 'latin1');
  return new Uint8Array(out);
}

/** Windows-1251 for ASCII and the basic Cyrillic block (А..я map to 0xC0..0xFF). */
export function encodeWindows1251(text: string): Uint8Array {
  const out: number[] = [];
  for (const char of text) {
    const code = char.codePointAt(0)!;
    if (code < 0x80) out.push(code);
    else if (code >= 0x410 && code <= 0x44f) out.push(code - 0x410 + 0xc0);
    else if (code === 0x401) out.push(0xa8); // Ё
    else if (code === 0x451) out.push(0xb8); // ё
    else throw new Error(`cannot encode ${char}`);
  }
  return Uint8Array.from(out);
}

/** An in-memory image store standing in for the media repository. */
export interface MemoryImageStore {
  readonly storeImage: StorePreviewImage;
  readonly stored: { mxcUri: string; contentType: string; bytes: Uint8Array; userId: string }[];
}

export function memoryImageStore(serverName: string = 'test.example'): MemoryImageStore {
  const stored: MemoryImageStore['stored'] = [];
  const storeImage: StorePreviewImage = async (stream, contentType, { maxBytes, signal, requester }) => {
    const chunks: Uint8Array[] = [];
    let total = 0;
    const reader = stream.getReader();
    for (;;) {
      signal.throwIfAborted();
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        await reader.cancel();
        throw new Error('too large');
      }
      chunks.push(value);
    }
    const mxcUri = `mxc://${serverName}/preview${stored.length + 1}`;
    stored.push({ mxcUri, contentType, bytes: new Uint8Array(Buffer.concat(chunks)), userId: requester.userId });
    return { mxcUri, size: total };
  };
  return { storeImage, stored };
}

export const requester: Requester = { userId: '@alice:test.example', isGuest: false };

/** A controllable clock. */
export function manualClock(start: number = 1_700_000_000_000): { now(): number; advance(ms: number): void } {
  let now = start;
  return { now: () => now, advance: (ms) => void (now += ms) };
}

/** Streams `total` bytes of filler after `prefix`, honouring backpressure, until done or the client goes away. */
export function hugeBody(prefix: string, total: number, contentType: string = 'text/html; charset=utf-8'): Handler & { sent: () => number; finished: () => boolean } {
  let sent = 0;
  let finished = false;
  const handler = (async (_req: http.IncomingMessage, res: http.ServerResponse) => {
    res.writeHead(200, { 'Content-Type': contentType });
    res.write(prefix);
    sent += Buffer.byteLength(prefix);
    const filler = Buffer.alloc(64 * 1024, '<p>filler filler filler filler</p>\n'.repeat(2));
    while (sent < total && !res.destroyed) {
      const ok = res.write(filler);
      sent += filler.byteLength;
      if (!ok) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            res.off('drain', done);
            res.off('close', done);
            resolve();
          };
          res.on('drain', done);
          res.on('close', done);
        });
      }
    }
    if (!res.destroyed) {
      res.end();
      finished = true;
    }
  }) as Handler & { sent: () => number; finished: () => boolean };
  handler.sent = () => sent;
  handler.finished = () => finished;
  return handler;
}
