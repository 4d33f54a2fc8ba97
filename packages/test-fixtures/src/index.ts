/**
 * Shared helpers for this repository's tests (private; never published or built).
 * Everything here is real: real temp directories, real HTTP servers on loopback.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir as osTmpdir } from 'node:os';
import { join } from 'node:path';
import type Koa from 'koa';

/** A temporary directory and the function that removes it. */
export interface TempDir {
  readonly path: string;
  cleanup(): Promise<void>;
}

/** Creates a fresh directory under the OS temp dir. */
export async function tmpdir(prefix: string = 'hsmedia-test-'): Promise<TempDir> {
  const path = await mkdtemp(join(osTmpdir(), prefix));
  return {
    path,
    cleanup: () => rm(path, { recursive: true, force: true }),
  };
}

/** A server listening on 127.0.0.1 at an ephemeral port. */
export interface Listening {
  /** `http://127.0.0.1:<port>` (no trailing slash). */
  readonly url: string;
  readonly server: Server;
  /** Stops listening and drops open (keep-alive) connections. */
  close(): Promise<void>;
}

/** Starts `app` (a Koa app or a plain request listener) on 127.0.0.1:0. */
export async function listen(app: Koa | RequestListener): Promise<Listening> {
  const handler: RequestListener = typeof app === 'function' ? app : app.callback();
  const server = createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A 1×1 transparent PNG (67 bytes). */
export const TINY_PNG: Uint8Array = Uint8Array.from(
  Buffer.from(
    'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==',
    'base64',
  ),
);

/** A 1×1 baseline (Huffman) JPEG, mid-grey (265 bytes, made by libvips). */
export const TINY_JPEG: Uint8Array = Uint8Array.from(
  Buffer.from(
    '/9j/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4UG1RV19iZ2hnPk1xeXBkeFxlZ2P/2wBDARESEhgVGC8aGi9jQjhCY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2P/wAARCAABAAEDASIAAhEBAxEB/8QAFAABAAAAAAAAAAAAAAAAAAAAAP/EABQQAQAAAAAAAAAAAAAAAAAAAAD/xAAUAQEAAAAAAAAAAAAAAAAAAAAA/8QAFBEBAAAAAAAAAAAAAAAAAAAAAP/aAAwDAQACEQMRAD8AAA//2Q==',
    'base64',
  ),
);

/** A 1×1 transparent GIF (43 bytes). */
export const TINY_GIF: Uint8Array = Uint8Array.from(
  Buffer.from('R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==', 'base64'),
);

/** `n` bytes of deterministic pseudo-random binary data (every byte value appears). */
export function binaryBytes(n: number, seed: number = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
