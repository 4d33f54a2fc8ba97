import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { decodeMultipart } from '@hsmedia/multipart';
import { buildServerKeysResponse, generateSigningKey, signXMatrixRequest, type SigningKey } from '@hsmedia/signing';
import { PG_URL } from '@hsmedia/test-fixtures/postgres';
import {
  createPostgresDatabase,
  writeSynapseMediaStore,
  writeSynapsePostgres,
  writeSynapseSqlite,
  type FixtureLocalMedia,
  type SynapseFixtureContent,
  type SynapseSchemaEra,
} from '@hsmedia/test-fixtures/synapse';
import sharp from 'sharp';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSqliteMetadataStore } from '@hsmedia/store-sqlite';
import { parseCommandLine, runCommand, type CliIo } from '../src/cli-main.js';
import { startServer, type StartedServer } from '../src/server.js';
import { CliProcess } from './cli-process.js';
import { tempDir, testConfig } from './helpers.js';

// `hsmedia-server import-synapse` on generated Synapse fixtures (Synapse's own
// table definitions, SQLite and PostgreSQL, both schema eras, and a
// media_store tree), then every imported item downloaded through the client
// and federation APIs of a real server, byte for byte, thumbnails included.

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const HS = 'hs1.test';
const PEER = 'peer.test';
const TOKEN = 'alice_token';
const T0 = 1_765_000_000_000;

async function png(width: number, height: number, seed: number): Promise<Uint8Array> {
  return sharp({ create: { width, height, channels: 4, background: { r: seed % 256, g: (seed * 7) % 256, b: 90, alpha: 0.5 } } }).png().toBuffer();
}

interface Fixture {
  readonly content: SynapseFixtureContent;
  /** Items that must be served, with their bytes. */
  readonly served: { serverName: string; mediaId: string; bytes: Uint8Array; contentType: string | null; uploadName?: string | null }[];
  readonly thumbnails: { serverName: string; mediaId: string; query: string; bytes: Uint8Array }[];
}

async function buildFixture(): Promise<Fixture> {
  const original = await png(64, 48, 1);
  const crop32 = await sharp(original).resize(32, 32).png().toBuffer();
  const crop96 = await sharp(original).resize(96, 96).png().toBuffer();
  const gif = await sharp(await png(40, 40, 2)).gif().toBuffer();
  const gifStill = await sharp(gif).resize(32, 32).png().toBuffer();
  const gifAnimated = await sharp(gif).resize(32, 32).webp().toBuffer();
  const jpeg = await sharp(await png(50, 50, 3)).flatten().jpeg().toBuffer();
  const jpegThumb = await sharp(jpeg).resize(32, 32).jpeg().toBuffer();
  const preview = await sharp(await png(80, 60, 4)).flatten().jpeg().toBuffer();
  const previewThumb = await sharp(preview).resize(32, 24).jpeg().toBuffer();
  const remotePng = await png(20, 20, 5);
  const remoteThumb = await sharp(remotePng).resize(32, 32).png().toBuffer();
  const thumbOnly = await png(32, 32, 6);
  const big = randomBytes(1024 * 1024 + 17);
  const text = Buffer.from('héllo wörld\n', 'utf8');
  const local: FixtureLocalMedia[] = [
    {
      mediaId: 'AAAApngRgba',
      type: 'image/png',
      bytes: original,
      createdTs: T0,
      uploadName: 'pic.png',
      userId: '@alice:hs1.test',
      authenticated: true,
      thumbnails: [
        { width: 32, height: 32, type: 'image/png', method: 'crop', bytes: crop32 },
        { width: 96, height: 96, type: 'image/png', method: 'crop', bytes: crop96 },
        // A scale thumbnail at the source size, byte for byte the original.
        { width: 64, height: 48, type: 'image/png', method: 'scale', bytes: original },
      ],
    },
    {
      mediaId: 'AAABgif',
      type: 'image/gif',
      bytes: gif,
      createdTs: T0 + 1,
      uploadName: 'moving.gif',
      userId: '@alice:hs1.test',
      thumbnails: [
        { width: 32, height: 32, type: 'image/png', method: 'crop', bytes: gifStill },
        { width: 32, height: 32, type: 'image/webp', method: 'crop', bytes: gifAnimated },
      ],
    },
    { mediaId: 'AAACjpeg', type: 'image/jpeg', bytes: jpeg, createdTs: T0 + 2, uploadName: 'photo.jpg', userId: '@alice:hs1.test', thumbnails: [{ width: 32, height: 32, type: 'image/jpeg', method: 'crop', bytes: jpegThumb }] },
    { mediaId: 'AAADtext', type: 'text/plain; charset=utf-8', bytes: text, createdTs: T0 + 3, uploadName: 'résumé 📄.txt', userId: '@alice:hs1.test' },
    { mediaId: 'AAAEnoType', type: null, bytes: randomBytes(300), createdTs: T0 + 4, uploadName: null, userId: '@alice:hs1.test' },
    { mediaId: 'AAAFempty', type: 'application/octet-stream', bytes: new Uint8Array(0), createdTs: T0 + 5, uploadName: 'empty.bin', userId: '@alice:hs1.test' },
    { mediaId: 'AAAGbig', type: 'application/octet-stream', bytes: big, createdTs: T0 + 6, uploadName: 'big.bin', userId: '@bob:hs1.test', lastAccessTs: T0 + 100 },
    { mediaId: 'BBBBquarantined', type: 'image/png', bytes: await png(8, 8, 7), createdTs: T0 + 7, userId: '@bob:hs1.test', quarantinedBy: '@admin:hs1.test', thumbnails: [{ width: 32, height: 32, type: 'image/png', method: 'crop', bytes: crop32 }] },
    { mediaId: 'BBBCprotected', type: 'text/plain', bytes: Buffer.from('protected'), createdTs: T0 + 8, userId: '@bob:hs1.test', safeFromQuarantine: true },
    { mediaId: 'CCCCpending', type: null, bytes: null, createdTs: Date.now(), userId: '@alice:hs1.test' },
    { mediaId: '2026-12-07_previewImage', type: 'image/jpeg', bytes: preview, createdTs: T0 + 9, userId: '@alice:hs1.test', urlCache: 'http://127.0.0.1:1/page', thumbnails: [{ width: 32, height: 24, type: 'image/jpeg', method: 'scale', bytes: previewThumb }] },
    // Problems: reported, skipped.
    { mediaId: 'DDDDmissing', type: 'text/plain', bytes: Buffer.from('gone'), createdTs: T0 + 10, userId: '@alice:hs1.test', noFile: true },
    { mediaId: 'DDDEwrongSize', type: 'text/plain', bytes: Buffer.from('12345'), createdTs: T0 + 11, userId: '@alice:hs1.test', lengthOverride: 9 },
    { mediaId: '../../escape', type: 'text/plain', bytes: Buffer.from('x'), createdTs: T0 + 12, userId: '@evil:hs1.test', noFile: true },
  ];
  const content: SynapseFixtureContent = {
    local,
    remote: [
      { origin: 'remote.test', mediaId: 'remotePng', filesystemId: 'QWERTYUIOPASDFGHJKLZXCVB', type: 'image/png', bytes: remotePng, createdTs: T0 + 20, thumbnails: [{ width: 32, height: 32, type: 'image/png', method: 'crop', bytes: remoteThumb }] },
      { origin: 'remote.test', mediaId: 'remoteQuarantined', filesystemId: 'ASDFGHJKLQWERTYUIOPZXCVB', type: 'text/plain', bytes: Buffer.from('remote evil'), createdTs: T0 + 21, quarantinedBy: '@admin:hs1.test' },
      { origin: 'remote.test', mediaId: 'thumbOnly', filesystemId: 'ZXCVBNMASDFGHJKLQWERTYUI', type: null, bytes: null, createdTs: T0 + 22, thumbnails: [{ width: 32, height: 32, type: 'image/png', method: 'crop', bytes: thumbOnly }] },
    ],
  };
  const served = [
    ...local.filter((m) => m.bytes !== null && m.quarantinedBy === undefined && m.noFile !== true && m.lengthOverride === undefined && !m.mediaId.includes('/')).map((m) => ({ serverName: HS, mediaId: m.mediaId, bytes: m.bytes!, contentType: m.type, uploadName: m.uploadName ?? null })),
    { serverName: 'remote.test', mediaId: 'remotePng', bytes: remotePng, contentType: 'image/png' },
  ];
  const thumbnails = [
    { serverName: HS, mediaId: 'AAAApngRgba', query: 'width=32&height=32&method=crop', bytes: crop32 },
    { serverName: HS, mediaId: 'AAAApngRgba', query: 'width=96&height=96&method=crop', bytes: crop96 },
    { serverName: HS, mediaId: 'AAAApngRgba', query: 'width=64&height=48&method=scale', bytes: original },
    { serverName: HS, mediaId: 'AAABgif', query: 'width=32&height=32&method=crop&animated=false', bytes: gifStill },
    { serverName: HS, mediaId: 'AAABgif', query: 'width=32&height=32&method=crop&animated=true', bytes: gifAnimated },
    { serverName: HS, mediaId: 'AAACjpeg', query: 'width=32&height=32&method=crop', bytes: jpegThumb },
    { serverName: HS, mediaId: '2026-12-07_previewImage', query: 'width=32&height=24&method=scale', bytes: previewThumb },
    { serverName: 'remote.test', mediaId: 'remotePng', query: 'width=32&height=32&method=crop', bytes: remoteThumb },
  ];
  return { content, served, thumbnails };
}

let dir: { path: string; cleanup(): Promise<void> };
let fixture: Fixture;
let peerKey: SigningKey;
let keyServer: Server;
let keyServerUrl: string;
const dropDatabases: (() => Promise<void>)[] = [];

beforeAll(async () => {
  dir = await tempDir('h24syn-import-synapse-');
  fixture = await buildFixture();
  peerKey = generateSigningKey('k1');
  // peer.test publishes its key here, so its X-Matrix requests verify.
  keyServer = createServer((req, res) => {
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify(req.url === '/_matrix/key/v2/server' ? buildServerKeysResponse({ serverName: PEER, signingKeys: peerKey, validUntilTs: Date.now() + 3_600_000 }) : {}));
  });
  await new Promise<void>((resolve) => keyServer.listen(0, '127.0.0.1', resolve));
  keyServerUrl = `http://127.0.0.1:${(keyServer.address() as AddressInfo).port}`;
}, 60_000);

afterAll(async () => {
  await new Promise<void>((resolve) => keyServer.close(() => resolve()));
  for (const drop of dropDatabases.splice(0)) await drop();
  await dir.cleanup();
});

/** The hsmedia config (YAML-shaped) of a target directory. */
function targetDocument(base: string): Record<string, unknown> {
  return {
    server_name: HS,
    listen: { host: '127.0.0.1', port: 0 },
    database: { sqlite: { path: join(base, 'media.db') } },
    media_store: { filesystem: { path: join(base, 'media') } },
    signing_key_path: join(base, 'signing.key'),
    log_level: 'silent',
    auth: { tokens: { [TOKEN]: '@alice:hs1.test' } },
    federation: { destinations: { [PEER]: keyServerUrl }, ip_range_allowlist: ['127.0.0.1/32'] },
  };
}

function sink(cwd: string): CliIo & { out(): string; err(): string } {
  let out = '';
  let err = '';
  return { stdout: { write: (t: string) => (out += t) }, stderr: { write: (t: string) => (err += t) }, cwd, out: () => out, err: () => err };
}

async function cli(base: string, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const configPath = join(base, 'config.yaml');
  if (!existsSync(configPath)) await writeFile(configPath, stringify(targetDocument(base)));
  const io = sink(base);
  const code = await runCommand(['import-synapse', ...args, '--config', configPath], io);
  return { code, out: io.out(), err: io.err() };
}

async function countFiles(root: string): Promise<number> {
  if (!existsSync(root)) return 0;
  return (await readdir(root, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).length;
}

function federation(server: StartedServer, uri: string): Promise<Response> {
  return fetch(`${server.url}${uri}`, { headers: { Authorization: signXMatrixRequest({ method: 'GET', uri, origin: PEER, destination: HS }, peerKey) } });
}

async function multipartBytes(res: Response): Promise<Buffer> {
  expect(res.status).toBe(200);
  const decoded = await decodeMultipart(res.headers.get('content-type') ?? '', res.body!, { maxContentBytes: 8 << 20 });
  if (decoded.kind !== 'content') throw new Error('expected inline content');
  return Buffer.from(await new Response(decoded.stream).arrayBuffer());
}

const client = (server: StartedServer, path: string): Promise<Response> => fetch(`${server.url}${path}`, { headers: { Authorization: `Bearer ${TOKEN}` } });

/** Every imported item and thumbnail through the client and federation APIs, byte for byte; what must not be served is not. */
async function checkServed(base: string): Promise<void> {
  const server = await startServer(testConfig(base, targetDocument(base)));
  try {
    for (const item of fixture.served) {
      const res = await client(server, `/_matrix/client/v1/media/download/${item.serverName}/${encodeURIComponent(item.mediaId)}`);
      expect(res.status, item.mediaId).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(Buffer.from(item.bytes)), item.mediaId).toBe(true);
      if (item.contentType !== null) expect(res.headers.get('content-type'), item.mediaId).toContain(item.contentType.split(';')[0]);
      if (item.uploadName === 'résumé 📄.txt') expect(res.headers.get('content-disposition')).toContain(encodeURIComponent('résumé'));
      if (item.serverName === HS) {
        const fed = await multipartBytes(await federation(server, `/_matrix/federation/v1/media/download/${encodeURIComponent(item.mediaId)}`));
        expect(fed.equals(Buffer.from(item.bytes)), `federation ${item.mediaId}`).toBe(true);
      }
    }
    for (const thumb of fixture.thumbnails) {
      const res = await client(server, `/_matrix/client/v1/media/thumbnail/${thumb.serverName}/${encodeURIComponent(thumb.mediaId)}?${thumb.query}`);
      expect(res.status, `${thumb.mediaId} ${thumb.query}`).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(Buffer.from(thumb.bytes)), `${thumb.mediaId} ${thumb.query}`).toBe(true);
      if (thumb.serverName === HS) {
        const fed = await multipartBytes(await federation(server, `/_matrix/federation/v1/media/thumbnail/${encodeURIComponent(thumb.mediaId)}?${thumb.query}`));
        expect(fed.equals(Buffer.from(thumb.bytes)), `federation thumbnail ${thumb.mediaId} ${thumb.query}`).toBe(true);
      }
    }
    // Remote media known only through a thumbnail (of a configured size, as Synapse asked for it): served from it.
    const onlyThumb = await client(server, '/_matrix/client/v1/media/thumbnail/remote.test/thumbOnly?width=32&height=32&method=crop');
    expect(onlyThumb.status).toBe(200);
    expect(Buffer.from(await onlyThumb.arrayBuffer()).equals(Buffer.from(fixture.content.remote[2]!.thumbnails![0]!.bytes))).toBe(true);
    // Quarantined media stays quarantined (404, like Synapse), remote too.
    for (const [origin, id] of [[HS, 'BBBBquarantined'], ['remote.test', 'remoteQuarantined']] as const) {
      const res = await client(server, `/_matrix/client/v1/media/download/${origin}/${id}?allow_remote=false`);
      expect(res.status, id).toBe(404);
    }
    // Created but never uploaded: 504 M_NOT_YET_UPLOADED, as Synapse answers.
    const pending = await client(server, `/_matrix/client/v1/media/download/${HS}/CCCCpending?timeout_ms=0`);
    expect(pending.status).toBe(504);
    expect(((await pending.json()) as { errcode: string }).errcode).toBe('M_NOT_YET_UPLOADED');
    // Skipped items are not there.
    for (const id of ['DDDDmissing', 'DDDEwrongSize']) expect((await client(server, `/_matrix/client/v1/media/download/${HS}/${id}`)).status, id).toBe(404);
  } finally {
    await server.close();
  }
}

interface Source {
  readonly name: string;
  readonly era: SynapseSchemaEra;
  /** Run with --link (hard links into the filesystem store). */
  readonly link?: boolean;
  readonly dir: string;
  create(base: string): Promise<string>;
}

const sources: Source[] = [
  {
    name: 'SQLite, schema 94',
    era: 'current',
    dir: 'sqlite',
    async create(base) {
      const path = join(base, 'homeserver.db');
      await writeSynapseSqlite(path, 'current', fixture.content);
      return path;
    },
  },
  {
    name: 'PostgreSQL, schema 72 era (no sha256, no authenticated)',
    era: 'legacy',
    dir: 'postgres',
    async create() {
      const db = await createPostgresDatabase(PG_URL, 'h24syn_cli');
      dropDatabases.push(() => db.drop());
      await writeSynapsePostgres(db.url, 'legacy', fixture.content);
      return db.url;
    },
  },
  {
    name: 'SQLite, schema 94, hard-linked (--link)',
    era: 'current',
    dir: 'linked',
    link: true,
    async create(base) {
      const path = join(base, 'homeserver.db');
      await writeSynapseSqlite(path, 'current', fixture.content);
      return path;
    },
  },
];

describe('import-synapse command line', () => {
  it('parses its options and refuses bad ones with a usage error', () => {
    expect(parseCommandLine(['import-synapse', '--database', 'h.db', '--media-store', 'ms', '--dry-run', '--link', '--concurrency', '8'])).toMatchObject({
      kind: 'run',
      command: 'import-synapse',
      importSynapse: { database: 'h.db', mediaStore: 'ms', dryRun: true, link: true, restart: false, concurrency: 8 },
    });
    const usage = (...argv: string[]): string => {
      const parsed = parseCommandLine(argv);
      return parsed.kind === 'usage-error' ? parsed.message : 'ok';
    };
    expect(usage('import-synapse', '--media-store', 'ms')).toContain('needs --database');
    expect(usage('import-synapse', '--database', 'h.db')).toContain('needs --media-store');
    expect(usage('import-synapse', '--database', 'h.db', '--media-store', 'ms', '--concurrency', '0')).toBe('--concurrency must be 1 to 512');
    expect(usage('migrate', '--media-store', 'ms')).toBe('--media-store is an option of import-synapse only');
    // --dry-run still belongs to hashes import too.
    expect(usage('hashes', 'import', 'list.csv', '--dry-run')).toBe('ok');
  });

  it('reports a database that is not Synapse\'s and exits 1', async () => {
    const base = join(dir.path, 'not-synapse');
    await writeFile(join(dir.path, 'empty.db'), '');
    await mkdir(join(base, 'media_store'), { recursive: true });
    const result = await cli(base, '--database', join(dir.path, 'empty.db'), '--media-store', join(base, 'media_store'));
    expect(result.code).toBe(1);
    expect(result.err).toContain('not a Synapse database');
  });
});

describe.each(sources)('hsmedia-server import-synapse from $name', (source) => {
  it('dry run, import, report, rerun with nothing imported twice; every item served byte for byte', async () => {
    const base = join(dir.path, source.dir);
    const mediaStore = join(base, 'media_store');
    await writeSynapseMediaStore(mediaStore, fixture.content);
    const database = await source.create(base);
    const args = ['--database', database, '--media-store', mediaStore, ...(source.link === true ? ['--link'] : [])];

    const dry = await cli(base, ...args, '--dry-run', '--report', 'dry.jsonl');
    expect(dry.out).toContain('Synapse: 14 local media');
    expect(dry.out).toContain('media: pending 1, would-import 12, missing-file 1, size-mismatch 1, unsafe-path 1');
    expect(dry.code).toBe(1);
    expect(await countFiles(join(base, 'media'))).toBe(0);

    const first = await cli(base, ...args, '--report', 'first.jsonl');
    // Three problems (missing file, wrong size, a path out of the store) make the exit code 1.
    expect(first.code).toBe(1);
    expect(first.out).toContain('media: imported 12, pending 1, missing-file 1, size-mismatch 1, unsafe-path 1');
    expect(first.out).toContain('thumbnails: imported 10');
    expect(first.err).toContain('3 item(s) skipped for a problem');
    const report = (await readFile(join(base, 'first.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { outcome: string; mediaId: string; detail?: string });
    expect(report.find((e) => e.mediaId === 'DDDEwrongSize')).toMatchObject({ outcome: 'size-mismatch', detail: 'file has 5 bytes, the database says 9' });
    expect(report.find((e) => e.mediaId === '../../escape')?.outcome).toBe('unsafe-path');
    expect(report.find((e) => e.mediaId === 'DDDDmissing')?.outcome).toBe('missing-file');
    const files = await countFiles(join(base, 'media'));
    // --link: the blobs are Synapse's files under a second name; otherwise copies.
    const blobDir = join(base, 'media', 'blobs');
    const blobLinks = await Promise.all(
      (await readdir(blobDir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map(async (e) => (await stat(join(e.parentPath, e.name))).nlink),
    );
    expect(blobLinks.filter((n) => n > 1).length).toBe(source.link === true ? blobLinks.length : 0);

    const again = await cli(base, ...args, '--report', 'again.jsonl', '--restart');
    expect(again.out).toContain('media: present 13');
    expect(again.out).toContain('thumbnails: present 10');
    expect(await countFiles(join(base, 'media'))).toBe(files);

    await checkServed(base);
  }, 120_000);
});

describe('hsmedia-server import-synapse killed mid-import', () => {
  beforeAll(async () => {
    await promisify(execFile)('npx', ['tsc', '-b', 'apps/media-server'], { cwd: repoRoot });
  }, 120_000);

  it('a rerun continues and completes: every item once, byte for byte', async () => {
    const base = join(dir.path, 'killed');
    const mediaStore = join(base, 'media_store');
    const many: SynapseFixtureContent = {
      local: Array.from({ length: 300 }, (_, i) => ({ mediaId: `k${String(i).padStart(4, '0')}media`, type: 'application/octet-stream', bytes: randomBytes(64 * 1024 + i), createdTs: T0 + i, userId: '@alice:hs1.test' })),
      remote: [],
    };
    await writeSynapseMediaStore(mediaStore, many);
    const database = join(base, 'homeserver.db');
    await writeSynapseSqlite(database, 'current', many);
    const configPath = join(base, 'config.yaml');
    await writeFile(configPath, stringify(targetDocument(base)));
    const args = ['import-synapse', '--database', database, '--media-store', mediaStore, '--concurrency', '2', '--config', configPath];

    const first = new CliProcess([...args, '--report', 'first.jsonl'], base);
    const statePath = join(base, 'import-synapse.state.json');
    // Killed as soon as it has saved a resume point (the first items are done).
    await first.waitFor(() => existsSync(statePath), 'the first saved cursor').catch(() => undefined);
    first.child.kill('SIGKILL');
    const { signal } = await first.exited;
    expect(signal).toBe('SIGKILL');

    const second = new CliProcess([...args, '--report', 'second.jsonl'], base);
    const { code } = await second.exited;
    expect(second.stderr).not.toMatch(/stopped|error/i);
    expect(code).toBe(0);
    expect(second.stdout).toContain('continuing after the last saved item');
    const firstLines = (await readFile(join(base, 'first.jsonl'), 'utf8')).trim().split('\n').filter((l) => l !== '').length;
    const secondImported = (await readFile(join(base, 'second.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { outcome: string }).filter((e) => e.outcome === 'imported').length;
    expect(firstLines).toBeLessThan(300);
    expect(secondImported).toBeLessThanOrEqual(300);

    // Every item once: one record each, and at most the items in flight when killed left a blob no record uses.
    const store = await createSqliteMetadataStore({ path: join(base, 'media.db') });
    try {
      expect((await store.summarizeMedia({})).count).toBe(300);
    } finally {
      await store.close();
    }
    expect(await countFiles(join(base, 'media'))).toBeLessThanOrEqual(300 + 2);

    const server = await startServer(testConfig(base, targetDocument(base)));
    try {
      for (const m of many.local) {
        const res = await client(server, `/_matrix/client/v1/media/download/${HS}/${m.mediaId}`);
        expect(res.status, m.mediaId).toBe(200);
        expect(Buffer.from(await res.arrayBuffer()).equals(Buffer.from(m.bytes!)), m.mediaId).toBe(true);
      }
    } finally {
      await server.close();
    }
  }, 180_000);
});
