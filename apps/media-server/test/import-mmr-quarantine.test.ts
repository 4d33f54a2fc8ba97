import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createSqliteMetadataStore } from '@hsmedia/store-sqlite';
import { PG_URL } from '@hsmedia/test-fixtures/postgres';
import { createPostgresDatabase } from '@hsmedia/test-fixtures/synapse';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand, type CliIo } from '../src/cli-main.js';
import { startArchiveServer, storedFiles, TOKEN, writeArchiveServerConfig, type RunningArchiveServer } from './archive-server.js';
import { writeMmrArchive, type MmrFixtureItem } from './mmr-archive-fixture.js';
import { tempDir } from './helpers.js';

// `import-mmr --mmr-database`: matrix-media-repo's quarantine and pins read from its
// own PostgreSQL database (a fresh database per test at 127.0.0.1:5432, its
// `media` table as matrix-media-repo's migrations 1, 3 and 7 create it, and
// its `media_attributes` table, absent from older ones),
// archives from the fixture writer, imported by the CLI, then checked
// through the real server process: downloads and re-uploads.

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const LOCAL = 'mmr.test';
const REMOTE = 'remote.example';

let dir: { path: string; cleanup(): Promise<void> };

beforeAll(async () => {
  await promisify(execFile)('npx', ['tsc', '-b', 'apps/media-server'], { cwd: repoRoot });
  dir = await tempDir('h5-mmr-quarantine-');
}, 120_000);
afterAll(async () => {
  await dir?.cleanup();
});

/** matrix-media-repo's `media` table: migrations 1 (create), 3 (quarantined) and 7 (datastore_id) there. */
const MMR_MEDIA_DDL = `
CREATE TABLE media (
  origin TEXT NOT NULL,
  media_id TEXT NOT NULL,
  upload_name TEXT NOT NULL,
  content_type TEXT NOT NULL,
  user_id TEXT NOT NULL,
  sha256_hash TEXT NOT NULL,
  size_bytes BIGINT NOT NULL,
  location TEXT NOT NULL,
  creation_ts BIGINT NOT NULL,
  quarantined BOOL NOT NULL DEFAULT FALSE,
  datastore_id TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX media_index ON media (media_id, origin);`;

/** matrix-media-repo's `media_attributes` table: an item's purpose, `none` or `pinned`. */
const MMR_ATTRIBUTES_DDL = `
CREATE TABLE media_attributes (
  origin TEXT NOT NULL,
  media_id TEXT NOT NULL,
  purpose TEXT NOT NULL
);
CREATE UNIQUE INDEX idx_media_attributes ON media_attributes (media_id, origin);
CREATE INDEX idx_media_attributes_purpose ON media_attributes (purpose);`;

interface MmrDatabase {
  readonly url: string;
  drop(): Promise<void>;
}

/**
 * A matrix-media-repo database holding `rows` (items, each quarantined or not, with a purpose or
 * none), with its `media_attributes` table unless `withAttributes` is false (an older one).
 */
async function mmrDatabase(
  rows: readonly { item: MmrFixtureItem; quarantined: boolean; purpose?: 'none' | 'pinned' }[],
  withSchema = true,
  withAttributes = true,
): Promise<MmrDatabase> {
  const database = await createPostgresDatabase(PG_URL, 'h5_mmr');
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    if (withSchema) await client.query(MMR_MEDIA_DDL);
    if (withSchema && withAttributes) await client.query(MMR_ATTRIBUTES_DDL);
    for (const { item, purpose } of rows) {
      if (purpose !== undefined) await client.query('INSERT INTO media_attributes (origin, media_id, purpose) VALUES ($1, $2, $3)', [item.origin, item.mediaId, purpose]);
    }
    for (const { item, quarantined } of rows) {
      const sha256 = createHash('sha256').update(item.bytes).digest('hex');
      await client.query(
        'INSERT INTO media (origin, media_id, upload_name, content_type, user_id, sha256_hash, size_bytes, location, creation_ts, quarantined, datastore_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)',
        [item.origin, item.mediaId, item.name, item.contentType, item.uploader, sha256, item.bytes.length, sha256, item.createdTs, quarantined, 'ds1'],
      );
    }
  } finally {
    await client.end();
  }
  return database;
}

function item(mediaId: string, extra: Partial<MmrFixtureItem> = {}): MmrFixtureItem {
  const bytes = randomBytes(500 + mediaId.length);
  return { origin: LOCAL, mediaId, bytes, contentType: 'image/png', name: `${mediaId}.png`, uploader: `@alice:${LOCAL}`, createdTs: 1_700_000_000_000, extension: '.png', ...extra };
}

function sink(cwd: string): CliIo & { out(): string; err(): string } {
  let out = '';
  let err = '';
  return { stdout: { write: (text: string) => (out += text) }, stderr: { write: (text: string) => (err += text) }, cwd, out: () => out, err: () => err };
}

async function run(cwd: string, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = sink(cwd);
  const code = await runCommand(args, io);
  return { code, out: io.out(), err: io.err() };
}

/** The media rows (quarantine flag by `server/id`) and the blocked hashes of the server's SQLite database. */
async function state(dbPath: string): Promise<{ quarantined: Map<string, boolean>; blocked: Set<string> }> {
  const store = await createSqliteMetadataStore({ path: dbPath });
  try {
    const list = await store.listMedia({}, { limit: 1000 });
    const blocked = await store.listBlockedHashes({ limit: 1000 });
    return { quarantined: new Map(list.map((record) => [`${record.serverName}/${record.mediaId}`, record.quarantined])), blocked: new Set(blocked.map((entry) => entry.sha256)) };
  } finally {
    await store.close();
  }
}

/** The protected flag of each media row, by `server/id`. */
async function protectedFlags(dbPath: string): Promise<Map<string, boolean>> {
  const store = await createSqliteMetadataStore({ path: dbPath });
  try {
    const list = await store.listMedia({}, { limit: 1000 });
    return new Map(list.map((record) => [`${record.serverName}/${record.mediaId}`, record.protected === true]));
  } finally {
    await store.close();
  }
}

const sha256Of = (fixture: MmrFixtureItem): string => createHash('sha256').update(fixture.bytes).digest('hex');

async function download(server: RunningArchiveServer, fixture: MmrFixtureItem): Promise<{ status: number; errcode: string | null; bytes: Buffer }> {
  const got = await server.client(fixture.origin, fixture.mediaId);
  const errcode = got.status === 200 ? null : ((JSON.parse(got.bytes.toString('utf8')) as { errcode?: string }).errcode ?? null);
  return { status: got.status, errcode, bytes: got.bytes };
}

async function upload(server: RunningArchiveServer, bytes: Buffer): Promise<{ status: number; errcode: string | null }> {
  const res = await fetch(`${server.url}/_matrix/media/v3/upload?filename=again.png`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'image/png' },
    body: bytes,
  });
  const body = (await res.json()) as { errcode?: string };
  return { status: res.status, errcode: body.errcode ?? null };
}

/** A loopback port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('hsmedia-server import-mmr --mmr-database', () => {
  it('keeps matrix-media-repo quarantine: archived items imported quarantined, left-out ones blocked by hash, the rest unaffected; dry run counts, rerun idempotent', async () => {
    const base = join(dir.path, 'kept');
    const archive = join(base, 'archive');
    await mkdir(archive, { recursive: true });
    const fixtures = {
      // Quarantined in matrix-media-repo after the export was made: in the archive.
      lateQuarantine: item('lateQuarantine'),
      remoteQuarantined: item('remoteQuarantined', { origin: REMOTE, uploader: `@bob:${REMOTE}` }),
      plain: item('plainItem'),
      // Quarantined when the export ran: matrix-media-repo left it out.
      leftOut: item('leftOut'),
      // Another server's quarantined row: outside this export (its entity is LOCAL), so untouched.
      otherEntity: item('otherEntity', { origin: 'elsewhere.example', uploader: '@carol:elsewhere.example' }),
    };
    const archived = [fixtures.lateQuarantine, fixtures.remoteQuarantined, fixtures.plain];
    await writeMmrArchive(archive, archived, { entity: LOCAL, partSize: 1 << 20 });
    const database = await mmrDatabase([
      { item: fixtures.lateQuarantine, quarantined: true },
      { item: fixtures.remoteQuarantined, quarantined: true },
      { item: fixtures.plain, quarantined: false },
      { item: fixtures.leftOut, quarantined: true },
      { item: fixtures.otherEntity, quarantined: true },
    ]);
    try {
      const server = await writeArchiveServerConfig(base, LOCAL);
      const dbPath = join(base, 'media.db');

      const dry = await run(base, 'import-mmr', 'archive', '--dry-run', '--mmr-database', database.url, '--config', server.configPath);
      expect(dry.out).toContain('would import 3 media');
      expect(dry.out).toContain('would quarantine as in matrix-media-repo: 2 imported, 0 already here; would block the hashes of 1 quarantined media left out of the export');
      expect(dry.code).toBe(0);
      expect(await state(dbPath)).toEqual({ quarantined: new Map(), blocked: new Set() });

      const first = await run(base, 'import-mmr', 'archive', '--mmr-database', database.url, '--config', server.configPath);
      expect(first.out).toContain('imported 3 media');
      expect(first.out).toContain('quarantined as in matrix-media-repo: 2 imported, 0 already here; blocked the hashes of 1 quarantined media left out of the export');
      expect(first.out).toContain('no problems');
      expect(first.code).toBe(0);
      const after = await state(dbPath);
      expect(after.quarantined).toEqual(
        new Map([
          [`${LOCAL}/lateQuarantine`, true],
          [`${REMOTE}/remoteQuarantined`, true],
          [`${LOCAL}/plainItem`, false],
        ]),
      );
      expect(after.blocked).toEqual(new Set([sha256Of(fixtures.lateQuarantine), sha256Of(fixtures.remoteQuarantined), sha256Of(fixtures.leftOut)]));

      const again = await run(base, 'import-mmr', 'archive', '--mmr-database', database.url, '--config', server.configPath);
      expect(again.out).toContain('imported 0 media (0 B), already present 3');
      expect(again.out).toContain('quarantined as in matrix-media-repo: 0 imported, 2 already here; blocked the hashes of 1 quarantined media left out of the export');
      expect(again.code).toBe(0);
      expect(await state(dbPath)).toEqual(after);

      const running = await startArchiveServer(server);
      try {
        expect(await download(running, fixtures.lateQuarantine)).toMatchObject({ status: 404, errcode: 'M_NOT_FOUND' });
        expect(await download(running, fixtures.leftOut)).toMatchObject({ status: 404, errcode: 'M_NOT_FOUND' });
        const plain = await download(running, fixtures.plain);
        expect(plain.status).toBe(200);
        expect(plain.bytes.equals(fixtures.plain.bytes)).toBe(true);
        expect(await download(running, fixtures.remoteQuarantined)).toMatchObject({ status: 404, errcode: 'M_NOT_FOUND' });
        // The blocked-hash rule refuses uploads of quarantined bytes with 403 M_FORBIDDEN.
        expect(await upload(running, fixtures.lateQuarantine.bytes)).toEqual({ status: 403, errcode: 'M_FORBIDDEN' });
        expect(await upload(running, fixtures.leftOut.bytes)).toEqual({ status: 403, errcode: 'M_FORBIDDEN' });
        expect(await upload(running, fixtures.otherEntity.bytes)).toEqual({ status: 200, errcode: null });
        expect(await upload(running, fixtures.plain.bytes)).toEqual({ status: 200, errcode: null });
      } finally {
        await running.stop();
      }
    } finally {
      await database.drop();
    }
  }, 180_000);

  it('quarantines media an earlier run imported without --mmr-database (hash blocked, then the flag)', async () => {
    const base = join(dir.path, 'later');
    const archive = join(base, 'archive');
    await mkdir(archive, { recursive: true });
    const quarantined = item('quarantinedLater');
    const plain = item('stillPlain');
    await writeMmrArchive(archive, [quarantined, plain], { entity: LOCAL, partSize: 1 << 20 });
    const database = await mmrDatabase([
      { item: quarantined, quarantined: true },
      { item: plain, quarantined: false },
    ]);
    try {
      const server = await writeArchiveServerConfig(base, LOCAL);
      const dbPath = join(base, 'media.db');
      const without = await run(base, 'import-mmr', 'archive', '--config', server.configPath);
      expect(without.out).toContain('imported 2 media');
      expect(without.out).not.toContain('matrix-media-repo');
      expect((await state(dbPath)).quarantined.get(`${LOCAL}/quarantinedLater`)).toBe(false);

      const dry = await run(base, 'import-mmr', 'archive', '--dry-run', '--mmr-database', database.url, '--config', server.configPath);
      expect(dry.out).toContain('would quarantine as in matrix-media-repo: 0 imported, 1 already here; would block the hashes of 0 quarantined media');
      expect((await state(dbPath)).quarantined.get(`${LOCAL}/quarantinedLater`)).toBe(false);

      const withDb = await run(base, 'import-mmr', 'archive', '--mmr-database', database.url, '--config', server.configPath);
      expect(withDb.out).toContain('imported 0 media (0 B), already present 2');
      expect(withDb.out).toContain('quarantined as in matrix-media-repo: 0 imported, 1 already here');
      expect(withDb.code).toBe(0);
      expect(await state(dbPath)).toEqual({
        quarantined: new Map([
          [`${LOCAL}/quarantinedLater`, true],
          [`${LOCAL}/stillPlain`, false],
        ]),
        blocked: new Set([sha256Of(quarantined)]),
      });
    } finally {
      await database.drop();
    }
  }, 120_000);

  it('keeps matrix-media-repo pins: pinned items imported protected, out of reach of a quarantine of the same bytes; purpose none and unpinned items are not', async () => {
    const base = join(dir.path, 'pinned');
    const archive = join(base, 'archive');
    await mkdir(archive, { recursive: true });
    const pinned = item('pinnedItem');
    const fixtures = {
      pinned,
      // Quarantined and left out of the export, with the pinned item's bytes: its hash is blocked here.
      sameBytesLeftOut: item('sameBytesLeftOut', { bytes: pinned.bytes }),
      none: item('purposeNone'),
      plain: item('noAttributes'),
      // Pinned after matrix-media-repo quarantined it: it stays quarantined there, and here.
      pinnedQuarantined: item('pinnedQuarantined'),
    };
    await writeMmrArchive(archive, [fixtures.pinned, fixtures.none, fixtures.plain, fixtures.pinnedQuarantined], { entity: LOCAL, partSize: 1 << 20 });
    const database = await mmrDatabase([
      { item: fixtures.pinned, quarantined: false, purpose: 'pinned' },
      { item: fixtures.sameBytesLeftOut, quarantined: true },
      { item: fixtures.none, quarantined: false, purpose: 'none' },
      { item: fixtures.plain, quarantined: false },
      { item: fixtures.pinnedQuarantined, quarantined: true, purpose: 'pinned' },
    ]);
    try {
      const server = await writeArchiveServerConfig(base, LOCAL);
      const dbPath = join(base, 'media.db');

      const dry = await run(base, 'import-mmr', 'archive', '--dry-run', '--mmr-database', database.url, '--config', server.configPath);
      expect(dry.out).toContain('would protect as pinned in matrix-media-repo: 2 imported, 0 already here');
      expect(dry.code).toBe(0);
      expect(await protectedFlags(dbPath)).toEqual(new Map());

      const first = await run(base, 'import-mmr', 'archive', '--mmr-database', database.url, '--config', server.configPath);
      expect(first.out).toContain('imported 4 media');
      expect(first.out).toContain('protected as pinned in matrix-media-repo: 2 imported, 0 already here');
      expect(first.out).toContain('quarantined as in matrix-media-repo: 1 imported, 0 already here; blocked the hashes of 1 quarantined media left out of the export');
      expect(first.code).toBe(0);
      expect(await protectedFlags(dbPath)).toEqual(
        new Map([
          [`${LOCAL}/pinnedItem`, true],
          [`${LOCAL}/purposeNone`, false],
          [`${LOCAL}/noAttributes`, false],
          [`${LOCAL}/pinnedQuarantined`, true],
        ]),
      );
      const after = await state(dbPath);
      expect(after.quarantined.get(`${LOCAL}/pinnedItem`)).toBe(false);
      expect(after.quarantined.get(`${LOCAL}/pinnedQuarantined`)).toBe(true);
      expect(after.blocked.has(sha256Of(fixtures.pinned))).toBe(true);

      const again = await run(base, 'import-mmr', 'archive', '--mmr-database', database.url, '--config', server.configPath);
      expect(again.out).toContain('imported 0 media (0 B), already present 4');
      expect(again.out).toContain('protected as pinned in matrix-media-repo: 0 imported, 2 already here');
      expect(again.code).toBe(0);

      const running = await startArchiveServer(server);
      try {
        // The hash is blocked, yet the pinned item is served: protected media is never quarantined.
        const served = await download(running, fixtures.pinned);
        expect(served.status).toBe(200);
        expect(served.bytes.equals(fixtures.pinned.bytes)).toBe(true);
        expect(await download(running, fixtures.pinnedQuarantined)).toMatchObject({ status: 404, errcode: 'M_NOT_FOUND' });
        expect((await download(running, fixtures.none)).status).toBe(200);
      } finally {
        await running.stop();
      }
    } finally {
      await database.drop();
    }
  }, 180_000);

  it('protects pinned media an earlier run imported without --mmr-database; a database without media_attributes pins nothing', async () => {
    const base = join(dir.path, 'pinned-later');
    const archive = join(base, 'archive');
    await mkdir(archive, { recursive: true });
    const pinned = item('pinnedLater');
    const plain = item('notPinned');
    await writeMmrArchive(archive, [pinned, plain], { entity: LOCAL, partSize: 1 << 20 });
    const older = await mmrDatabase([{ item: pinned, quarantined: false }, { item: plain, quarantined: false }], true, false);
    const database = await mmrDatabase([
      { item: pinned, quarantined: false, purpose: 'pinned' },
      { item: plain, quarantined: false },
    ]);
    try {
      const server = await writeArchiveServerConfig(base, LOCAL);
      const dbPath = join(base, 'media.db');
      const fromOlder = await run(base, 'import-mmr', 'archive', '--mmr-database', older.url, '--config', server.configPath);
      expect(fromOlder.out).toContain('imported 2 media');
      expect(fromOlder.out).toContain('protected as pinned in matrix-media-repo: 0 imported, 0 already here');
      expect(fromOlder.code).toBe(0);
      const unprotected = new Map([
        [`${LOCAL}/pinnedLater`, false],
        [`${LOCAL}/notPinned`, false],
      ]);
      expect(await protectedFlags(dbPath)).toEqual(unprotected);

      const dry = await run(base, 'import-mmr', 'archive', '--dry-run', '--mmr-database', database.url, '--config', server.configPath);
      expect(dry.out).toContain('would protect as pinned in matrix-media-repo: 0 imported, 1 already here');
      expect(await protectedFlags(dbPath)).toEqual(unprotected);

      const withPins = await run(base, 'import-mmr', 'archive', '--mmr-database', database.url, '--config', server.configPath);
      expect(withPins.out).toContain('imported 0 media (0 B), already present 2');
      expect(withPins.out).toContain('protected as pinned in matrix-media-repo: 0 imported, 1 already here');
      expect(withPins.code).toBe(0);
      expect(await protectedFlags(dbPath)).toEqual(
        new Map([
          [`${LOCAL}/pinnedLater`, true],
          [`${LOCAL}/notPinned`, false],
        ]),
      );
    } finally {
      await older.drop();
      await database.drop();
    }
  }, 120_000);

  it('imports nothing when matrix-media-repo\'s database is unreachable or is not its database, and says why', async () => {
    const base = join(dir.path, 'unreachable');
    const archive = join(base, 'archive');
    await mkdir(archive, { recursive: true });
    await writeMmrArchive(archive, [item('neverImported'), item('norThis')], { entity: LOCAL, partSize: 1 << 20 });
    const server = await writeArchiveServerConfig(base, LOCAL);
    const dbPath = join(base, 'media.db');

    const port = await closedPort();
    const unreachable = await run(base, 'import-mmr', 'archive', '--mmr-database', `postgres://mmr:secret@127.0.0.1:${port}/mmr`, '--config', server.configPath);
    expect(unreachable.code).toBe(1);
    expect(unreachable.err).toContain(`cannot connect to matrix-media-repo's database at postgres://mmr@127.0.0.1:${port}/mmr`);
    expect(unreachable.err).toContain('nothing was imported');
    expect(unreachable.err).not.toContain('secret');
    expect(await state(dbPath)).toEqual({ quarantined: new Map(), blocked: new Set() });
    expect(await storedFiles(server.mediaPath)).toEqual({ blobs: 0, staging: 0 });

    const empty = await mmrDatabase([], false);
    try {
      const wrong = await run(base, 'import-mmr', 'archive', '--mmr-database', empty.url, '--config', server.configPath);
      expect(wrong.code).toBe(1);
      expect(wrong.err).toContain('is not a matrix-media-repo database: its media table does not exist; nothing was imported');
      expect(await state(dbPath)).toEqual({ quarantined: new Map(), blocked: new Set() });
      expect(await storedFiles(server.mediaPath)).toEqual({ blobs: 0, staging: 0 });
    } finally {
      await empty.drop();
    }

    const notUrl = await run(base, 'import-mmr', 'archive', '--mmr-database', 'mmr.db', '--config', server.configPath);
    expect(notUrl.code).toBe(2);
    expect(notUrl.err).toContain("--mmr-database needs matrix-media-repo's PostgreSQL URL");
    const elsewhere = await run(base, 'import-archive', 'archive', '--mmr-database', PG_URL, '--config', server.configPath);
    expect(elsewhere.err).toContain('--mmr-database is an option of import-mmr only');
  }, 120_000);
});
