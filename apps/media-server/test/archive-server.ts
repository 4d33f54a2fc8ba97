import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseContentDisposition } from '@hsmedia/media-core';
import { decodeMultipart } from '@hsmedia/multipart';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateSigningKey, signJson, signXMatrixRequest, type SigningKey } from '@hsmedia/signing';
import { parse, stringify } from 'yaml';
import { CliProcess } from './cli-process.js';
import { publishedKeys } from './helpers.js';

/**
 * A media server for the archive tests: its config file (SQLite or a
 * PostgreSQL schema, files under `dir`), the CLI run against it in-process
 * by the tests, and the real server process started on it afterwards, with
 * a peer homeserver (`peer.test`) whose key signs federation requests.
 */

export const TOKEN = 'archive_token';

export interface ArchiveServerConfig {
  readonly dir: string;
  readonly serverName: string;
  readonly configPath: string;
  /** The blob directory of the filesystem store. */
  readonly mediaPath: string;
}

/** Options of {@link writeArchiveServerConfig}. */
export interface ArchiveServerOptions {
  /** A PostgreSQL schema instead of SQLite. */
  readonly postgres?: { readonly url: string; readonly schema: string };
  /** More access tokens and their users (beside {@link TOKEN}). */
  readonly tokens?: Readonly<Record<string, string>>;
  /** Server admins (`admins`). */
  readonly admins?: readonly string[];
}

/** Writes the config of a server in `dir`. */
export async function writeArchiveServerConfig(dir: string, serverName: string, options: ArchiveServerOptions = {}): Promise<ArchiveServerConfig> {
  const { postgres } = options;
  const mediaPath = join(dir, 'media');
  const configPath = join(dir, 'config.yaml');
  const config = {
    server_name: serverName,
    listen: { host: '127.0.0.1', port: 0 },
    database: postgres === undefined ? { sqlite: { path: join(dir, 'media.db') } } : { postgres },
    media_store: { filesystem: { path: mediaPath } },
    signing_key_path: join(dir, 'signing.key'),
    max_upload_size: '16M',
    log_level: 'info',
    workers: 1,
    auth: { tokens: { [TOKEN]: `@admin:${serverName}`, ...options.tokens } },
    legacy_media: { freeze: false },
    ...(options.admins === undefined ? {} : { admins: options.admins }),
  };
  await mkdir(dir, { recursive: true });
  await writeFile(configPath, stringify(config));
  return { dir, serverName, configPath, mediaPath };
}

/** One downloaded item. */
export interface Downloaded {
  readonly status: number;
  readonly bytes: Buffer;
  readonly contentType: string | null;
  readonly filename: string | null;
}

export interface RunningArchiveServer {
  readonly url: string;
  client(serverName: string, mediaId: string): Promise<Downloaded>;
  /** Local media over federation, signed by `peer.test` (multipart answer decoded). */
  federation(mediaId: string): Promise<Downloaded>;
  stop(): Promise<void>;
}

/** `peer.test`'s key server: its self-signed `/_matrix/key/v2/server` answer (spec: server-server API, "Publishing Keys"). */
async function keyServer(key: SigningKey): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    res.setHeader('Content-Type', 'application/json');
    if (req.url !== '/_matrix/key/v2/server') {
      res.statusCode = 404;
      res.end(JSON.stringify({ errcode: 'M_UNRECOGNIZED', error: 'Unrecognized request' }));
      return;
    }
    res.end(JSON.stringify(signJson(publishedKeys({ serverName: 'peer.test', key }) as never, 'peer.test', key)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Starts the server process on `server`'s config (federation from `peer.test` allowed). */
export async function startArchiveServer(server: ArchiveServerConfig): Promise<RunningArchiveServer> {
  const key = generateSigningKey();
  const peer = await keyServer(key);
  const configPath = join(server.dir, 'config-running.yaml');
  const config = parse(await readFile(server.configPath, 'utf8')) as Record<string, unknown>;
  await writeFile(configPath, stringify({ ...config, federation: { destinations: { 'peer.test': peer.url }, ip_range_allowlist: ['127.0.0.1/32'] } }));
  const cli = new CliProcess(['--config', configPath], server.dir);
  let url: string;
  try {
    url = await cli.listening();
  } catch (error) {
    await peer.close();
    throw error;
  }
  return {
    url,
    async client(serverName, mediaId) {
      const res = await fetch(`${url}/_matrix/client/v1/media/download/${serverName}/${mediaId}`, { headers: { Authorization: `Bearer ${TOKEN}` } });
      const disposition = res.headers.get('content-disposition');
      return {
        status: res.status,
        bytes: Buffer.from(await res.arrayBuffer()),
        contentType: res.headers.get('content-type'),
        filename: disposition === null ? null : (parseContentDisposition(disposition)?.filename ?? null),
      };
    },
    async federation(mediaId) {
      const uri = `/_matrix/federation/v1/media/download/${mediaId}`;
      const res = await fetch(`${url}${uri}`, {
        headers: { Authorization: signXMatrixRequest({ method: 'GET', uri, origin: 'peer.test', destination: server.serverName }, key) },
      });
      if (res.status !== 200) throw new Error(`federation download: ${res.status} ${await res.text()}`);
      const decoded = await decodeMultipart(res.headers.get('content-type') ?? '', res.body!, { maxContentBytes: 32 << 20 });
      if (decoded.kind !== 'content') throw new Error('expected inline content');
      return {
        status: 200,
        bytes: Buffer.from(await new Response(decoded.stream).arrayBuffer()),
        contentType: decoded.contentType ?? null,
        filename: decoded.contentDisposition === undefined ? null : (parseContentDisposition(decoded.contentDisposition)?.filename ?? null),
      };
    },
    async stop() {
      cli.child.kill('SIGTERM');
      await cli.exited;
      await peer.close();
    },
  };
}

/** Every file under the blob store's `blobs/` (to check that a failed import left no orphan blob) and in `staging/`. */
export async function storedFiles(mediaPath: string): Promise<{ blobs: number; staging: number }> {
  const count = async (path: string): Promise<number> => {
    try {
      const entries = await readdir(path, { recursive: true, withFileTypes: true });
      return entries.filter((entry) => entry.isFile()).length;
    } catch {
      return 0;
    }
  };
  return { blobs: await count(join(mediaPath, 'blobs')), staging: await count(join(mediaPath, 'staging')) };
}
