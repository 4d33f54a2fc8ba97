/**
 * Synapse fixtures made by a REAL Synapse (issue 24, "Test data"): two homeservers federating on
 * 127.0.0.1 are driven through their own client, media and admin APIs (uploads of every kind,
 * async uploads, thumbnails, remote media, quarantine, protection, a URL preview of a loopback
 * page), then stopped; what is kept is homeserver A's SQLite database, its `media_store` and a
 * manifest (`fixture.json`) of every item with the bytes' SHA-256 and what Synapse answered.
 *
 * Built once per Synapse version under `~/.cache/hsmedia-synapse/fixtures/<version>/` (built in a
 * temporary directory and renamed, so concurrent test files never see half a fixture); tests copy
 * it before use. `loadSynapseFixture()` never throws: when Synapse cannot be installed it gives the
 * reason, which the caller prints loudly before skipping.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { freePort } from '../helpers.js';
import {
  generateSynapseKeys,
  installSynapse,
  registerUser,
  selfSignedCertificate,
  startSynapse,
  writeSynapseConfig,
  type RunningSynapse,
  type SynapseSetup,
  type SynapseUser,
} from './synapse-harness.js';

/** Bump when the builder changes what it makes: old caches are then rebuilt. */
const FIXTURE_FORMAT = 3;

/** A thumbnail Synapse served for a fixture item. */
export interface FixtureThumbnail {
  readonly query: string;
  readonly status: number;
  readonly contentType: string | null;
  readonly sha256: string | null;
}

/** One media item of the fixture, as Synapse A knows it. */
export interface FixtureItem {
  /** What the item is (`png-rgba`, `remote-jpeg`, `pending`, ...). */
  readonly label: string;
  readonly serverName: string;
  readonly mediaId: string;
  readonly origin: 'local' | 'remote';
  /** SHA-256 and size of the bytes uploaded (null: never uploaded). */
  readonly sha256: string | null;
  readonly size: number | null;
  readonly contentType: string | null;
  readonly uploadName: string | null;
  readonly quarantined: boolean;
  readonly protected: boolean;
  /** Synapse A's status for an authenticated download when the fixture was made (after quarantine). */
  readonly downloadStatus: number;
  readonly thumbnails: readonly FixtureThumbnail[];
}

/** The kept state of Synapse A. */
export interface SynapseFixture {
  readonly synapseVersion: string;
  /** Server name of A (the local media) and of B (the remote media A cached). */
  readonly serverName: string;
  readonly remoteServerName: string;
  /** The directory holding `homeserver.db`, `media/` and `fixture.json`. */
  readonly dir: string;
  readonly databasePath: string;
  readonly mediaStorePath: string;
  readonly items: readonly FixtureItem[];
  /** The `og:image` of the URL preview, as Synapse stored it (an `mxc://` URI of A). */
  readonly previewImage: string | null;
}

export type FixtureResult = { readonly fixture: SynapseFixture } | { readonly fixture?: undefined; readonly reason: string };

const sha256Of = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

function fixtureRoot(): string {
  const cache = process.env['HSMEDIA_SYNAPSE_CACHE'] ?? join(process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'hsmedia-synapse');
  return join(cache, 'fixtures');
}

/** The fixture of the installed Synapse, built when not cached. Never throws. */
export async function loadSynapseFixture(): Promise<FixtureResult> {
  const install = installSynapse();
  if (install.python === undefined) return { reason: install.reason };
  const dir = join(fixtureRoot(), `${install.version}-f${FIXTURE_FORMAT}`);
  try {
    await mkdir(fixtureRoot(), { recursive: true });
    if (!existsSync(join(dir, 'fixture.json')) && (await takeBuildLock(`${dir}.lock`))) {
      const building = join(fixtureRoot(), `.building-${process.pid}-${randomBytes(4).toString('hex')}`);
      await mkdir(building, { recursive: true });
      try {
        await buildFixture(install.python, install.version, building);
        await rename(building, dir).catch(async (error: NodeJS.ErrnoException) => {
          // Another process finished first: theirs is as good as ours.
          if (!existsSync(join(dir, 'fixture.json'))) throw error;
        });
      } finally {
        await rm(building, { recursive: true, force: true });
        await rm(`${dir}.lock`, { recursive: true, force: true });
      }
    }
    const manifest = JSON.parse(await readFile(join(dir, 'fixture.json'), 'utf8')) as Omit<SynapseFixture, 'dir' | 'databasePath' | 'mediaStorePath'>;
    return { fixture: { ...manifest, dir, databasePath: join(dir, 'homeserver.db'), mediaStorePath: join(dir, 'media') } };
  } catch (error) {
    return { reason: `building the Synapse fixture failed: ${(error as Error).stack ?? String(error)}` };
  }
}

/**
 * One builder at a time (test files run in parallel; each build starts two Synapses): true when
 * this process should build, false once another process's build is there. A lock older than the
 * longest build is taken over (its builder died).
 */
async function takeBuildLock(lock: string): Promise<boolean> {
  const fixture = join(lock.slice(0, -'.lock'.length), 'fixture.json');
  for (;;) {
    try {
      await mkdir(lock);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    if (existsSync(fixture)) return false;
    const age = Date.now() - (await stat(lock).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
    if (age > 15 * 60_000) await rm(lock, { recursive: true, force: true });
    else await new Promise((resolve) => setTimeout(resolve, 500));
    if (existsSync(fixture)) return false;
  }
}

/** Run by Synapse's Python: media created but never uploaded re-dated to argv[2] (ms). */
const REDATE_PENDING = "import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\nc.execute('UPDATE local_media_repository SET created_ts = ? WHERE media_length IS NULL', (int(sys.argv[2]),))\nc.commit()";

/**
 * A private copy of the fixture (tests delete files and change the database). Its media created but
 * never uploaded is re-dated to now: Synapse answers it 504 for 24 h after its creation (404 after),
 * and the manifest records the 504 Synapse gave when the fixture was made, however old the cache is.
 */
export async function copySynapseFixture(fixture: SynapseFixture, target: string): Promise<SynapseFixture> {
  await cp(fixture.dir, target, { recursive: true });
  const databasePath = join(target, 'homeserver.db');
  const install = installSynapse();
  if (install.python === undefined) throw new Error(`Synapse's Python is gone: ${install.reason}`);
  await promisify(execFile)(install.python, ['-c', REDATE_PENDING, databasePath, String(Date.now())]);
  return { ...fixture, dir: target, databasePath, mediaStorePath: join(target, 'media') };
}

interface Uploaded {
  readonly label: string;
  readonly bytes: Buffer;
  readonly contentType: string | null;
  readonly uploadName: string | null;
}

/** Every kind of upload the issue lists; images made with sharp. */
async function uploads(): Promise<Uploaded[]> {
  const frames = async (count: number): Promise<Buffer[]> =>
    Promise.all(
      ['#ff0000', '#00ff00', '#0000ff', '#ffff00'].slice(0, count).map((background) => sharp({ create: { width: 120, height: 90, channels: 4, background } }).png().toBuffer()),
    );
  const gradient = Buffer.alloc(200 * 150 * 3);
  for (let i = 0; i < gradient.length; i++) gradient[i] = (i * 7) % 251;
  const rgb = sharp(gradient, { raw: { width: 200, height: 150, channels: 3 } });
  const rgba = sharp({ create: { width: 160, height: 120, channels: 4, background: { r: 10, g: 200, b: 30, alpha: 0.4 } } });
  const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><circle cx="32" cy="32" r="30" fill="teal"/></svg>';
  return [
    { label: 'png-palette', bytes: await rgb.clone().png({ palette: true, colours: 16 }).toBuffer(), contentType: 'image/png', uploadName: 'palette.png' },
    { label: 'png-rgb', bytes: await rgb.clone().png().toBuffer(), contentType: 'image/png', uploadName: 'rgb.png' },
    { label: 'png-rgba', bytes: await rgba.clone().png().toBuffer(), contentType: 'image/png', uploadName: 'rgba.png' },
    { label: 'png-1x1', bytes: await sharp({ create: { width: 1, height: 1, channels: 3, background: '#123456' } }).png().toBuffer(), contentType: 'image/png', uploadName: 'dot.png' },
    // Orientation 6: the stored original stays as uploaded, Synapse's thumbnails come out rotated.
    { label: 'jpeg-exif', bytes: await rgb.clone().jpeg({ quality: 85 }).withMetadata({ orientation: 6 }).toBuffer(), contentType: 'image/jpeg', uploadName: 'photo.jpg' },
    { label: 'gif-still', bytes: await rgb.clone().gif().toBuffer(), contentType: 'image/gif', uploadName: 'still.gif' },
    { label: 'gif-animated', bytes: await sharp(await frames(3), { join: { animated: true } }).gif({ delay: [100, 100, 100], loop: 0 }).toBuffer(), contentType: 'image/gif', uploadName: 'moving.gif' },
    { label: 'webp-still', bytes: await rgb.clone().webp().toBuffer(), contentType: 'image/webp', uploadName: 'still.webp' },
    { label: 'webp-alpha', bytes: await rgba.clone().webp().toBuffer(), contentType: 'image/webp', uploadName: 'alpha.webp' },
    { label: 'webp-animated', bytes: await sharp(await frames(4), { join: { animated: true } }).webp({ delay: [100, 100, 100, 100], loop: 0 }).toBuffer(), contentType: 'image/webp', uploadName: 'moving.webp' },
    { label: 'svg', bytes: Buffer.from(svg), contentType: 'image/svg+xml', uploadName: 'circle.svg' },
    { label: 'text-charset', bytes: Buffer.from('Grüße, 世界\n', 'utf8'), contentType: 'text/plain; charset=utf-8', uploadName: 'greeting.txt' },
    { label: 'no-content-type', bytes: randomBytes(1000), contentType: null, uploadName: 'unknown.bin' },
    { label: 'empty', bytes: Buffer.alloc(0), contentType: 'application/octet-stream', uploadName: 'empty.bin' },
    { label: 'binary-5mib', bytes: randomBytes(5 * 1024 * 1024), contentType: 'application/octet-stream', uploadName: 'big.bin' },
    { label: 'unicode-name', bytes: randomBytes(2048), contentType: 'application/pdf', uploadName: 'Straße – 報告 ✓.pdf' },
    { label: 'no-name', bytes: randomBytes(3000), contentType: 'application/zip', uploadName: null },
  ];
}

/** Run by Synapse's own Python (it has sqlite3): the media IDs of URL previews. */
const URL_CACHE_QUERY =
  "import sqlite3, sys\nfor (m,) in sqlite3.connect(sys.argv[1]).execute('SELECT media_id FROM local_media_repository WHERE url_cache IS NOT NULL ORDER BY media_id'): print(m)";

/** Run by Synapse's Python: how many of the sha256-index background updates are still to run. */
const SHA256_UPDATES_QUERY =
  "import sqlite3, sys\nprint(sqlite3.connect(sys.argv[1], timeout=10).execute(\"SELECT count(*) FROM background_updates WHERE update_name IN ('local_media_repository_sha256_idx', 'remote_media_cache_sha256_idx')\").fetchone()[0])";

async function waitForSha256Index(python: string, database: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const { stdout } = await promisify(execFile)(python, ['-c', SHA256_UPDATES_QUERY, database]);
    if (stdout.trim() === '0') return;
    if (Date.now() > deadline) throw new Error('Synapse did not finish its sha256-index background updates within 120 s');
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** Thumbnail queries asked of every image (the spec's recommended sizes, and animated ones). */
const THUMBNAIL_QUERIES = ['width=32&height=32&method=crop', 'width=96&height=96&method=crop', 'width=320&height=240&method=scale', 'width=96&height=96&method=crop&animated=true'];

interface Answer {
  readonly status: number;
  readonly contentType: string | null;
  readonly body: Buffer;
}

async function call(url: string, token: string | undefined, init: { method?: string; body?: Buffer | string; contentType?: string | null } = {}): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers['Authorization'] = `Bearer ${token}`;
  if (init.contentType !== undefined && init.contentType !== null) headers['Content-Type'] = init.contentType;
  const response = await fetch(url, { method: init.method ?? 'GET', headers, ...(init.body === undefined ? {} : { body: init.body }) });
  return { status: response.status, contentType: response.headers.get('content-type'), body: Buffer.from(await response.arrayBuffer()) };
}

function expectOk(answer: Answer, what: string): Answer {
  if (answer.status !== 200) throw new Error(`${what}: ${answer.status} ${answer.body.toString('utf8').slice(0, 300)}`);
  return answer;
}

function mxc(answer: Answer): { serverName: string; mediaId: string } {
  const uri = (JSON.parse(answer.body.toString('utf8')) as { content_uri: string }).content_uri;
  const match = /^mxc:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (match === null) throw new Error(`not an mxc URI: ${uri}`);
  return { serverName: match[1]!, mediaId: match[2]! };
}

/** A loopback page with OpenGraph tags and the image they name. */
async function previewSite(image: Buffer): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    if (req.url === '/image.png') {
      res.writeHead(200, { 'Content-Type': 'image/png', 'Content-Length': image.length }).end(image);
      return;
    }
    const port = (server.address() as { port: number }).port;
    res
      .writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' })
      .end(`<html><head><title>Fixture page</title><meta property="og:title" content="Fixture page"><meta property="og:image" content="http://127.0.0.1:${port}/image.png"></head><body>hi</body></html>`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}/page.html` };
}

async function buildFixture(python: string, version: string, out: string): Promise<void> {
  const work = join(tmpdir(), `hsmedia-synapse-fixture-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(work, { recursive: true });
  const cert = await selfSignedCertificate(work);
  const ports = { fedA: await freePort(), clientA: await freePort(), fedB: await freePort(), clientB: await freePort() };
  const serverA = `127.0.0.1:${ports.fedA}`;
  const serverB = `127.0.0.1:${ports.fedB}`;
  const setup = (name: string, serverName: string, fed: number, client: number, extra: Record<string, unknown>): SynapseSetup => ({
    dir: join(work, name),
    serverName,
    listeners: [
      { port: fed, tls: true, resources: ['federation', 'media'] },
      { port: client, tls: false, resources: ['client', 'media'] },
    ],
    clientPort: client,
    tls: cert,
    // Server names are IP literals, which Synapse's default blocklist refuses before the allowlist is
    // asked: a blocklist of one documentation range (RFC 5737) lets the two servers talk on loopback.
    // No pauses between background-update batches: the hash-quarantine check waits for an index they build.
    extra: { ip_range_blacklist: ['192.0.2.0/24'], background_updates: { sleep_enabled: false }, ...extra },
  });
  const setupA = setup('synapse-a', serverA, ports.fedA, ports.clientA, {
    url_preview_enabled: true,
    // Synapse requires a blocklist with previews on; the allowlist lets the loopback page through.
    url_preview_ip_range_blacklist: ['192.0.2.0/24'],
    url_preview_ip_range_whitelist: ['127.0.0.1'],
  });
  const setupB = setup('synapse-b', serverB, ports.fedB, ports.clientB, {});
  const site = await previewSite(await sharp({ create: { width: 300, height: 200, channels: 3, background: '#336699' } }).png().toBuffer());
  let synapseA: RunningSynapse | undefined;
  let synapseB: RunningSynapse | undefined;
  try {
    const [configA, configB] = await Promise.all([writeSynapseConfig(setupA), writeSynapseConfig(setupB)]);
    await Promise.all([generateSynapseKeys(python, configA), generateSynapseKeys(python, configB)]);
    [synapseA, synapseB] = await Promise.all([startSynapse(python, configA, setupA), startSynapse(python, configB, setupB)]);
    const a = synapseA.clientUrl;
    const b = synapseB.clientUrl;
    const [admin, alice, dave, carol] = await Promise.all([
      registerUser(a, 'admin', true),
      registerUser(a, 'alice', false),
      registerUser(a, 'dave', false),
      registerUser(b, 'carol', false),
    ]);
    const items: FixtureItem[] = [];
    const upload = async (server: string, user: SynapseUser, item: Uploaded): Promise<{ serverName: string; mediaId: string }> => {
      const query = item.uploadName === null ? '' : `?filename=${encodeURIComponent(item.uploadName)}`;
      return mxc(expectOk(await call(`${server}/_matrix/media/v3/upload${query}`, user.token, { method: 'POST', body: item.bytes, contentType: item.contentType }), `upload ${item.label}`));
    };
    const thumbnailsOf = async (serverName: string, mediaId: string): Promise<FixtureThumbnail[]> => {
      const answers: FixtureThumbnail[] = [];
      for (const query of THUMBNAIL_QUERIES) {
        const answer = await call(`${a}/_matrix/client/v1/media/thumbnail/${serverName}/${mediaId}?${query}`, alice.token);
        answers.push({ query, status: answer.status, contentType: answer.contentType, sha256: answer.status === 200 ? sha256Of(answer.body) : null });
      }
      return answers;
    };
    const isImage = (type: string | null): boolean => type !== null && type.startsWith('image/') && type !== 'image/svg+xml';
    type Draft = Omit<FixtureItem, 'downloadStatus' | 'thumbnails' | 'quarantined' | 'protected'> & { quarantined?: boolean; protected?: boolean; thumbnail?: boolean };
    const drafts: Draft[] = [];

    // Local uploads of every kind.
    for (const item of await uploads()) {
      const { serverName, mediaId } = await upload(a, alice, item);
      drafts.push({ label: item.label, serverName, mediaId, origin: 'local', sha256: sha256Of(item.bytes), size: item.bytes.length, contentType: item.contentType, uploadName: item.uploadName, thumbnail: isImage(item.contentType) });
    }
    // An async upload, and one created but never uploaded.
    const asyncBytes = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#884422' } }).jpeg().toBuffer();
    const created = mxc(expectOk(await call(`${a}/_matrix/media/v1/create`, alice.token, { method: 'POST' }), 'create'));
    expectOk(
      await call(`${a}/_matrix/media/v3/upload/${created.serverName}/${created.mediaId}?filename=later.jpg`, alice.token, { method: 'PUT', body: asyncBytes, contentType: 'image/jpeg' }),
      'async upload',
    );
    drafts.push({ label: 'async-uploaded', ...created, origin: 'local', sha256: sha256Of(asyncBytes), size: asyncBytes.length, contentType: 'image/jpeg', uploadName: 'later.jpg', thumbnail: true });
    const never = mxc(expectOk(await call(`${a}/_matrix/media/v1/create`, alice.token, { method: 'POST' }), 'create'));
    drafts.push({ label: 'never-uploaded', ...never, origin: 'local', sha256: null, size: null, contentType: null, uploadName: null });

    // Remote media A caches from B: one downloaded, one only asked for as a thumbnail.
    const remoteImage = await sharp({ create: { width: 400, height: 300, channels: 3, background: '#aa3355' } }).jpeg().toBuffer();
    const remoteBinary = randomBytes(70_000);
    const remoteThumbOnly = await sharp({ create: { width: 500, height: 250, channels: 4, background: '#22aa5580' } }).png().toBuffer();
    const remoteQuarantined = randomBytes(4096);
    for (const [label, bytes, type, name] of [
      ['remote-jpeg', remoteImage, 'image/jpeg', 'remote.jpg'],
      ['remote-binary', remoteBinary, 'application/octet-stream', 'remote.bin'],
      ['remote-thumbnail-only', remoteThumbOnly, 'image/png', 'remote-thumb.png'],
      ['remote-quarantined', remoteQuarantined, 'application/octet-stream', null],
    ] as const) {
      const { serverName, mediaId } = await upload(b, carol, { label, bytes, contentType: type, uploadName: name });
      if (label === 'remote-thumbnail-only') {
        expectOk(await call(`${a}/_matrix/client/v1/media/thumbnail/${serverName}/${mediaId}?width=96&height=96&method=crop`, alice.token), `thumbnail of ${label} through A`);
      } else {
        expectOk(await call(`${a}/_matrix/client/v1/media/download/${serverName}/${mediaId}`, alice.token), `download of ${label} through A`);
      }
      drafts.push({ label, serverName, mediaId, origin: 'remote', sha256: sha256Of(bytes), size: bytes.length, contentType: type, uploadName: name, thumbnail: type.startsWith('image/') });
    }

    // Quarantine: one local item and one remote item by ID; dave's media by user, which skips his protected item.
    const byLabel = (label: string): Draft => drafts.find((draft) => draft.label === label)!;
    const quarantinedBytes = randomBytes(8192);
    const quarantinedLocal = await upload(a, alice, { label: 'local-quarantined', bytes: quarantinedBytes, contentType: 'application/octet-stream', uploadName: 'bad.bin' });
    drafts.push({ label: 'local-quarantined', ...quarantinedLocal, origin: 'local', sha256: sha256Of(quarantinedBytes), size: quarantinedBytes.length, contentType: 'application/octet-stream', uploadName: 'bad.bin', quarantined: true });
    const quarantinedImage = await sharp({ create: { width: 90, height: 90, channels: 3, background: '#ff00ff' } }).png().toBuffer();
    const quarantinedWithThumbs = await upload(a, alice, { label: 'local-quarantined-image', bytes: quarantinedImage, contentType: 'image/png', uploadName: 'bad.png' });
    drafts.push({ label: 'local-quarantined-image', ...quarantinedWithThumbs, origin: 'local', sha256: sha256Of(quarantinedImage), size: quarantinedImage.length, contentType: 'image/png', uploadName: 'bad.png', quarantined: true, thumbnail: true });
    const protectedBytes = randomBytes(5000);
    const daveProtected = await upload(a, dave, { label: 'protected', bytes: protectedBytes, contentType: 'application/octet-stream', uploadName: 'keep.bin' });
    drafts.push({ label: 'protected', ...daveProtected, origin: 'local', sha256: sha256Of(protectedBytes), size: protectedBytes.length, contentType: 'application/octet-stream', uploadName: 'keep.bin', protected: true });
    const daveOther = randomBytes(6000);
    const daveQuarantined = await upload(a, dave, { label: 'user-quarantined', bytes: daveOther, contentType: 'application/octet-stream', uploadName: 'dave.bin' });
    drafts.push({ label: 'user-quarantined', ...daveQuarantined, origin: 'local', sha256: sha256Of(daveOther), size: daveOther.length, contentType: 'application/octet-stream', uploadName: 'dave.bin', quarantined: true });

    // Thumbnails are asked for before quarantine, so those of quarantined media exist on disk too.
    const thumbnails = new Map<string, FixtureThumbnail[]>();
    for (const draft of drafts) if (draft.thumbnail === true) thumbnails.set(draft.mediaId, await thumbnailsOf(draft.serverName, draft.mediaId));

    const adminCall = async (path: string, what: string): Promise<void> => void expectOk(await call(`${a}/_synapse/admin/v1${path}`, admin.token, { method: 'POST', body: '{}', contentType: 'application/json' }), what);
    await adminCall(`/media/protect/${daveProtected.mediaId}`, 'protect');
    await adminCall(`/media/quarantine/${quarantinedLocal.serverName}/${quarantinedLocal.mediaId}`, 'quarantine local');
    await adminCall(`/media/quarantine/${quarantinedWithThumbs.serverName}/${quarantinedWithThumbs.mediaId}`, 'quarantine local image');
    const remoteBad = byLabel('remote-quarantined');
    await adminCall(`/media/quarantine/${remoteBad.serverName}/${remoteBad.mediaId}`, 'quarantine remote');
    await adminCall(`/user/${encodeURIComponent(dave.userId)}/media/quarantine`, 'quarantine user media');
    byLabel('remote-quarantined').quarantined = true;

    // The same bytes as quarantined media, uploaded again: Synapse quarantines the copy (`system`) once
    // its background update has built the sha256 index (before that, get_is_hash_quarantined says no).
    await waitForSha256Index(python, join(setupA.dir, 'homeserver.db'));
    const again = await upload(a, alice, { label: 'reupload-of-quarantined', bytes: quarantinedBytes, contentType: 'application/octet-stream', uploadName: 'again.bin' });
    drafts.push({ label: 'reupload-of-quarantined', ...again, origin: 'local', sha256: sha256Of(quarantinedBytes), size: quarantinedBytes.length, contentType: 'application/octet-stream', uploadName: 'again.bin', quarantined: true });

    // A URL preview of a loopback page: its image becomes local media under url_cache/.
    const preview = expectOk(await call(`${a}/_matrix/client/v1/media/preview_url?url=${encodeURIComponent(site.url)}`, alice.token), 'preview_url');
    const previewImage = (JSON.parse(preview.body.toString('utf8')) as Record<string, unknown>)['og:image'];

    for (const draft of drafts) {
      const answer = await call(`${a}/_matrix/client/v1/media/download/${draft.serverName}/${draft.mediaId}?timeout_ms=0`, alice.token);
      if (answer.status === 200 && answer.body.length > 0 && draft.sha256 !== null && sha256Of(answer.body) !== draft.sha256) throw new Error(`Synapse served other bytes for ${draft.label}`);
      const { thumbnail: _thumbnail, ...rest } = draft;
      // Synapse 1.160 does not quarantine a re-upload of quarantined bytes (quarantined_by stays NULL, served):
      // the fixture records what Synapse did, not what one might expect.
      const quarantined = draft.label === 'reupload-of-quarantined' ? answer.status === 404 : (draft.quarantined ?? false);
      items.push({ ...rest, quarantined, protected: draft.protected ?? false, downloadStatus: answer.status, thumbnails: thumbnails.get(draft.mediaId) ?? [] });
    }
    // The preview's page and image are media of A under url_cache/ (the page is known only to the database).
    const cached = await promisify(execFile)(python, ['-c', URL_CACHE_QUERY, join(setupA.dir, 'homeserver.db')]);
    for (const mediaId of cached.stdout.split('\n').filter((line) => line !== '')) {
      const answer = await call(`${a}/_matrix/client/v1/media/download/${serverA}/${mediaId}`, alice.token);
      const isImage = `mxc://${serverA}/${mediaId}` === previewImage;
      items.push({
        label: isImage ? 'url-preview-image' : 'url-preview-page',
        serverName: serverA,
        mediaId,
        origin: 'local',
        sha256: answer.status === 200 ? sha256Of(answer.body) : null,
        size: answer.status === 200 ? answer.body.length : null,
        contentType: answer.contentType,
        uploadName: null,
        quarantined: false,
        protected: false,
        downloadStatus: answer.status,
        thumbnails: isImage ? await thumbnailsOf(serverA, mediaId) : [],
      });
    }

    await Promise.all([synapseA.stop(), synapseB.stop()]);
    synapseA = synapseB = undefined;
    await cp(join(setupA.dir, 'homeserver.db'), join(out, 'homeserver.db'));
    await cp(join(setupA.dir, 'media'), join(out, 'media'), { recursive: true });
    const manifest = { synapseVersion: version, serverName: serverA, remoteServerName: serverB, items, previewImage: typeof previewImage === 'string' ? previewImage : null };
    await writeFile(join(out, 'fixture.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  } catch (error) {
    const logs = `--- Synapse A ---\n${(await synapseA?.log()) ?? ''}\n--- Synapse B ---\n${(await synapseB?.log()) ?? ''}`;
    throw new Error(`${(error as Error).message}\n${logs}`, { cause: error });
  } finally {
    await Promise.all([synapseA?.stop(), synapseB?.stop()]);
    await new Promise((resolve) => site.server.close(resolve));
    await rm(work, { recursive: true, force: true });
  }
}
