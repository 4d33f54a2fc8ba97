/**
 * The deployment the conformance suite runs against, on 127.0.0.1 only:
 *
 * - `hs1`, `hs2`: two media servers with the embedded defaults (whatever a fresh install gets,
 *   the legacy freeze included), federated with each other, as Complement's `Deploy(t, 2)`.
 * - `hs3`, `hs4`: two servers that opted out of the legacy freeze (`legacy_media.freeze: false`),
 *   for the Complement subtests that use the deprecated unauthenticated `/_matrix/media/v3/*`
 *   endpoints (Complement skips those on Synapse because Synapse freezes them by default, as we
 *   now do). A legacy request for remote media goes to the origin's legacy endpoint (as Synapse
 *   does), so "over federation" on those endpoints needs an unfrozen origin too: `hs4`.
 * - `remote.test`: a scripted homeserver (Complement's `federation.NewServer`, Synapse's mocked
 *   federation client): it publishes a signing key, answers media requests from per-test
 *   handlers and records every request target it received.
 *
 * Servers run in-process (`startServer`, the same code as the `hsmedia-server` process) with
 * SQLite files and media directories under one temp dir.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { buildServerKeysResponse, generateSigningKey, signXMatrixRequest, type SigningKey } from '@hsmedia/signing';
import { startServer, type StartedServer } from '../../src/server.js';
import { freePort, tempDir, testConfig } from '../helpers.js';

/** Complement's `internal/data` images (see fixtures/): the same inputs peers are checked with. */
export const fixtures: { readonly matrixPng: Buffer; readonly largePng: Buffer; readonly matrixSvg: Buffer } = {
  /** 279x129 RGBA PNG, 2239 bytes (Complement `data.MatrixPng`). */
  matrixPng: readFileSync(new URL('./fixtures/matrix.png', import.meta.url)),
  /** 1000x673 RGB PNG, 148008 bytes (Complement `data.LargePng`). */
  largePng: readFileSync(new URL('./fixtures/large.png', import.meta.url)),
  /** SVG, 8944 bytes (Complement `data.MatrixSvg`). */
  matrixSvg: readFileSync(new URL('./fixtures/matrix-logo.svg', import.meta.url)),
};

/** One media server of the deployment and its user. */
export interface Homeserver {
  readonly name: string;
  readonly url: string;
  readonly token: string;
  readonly userId: string;
  readonly server: StartedServer;
}

/** A scripted media handler of the remote peer: gets the request, answers it. */
export type PeerHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** The scripted homeserver `remote.test`. */
export interface ScriptedPeer {
  readonly name: string;
  readonly url: string;
  readonly key: SigningKey;
  /** Request targets (path and query) received, in order. */
  readonly requests: string[];
  /** Answers `GET /_matrix/federation/v1/media/download/{mediaId}`. */
  onFederationDownload(mediaId: string, handler: PeerHandler): void;
  /** Answers `GET /_matrix/media/{v3,r0,v1}/download/remote.test/{mediaId}`. */
  onLegacyDownload(mediaId: string, handler: PeerHandler): void;
  /** Answers `GET /_matrix/federation/v1/media/thumbnail/{mediaId}`. */
  onFederationThumbnail(mediaId: string, handler: PeerHandler): void;
  /** Request targets received for `mediaId`. */
  requestsFor(mediaId: string): string[];
}

export interface Deployment {
  readonly hs1: Homeserver;
  readonly hs2: Homeserver;
  readonly hs3: Homeserver;
  readonly hs4: Homeserver;
  readonly peer: ScriptedPeer;
  close(): Promise<void>;
}

const PEER_NAME = 'remote.test';

/** Writes a spec `multipart/mixed` federation media answer: `{}` metadata, then the bytes. */
export function answerMultipart(
  res: ServerResponse,
  body: Uint8Array,
  headers: { contentType?: string; contentDisposition?: string } = {},
): void {
  const boundary = 'c0nf0rmance6b1d';
  const partHeaders =
    (headers.contentType === undefined ? '' : `Content-Type: ${headers.contentType}\r\n`) +
    (headers.contentDisposition === undefined ? '' : `Content-Disposition: ${headers.contentDisposition}\r\n`);
  const head = Buffer.from(`--${boundary}\r\nContent-Type: application/json\r\n\r\n{}\r\n--${boundary}\r\n${partHeaders}\r\n`);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const payload = Buffer.concat([head, body, tail]);
  res.writeHead(200, { 'Content-Type': `multipart/mixed; boundary=${boundary}`, 'Content-Length': String(payload.byteLength) });
  res.end(payload);
}

/** Writes a Matrix JSON error. */
export function answerError(res: ServerResponse, status: number, errcode: string): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify({ errcode, error: 'scripted' }));
}

async function startPeer(): Promise<{ peer: ScriptedPeer; close(): Promise<void> }> {
  const key = generateSigningKey('conformance');
  const requests: string[] = [];
  const federation = new Map<string, PeerHandler>();
  const legacy = new Map<string, PeerHandler>();
  const thumbnails = new Map<string, PeerHandler>();
  const server: Server = createHttpServer((req, res) => {
    const target = req.url ?? '/';
    requests.push(target);
    const path = new URL(target, 'http://peer').pathname;
    if (path === '/_matrix/key/v2/server') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(buildServerKeysResponse({ serverName: PEER_NAME, signingKeys: key, validUntilTs: Date.now() + 3_600_000 })));
      return;
    }
    const pick = (map: Map<string, PeerHandler>, prefix: RegExp): PeerHandler | undefined => {
      const match = prefix.exec(path);
      return match === null ? undefined : map.get(decodeURIComponent(match[1]!));
    };
    const handler =
      pick(federation, /^\/_matrix\/federation\/v1\/media\/download\/([^/]+)$/) ??
      pick(thumbnails, /^\/_matrix\/federation\/v1\/media\/thumbnail\/([^/]+)$/) ??
      pick(legacy, /^\/_matrix\/media\/(?:v3|r0|v1)\/download\/remote\.test\/([^/]+)$/);
    if (handler !== undefined) {
      handler(req, res);
      return;
    }
    // Thumbnails the scripted server has none of (unless a test scripts them): Synapse's answer
    // for media it cannot thumbnail, 400 M_UNKNOWN; the asking server falls back to the original.
    if (/^\/_matrix\/(?:federation\/v1\/media|media\/[^/]+)\/thumbnail\//.test(path)) {
      answerError(res, 400, 'M_UNKNOWN');
      return;
    }
    // Media it does not know: 404 M_NOT_FOUND; any other route: unknown endpoint, as Synapse answers.
    const unknownMedia = path.startsWith('/_matrix/federation/v1/media/download/') || /^\/_matrix\/media\/[^/]+\/download\//.test(path);
    answerError(res, 404, unknownMedia ? 'M_NOT_FOUND' : 'M_UNRECOGNIZED');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const peer: ScriptedPeer = {
    name: PEER_NAME,
    url: `http://127.0.0.1:${port}`,
    key,
    requests,
    onFederationDownload: (mediaId, handler) => void federation.set(mediaId, handler),
    onLegacyDownload: (mediaId, handler) => void legacy.set(mediaId, handler),
    onFederationThumbnail: (mediaId, handler) => void thumbnails.set(mediaId, handler),
    requestsFor: (mediaId) => requests.filter((target) => target.includes(`/${mediaId}`)),
  };
  return {
    peer,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Starts hs1 to hs4 and the scripted peer. `hs1` also serves URL previews (for Complement's
 * `TestUrlPreview`) with loopback opened, as Complement's web server is a local one.
 */
export async function startDeployment(): Promise<Deployment> {
  // The ports are chosen before the servers start (each must know the others' addresses), so on a
  // busy machine another socket can take one in between (an outgoing connection's ephemeral port,
  // say). startOnce cleans up after itself, so such a start is simply tried again on new ports.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce();
    } catch (error) {
      if (attempt >= 5 || (error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    }
  }
}

async function startOnce(): Promise<Deployment> {
  const dir = await tempDir('hsmedia-conformance-');
  const { peer, close: closePeer } = await startPeer();
  const names = ['hs1', 'hs2', 'hs3', 'hs4'] as const;
  const ports = [await freePort(), await freePort(), await freePort(), await freePort()];
  const destinations: Record<string, string> = { [PEER_NAME]: peer.url };
  names.forEach((name, i) => (destinations[name] = `http://127.0.0.1:${ports[i]}`));
  const users = { hs1: 'alice', hs2: 'bob', hs3: 'charlie', hs4: 'dave' } as const;
  const started: Homeserver[] = [];
  try {
    for (const [i, name] of names.entries()) {
      const userId = `@${users[name]}:${name}`;
      const token = `${users[name]}_token`;
      const server = await startServer(
        testConfig(join(dir.path, name), {
          server_name: name,
          listen: { host: '127.0.0.1', port: ports[i] },
          log_level: 'silent',
          auth: { tokens: { [token]: userId } },
          admins: [userId],
          federation: { destinations, ip_range_allowlist: ['127.0.0.1/32'], failure_cache_ms: 0, max_download_size: '1M' },
          // Complement's "Not yet uploaded" asks without `timeout_ms`: the default wait (20 s, as
          // Synapse) is capped here so the 504 comes after 1 s; the answer is the same.
          limits: { max_timeout_ms: 1000 },
          ...(name === 'hs1' ? { url_preview: { enabled: true, ip_range_allowlist: ['127.0.0.1/32'] } } : {}),
          ...(name === 'hs3' || name === 'hs4' ? { legacy_media: { freeze: false } } : {}),
        }),
      );
      started.push({ name, url: server.url, token, userId, server });
    }
  } catch (error) {
    for (const hs of started) await hs.server.close();
    await closePeer();
    await dir.cleanup();
    throw error;
  }
  const [hs1, hs2, hs3, hs4] = started as [Homeserver, Homeserver, Homeserver, Homeserver];
  return {
    hs1,
    hs2,
    hs3,
    hs4,
    peer,
    async close() {
      for (const hs of started) await hs.server.close();
      await closePeer();
      await dir.cleanup();
    },
  };
}

/** `POST /_matrix/media/v3/upload` (Complement `UploadContent`); returns the `mxc://` URI. */
export async function uploadContent(hs: Homeserver, body: Uint8Array, filename: string, contentType: string): Promise<string> {
  const query = filename === '' ? '' : `?filename=${encodeURIComponent(filename)}`;
  const res = await fetch(`${hs.url}/_matrix/media/v3/upload${query}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${hs.token}`, 'Content-Type': contentType },
    body,
  });
  if (res.status !== 200) throw new Error(`upload failed: ${res.status} ${await res.text()}`);
  const { content_uri } = (await res.json()) as { content_uri: string };
  return content_uri;
}

/** Splits `mxc://server/id` (Complement `client.SplitMxc`). */
export function splitMxc(uri: string): [string, string] {
  const match = /^mxc:\/\/([^/]+)\/([^/]+)$/.exec(uri);
  if (match === null) throw new Error(`not an mxc URI: ${uri}`);
  return [match[1]!, match[2]!];
}

/** The authenticated download path of `uri` (`/_matrix/client/v1/media/download/...`), with an optional file name. */
export function clientDownloadPath(uri: string, filename = ''): string {
  const [origin, mediaId] = splitMxc(uri);
  return `/_matrix/client/v1/media/download/${origin}/${mediaId}${filename === '' ? '' : `/${encodeURIComponent(filename)}`}`;
}

/** The deprecated download path of `uri` (`/_matrix/media/v3/download/...`), with an optional file name. */
export function legacyDownloadPath(uri: string, filename = ''): string {
  const [origin, mediaId] = splitMxc(uri);
  return `/_matrix/media/v3/download/${origin}/${mediaId}${filename === '' ? '' : `/${encodeURIComponent(filename)}`}`;
}

/** A GET on `hs` as its user (`token: null` for none). */
export function get(hs: Homeserver, path: string, init: RequestInit & { token?: string | null } = {}): Promise<Response> {
  const token = init.token === undefined ? hs.token : init.token;
  const headers = new Headers(init.headers);
  if (token !== null) headers.set('Authorization', `Bearer ${token}`);
  return fetch(`${hs.url}${path}`, { ...init, headers });
}

/** A request to `hs`'s federation API signed by the scripted peer (Complement `srv.DoFederationRequest`). */
export function federationGet(peer: ScriptedPeer, hs: Homeserver, uri: string): Promise<Response> {
  const authorization = signXMatrixRequest({ method: 'GET', uri, origin: peer.name, destination: hs.name }, peer.key);
  return fetch(`${hs.url}${uri}`, { headers: { Authorization: authorization } });
}

/** The body of a Matrix error answer. */
export async function matrixError(res: Response): Promise<{ errcode?: string; error?: string }> {
  return (await res.json()) as { errcode?: string; error?: string };
}

/**
 * Polls `probe` until it gives a value (a cached remote item's row is written once its body is
 * complete, which can be just after the client has read the last byte). Fails after 20 s.
 */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
