import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { formatSigningKeyFile, generateSigningKey, type SigningKey } from '@hsmedia/signing';
import { parseConfig, type MediaServerConfig } from '../src/config.js';

/**
 * A port on 127.0.0.1 that was free a moment ago, for servers that must know each other's
 * addresses before they start. Another socket may take it in between on a busy machine: callers
 * that start several servers retry on `EADDRINUSE`.
 */
export async function freePort(): Promise<number> {
  const probe = createNetServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** A fresh temp directory; `cleanup()` removes it. */
export async function tempDir(prefix = 'hsmedia-server-'): Promise<{ path: string; cleanup(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}

/** What a homeserver publishes at `/_matrix/key/v2/server`. */
export interface PublishedKey {
  readonly serverName: string;
  readonly key: SigningKey;
}

/** A `/_matrix/key/v2/server` answer (unsigned: hsmedia's start-up check compares keys only). */
export function publishedKeys({ serverName, key }: PublishedKey): Record<string, unknown> {
  return { server_name: serverName, valid_until_ts: Date.now() + 3_600_000, verify_keys: { [key.keyId]: { key: key.publicKey } }, old_verify_keys: {} };
}

/**
 * Writes a new key where the homeserver-mode config of `dir` looks for it (the default
 * `./data/signing.key`), as the homeserver would have: homeserver mode never creates one.
 */
export async function homeserverKeyFile(dir: string, path: string = join(dir, 'data', 'signing.key')): Promise<SigningKey> {
  const key = generateSigningKey();
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, formatSigningKeyFile(key), { mode: 0o600 });
  return key;
}

/** A valid config for `dir` on 127.0.0.1:0; `document` overrides (YAML-shaped) keys. */
export function testConfig(dir: string, document: Record<string, unknown> = {}): MediaServerConfig {
  const result = parseConfig({ listen: { host: '127.0.0.1', port: 0 }, log_level: 'debug', ...document }, dir);
  if (!result.ok) throw new Error(result.errors.join('\n'));
  return result.config;
}

/** A pino destination that keeps parsed JSON lines. */
export class LogSink {
  readonly lines: Record<string, unknown>[] = [];
  write(line: string): void {
    for (const part of line.split('\n')) if (part.trim() !== '') this.lines.push(JSON.parse(part) as Record<string, unknown>);
  }
  requests(): Record<string, unknown>[] {
    return this.lines.filter((line) => line['msg'] === 'request');
  }
}

/**
 * A tiny homeserver on 127.0.0.1 that answers
 * `GET /_matrix/client/v3/account/whoami` from a token table, and counts calls.
 */
export async function fakeHomeserver(
  tokens: Record<string, string>,
  publish?: PublishedKey,
): Promise<{ url: string; calls: () => number; close(): Promise<void> }> {
  let calls = 0;
  const server: Server = createServer((req, res) => {
    res.setHeader('Content-Type', 'application/json');
    if (publish !== undefined && req.url === '/_matrix/key/v2/server') {
      res.end(JSON.stringify(publishedKeys(publish)));
      return;
    }
    if (req.url !== '/_matrix/client/v3/account/whoami') {
      res.statusCode = 404;
      res.end(JSON.stringify({ errcode: 'M_UNRECOGNIZED', error: 'Unrecognized request' }));
      return;
    }
    calls += 1;
    const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
    const userId = token === undefined ? undefined : tokens[token];
    if (userId === undefined) {
      res.statusCode = 401;
      res.end(JSON.stringify({ errcode: 'M_UNKNOWN_TOKEN', error: 'Unknown access token' }));
      return;
    }
    res.end(JSON.stringify({ user_id: userId, device_id: 'DEVICE', is_guest: false }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls: () => calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Uploads `body` through the v3 upload endpoint; returns the response. */
export function upload(baseUrl: string, token: string, body: string, filename = 'hello.txt'): Promise<Response> {
  return fetch(`${baseUrl}/_matrix/media/v3/upload?filename=${encodeURIComponent(filename)}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'text/plain' },
    body,
  });
}

/** Downloads an `mxc://` URI through the authenticated v1 endpoint. */
export function download(baseUrl: string, token: string | undefined, contentUri: string): Promise<Response> {
  const [serverName, mediaId] = contentUri.slice('mxc://'.length).split('/');
  return fetch(`${baseUrl}/_matrix/client/v1/media/download/${serverName}/${mediaId}`, {
    headers: token === undefined ? {} : { Authorization: `Bearer ${token}` },
  });
}
