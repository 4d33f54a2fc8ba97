import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { mkdir, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { MediaRecord, StoredThumbnail } from '@hsmedia/media-core';
import { createPostgresMetadataStore } from '@hsmedia/store-postgres';
import { createSqliteMetadataStore } from '@hsmedia/store-sqlite';
import { openPostgresTestEnv, PG_URL, type PostgresTestEnv } from '@hsmedia/test-fixtures/postgres';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand, type CliIo } from '../src/cli-main.js';
import { startArchiveServer, storedFiles, TOKEN, writeArchiveServerConfig, type ArchiveServerConfig } from './archive-server.js';
import { tarOf, writeMmrArchive } from './mmr-archive-fixture.js';
import { tempDir } from './helpers.js';

// Export from a server on SQLite that real uploads filled (thumbnails,
// quarantined, protected, created-but-never-uploaded media), import into a
// fresh server on PostgreSQL, and download everything from both processes:
// byte for byte, with its metadata, through the client and federation APIs.

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const SOURCE = 'source.test';
const env: PostgresTestEnv = await openPostgresTestEnv('h24arc export round trip');

let dir: { path: string; cleanup(): Promise<void> };

beforeAll(async () => {
  await promisify(execFile)('npx', ['tsc', '-b', 'apps/media-server'], { cwd: repoRoot });
  dir = await tempDir('h24arc-export-');
}, 120_000);
const SCHEMA = `h24arc_export_${randomBytes(4).toString('hex')}`;
afterAll(async () => {
  await dir?.cleanup();
  if (env.unavailable === undefined) await env.admin.raw('drop schema if exists ?? cascade', [SCHEMA]);
  await env.dispose();
});

async function run(cwd: string, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIo = { stdout: { write: (text: string) => (out += text) }, stderr: { write: (text: string) => (err += text) }, cwd };
  const code = await runCommand(args, io);
  return { code, out, err };
}

interface Uploaded {
  readonly mediaId: string;
  readonly bytes: Buffer;
  readonly contentType: string;
  readonly filename: string | null;
  readonly token: string;
}

async function uploadTo(url: string, token: string, bytes: Buffer, contentType: string, filename: string | null): Promise<Uploaded> {
  const query = filename === null ? '' : `?filename=${encodeURIComponent(filename)}`;
  const res = await fetch(`${url}/_matrix/media/v3/upload${query}`, { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': contentType }, body: bytes });
  if (res.status !== 200) throw new Error(`upload: ${res.status} ${await res.text()}`);
  const { content_uri: uri } = (await res.json()) as { content_uri: string };
  return { mediaId: uri.slice(`mxc://${SOURCE}/`.length), bytes, contentType, filename, token };
}

async function thumbnailOf(url: string, mediaId: string): Promise<{ status: number; bytes: Buffer; type: string | null }> {
  const res = await fetch(`${url}/_matrix/client/v1/media/thumbnail/${SOURCE}/${mediaId}?width=32&height=32&method=crop`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()), type: res.headers.get('content-type') };
}

const BOB = 'bob_token';

describe.skipIf(env.unavailable !== undefined)('hsmedia-server export and import-archive', () => {
  let source: ArchiveServerConfig;
  let uploads: Uploaded[];
  let quarantinedId: string;
  let protectedId: string;
  let pendingId: string;
  let sourceThumbnail: { bytes: Buffer; type: string | null };
  let sourceRecords: Map<string, MediaRecord>;
  let sourceThumbnails: StoredThumbnail[];

  beforeAll(async () => {
    // A second user, so --user selects.
    source = await writeArchiveServerConfig(join(dir.path, 'source'), SOURCE, { tokens: { [BOB]: `@bob:${SOURCE}` }, admins: [`@admin:${SOURCE}`] });
    const running = await startArchiveServer(source);
    try {
      const png = await sharp({ create: { width: 64, height: 48, channels: 4, background: { r: 200, g: 10, b: 40, alpha: 0.5 } } }).png().toBuffer();
      uploads = [
        await uploadTo(running.url, TOKEN, png, 'image/png', 'picture.png'),
        await uploadTo(running.url, TOKEN, Buffer.from('plain text, ünïcode\n'), 'text/plain; charset=utf-8', 'notes 📝.txt'),
        await uploadTo(running.url, TOKEN, Buffer.alloc(0), 'application/octet-stream', null),
        await uploadTo(running.url, TOKEN, randomBytes(3 * 1024 * 1024), 'application/octet-stream', 'big.bin'),
        await uploadTo(running.url, BOB, randomBytes(1000), 'application/pdf', 'bobs.pdf'),
        await uploadTo(running.url, TOKEN, randomBytes(400), 'image/gif', 'bad.gif'),
        await uploadTo(running.url, TOKEN, randomBytes(500), 'image/jpeg', 'kept.jpg'),
      ];
      quarantinedId = uploads[5]!.mediaId;
      protectedId = uploads[6]!.mediaId;
      const created = await fetch(`${running.url}/_matrix/media/v1/create`, { method: 'POST', headers: { Authorization: `Bearer ${TOKEN}` } });
      pendingId = ((await created.json()) as { content_uri: string }).content_uri.slice(`mxc://${SOURCE}/`.length);
      const thumbnail = await thumbnailOf(running.url, uploads[0]!.mediaId);
      expect(thumbnail.status).toBe(200);
      sourceThumbnail = thumbnail;
    } finally {
      await running.stop();
    }
    const store = await createSqliteMetadataStore({ path: join(source.dir, 'media.db') });
    try {
      await store.setMediaQuarantined(SOURCE, quarantinedId, true);
      await store.setMediaProtected(SOURCE, protectedId, true);
      await store.setMediaProfile(SOURCE, uploads[1]!.mediaId, true);
      sourceRecords = new Map((await store.listMedia({}, { limit: 100 })).map((record) => [record.mediaId, record]));
      sourceThumbnails = await store.listThumbnails(SOURCE, uploads[0]!.mediaId);
    } finally {
      await store.close();
    }
    expect(sourceThumbnails.length).toBeGreaterThan(0);
  }, 180_000);

  it('exports the whole server and imports it into a fresh PostgreSQL server: every item downloads byte for byte with its metadata', async () => {
    const out = join(dir.path, 'whole');
    const exported = await run(source.dir, 'export', '--server', '--include-quarantined', '--out', out, '--part-size', '1M', '--config', source.configPath);
    expect(exported.err).not.toContain('left out');
    expect(exported.code).toBe(0);
    expect(exported.out).toMatch(new RegExp(`^exported ${uploads.length + 1} media \\(\\d+ bytes\\) and ${sourceThumbnails.length} thumbnails in \\d+ part\\(s\\)`));
    const parts = (await readdir(out)).sort();
    expect(parts.length).toBeGreaterThanOrEqual(2);
    expect(parts.every((name) => /^hsmedia-export-part-\d{4}\.tar\.gz$/.test(name))).toBe(true);
    // An export into a directory that holds one is refused and changes nothing.
    expect((await run(source.dir, 'export', '--server', '--out', out, '--config', source.configPath)).code).toBe(1);
    expect((await readdir(out)).sort()).toEqual(parts);

    const schema = SCHEMA;
    await env.admin.raw('create schema ??', [schema]);
    const target = await writeArchiveServerConfig(join(dir.path, 'target'), SOURCE, { postgres: { url: PG_URL, schema } });
    const dry = await run(target.dir, 'import-archive', out, '--dry-run', '--config', target.configPath);
    expect(dry.out).toContain(`would import ${uploads.length + 1} media`);
    expect(dry.code).toBe(0);
    const imported = await run(target.dir, 'import-archive', out, '--config', target.configPath);
    expect(imported.out).toContain(`imported ${uploads.length + 1} media`);
    expect(imported.out).toContain(`and ${sourceThumbnails.length} thumbnails`);
    expect(imported.code).toBe(0);
    const again = await run(target.dir, 'import-archive', out, '--config', target.configPath);
    expect(again.out).toContain(`already present ${uploads.length + 1}`);

    const store = await createPostgresMetadataStore({ url: PG_URL, searchPath: schema });
    try {
      for (const [mediaId, before] of sourceRecords) {
        const after = await store.getMedia(SOURCE, mediaId);
        expect(after).toMatchObject({
          mediaId,
          contentType: before.contentType,
          uploadName: before.uploadName,
          userId: before.userId,
          createdAt: before.createdAt,
          size: before.size,
          sha256: before.sha256,
          quarantined: before.quarantined,
        });
        expect(after?.protected === true).toBe(before.protected === true);
        expect([mediaId, after?.profile === true]).toEqual([mediaId, before.profile === true]);
      }
      expect([...sourceRecords.values()].filter((record) => record.profile === true).map((record) => record.mediaId)).toEqual([uploads[1]!.mediaId]);
      const thumbnails = await store.listThumbnails(SOURCE, uploads[0]!.mediaId);
      expect(thumbnails.map((t) => [t.width, t.height, t.method, t.contentType, t.size]).sort()).toEqual(sourceThumbnails.map((t) => [t.width, t.height, t.method, t.contentType, t.size]).sort());
    } finally {
      await store.close();
    }

    const running = await startArchiveServer(target);
    try {
      for (const upload of uploads) {
        const got = await running.client(SOURCE, upload.mediaId);
        if (upload.mediaId === quarantinedId) {
          expect(got.status).toBe(404);
          continue;
        }
        expect([upload.filename, got.status]).toEqual([upload.filename, 200]);
        expect(got.bytes.equals(upload.bytes)).toBe(true);
        expect(got.contentType).toBe(upload.contentType);
        expect(got.filename).toBe(upload.filename);
        const viaFederation = await running.federation(upload.mediaId);
        expect(viaFederation.bytes.equals(upload.bytes)).toBe(true);
        expect(viaFederation.contentType).toBe(upload.contentType);
      }
      const thumbnail = await thumbnailOf(running.url, uploads[0]!.mediaId);
      expect(thumbnail.status).toBe(200);
      expect(thumbnail.type).toBe(sourceThumbnail.type);
      expect(thumbnail.bytes.equals(sourceThumbnail.bytes)).toBe(true);
      const pending = await fetch(`${running.url}/_matrix/client/v1/media/download/${SOURCE}/${pendingId}?timeout_ms=0`, { headers: { Authorization: `Bearer ${TOKEN}` } });
      expect([pending.status, ((await pending.json()) as { errcode: string }).errcode]).toEqual([504, 'M_NOT_YET_UPLOADED']);
    } finally {
      await running.stop();
    }
  }, 180_000);

  it("exports one user's media only, leaving quarantined media out unless asked", async () => {
    const out = join(dir.path, 'bob');
    const exported = await run(source.dir, 'export', '--user', `@bob:${SOURCE}`, '--out', out, '--config', source.configPath);
    expect(exported.out).toMatch(/^exported 1 media \(1000 bytes\) and 0 thumbnails in 1 part\(s\)/);
    const admin = await run(source.dir, 'export', '--user', `@admin:${SOURCE}`, '--out', join(dir.path, 'admin'), '--config', source.configPath);
    expect(admin.out).toContain('left out 1 quarantined, 0 without their bytes');

    const target = await writeArchiveServerConfig(join(dir.path, 'bob-target'), SOURCE);
    const imported = await run(target.dir, 'import-archive', out, '--config', target.configPath);
    expect(imported.out).toContain('imported 1 media (1000 B)');
    expect(imported.code).toBe(0);
  }, 120_000);

  it('reports a missing or truncated part of an export and completes on the rerun with the whole archive', async () => {
    const out = join(dir.path, 'damaged');
    expect((await run(source.dir, 'export', '--server', '--out', out, '--part-size', '1', '--config', source.configPath)).code).toBe(0);
    const parts = (await readdir(out)).sort();
    expect(parts.length).toBeGreaterThanOrEqual(4);
    const broken = join(dir.path, 'damaged-copy');
    await promisify(execFile)('cp', ['-r', out, broken]);
    // Part 2 lost, part 3 cut short.
    await rm(join(broken, parts[1]!));
    const third = join(broken, parts[2]!);
    await truncate(third, Math.floor((await stat(third)).size / 2));

    const target = await writeArchiveServerConfig(join(dir.path, 'damaged-target'), SOURCE);
    const first = await run(target.dir, 'import-archive', broken, '--config', target.configPath);
    expect(first.code).toBe(1);
    expect(first.out).toContain(`missing-part`);
    expect(first.out).toContain(`part 2 (${parts[1]}`);
    expect(first.out).toContain(`damaged-part (${parts[2]}): truncated`);
    // Nothing half-imported: one blob per stored media row and thumbnail row, no staging leftovers.
    const firstCount = Number(/imported (\d+) media/.exec(first.out)![1]);
    const store = await createSqliteMetadataStore({ path: join(target.dir, 'media.db') });
    let expectedBlobs = 0;
    try {
      const rows = await store.listMedia({}, { limit: 100 });
      expect(rows.length).toBe(firstCount);
      for (const row of rows) expectedBlobs += (row.blobId === null ? 0 : 1) + (await store.listThumbnails(row.serverName, row.mediaId)).length;
    } finally {
      await store.close();
    }
    expect(await storedFiles(target.mediaPath)).toEqual({ blobs: expectedBlobs, staging: 0 });

    const rerun = await run(target.dir, 'import-archive', out, '--config', target.configPath);
    expect(rerun.out).toContain(`already present ${firstCount}`);
    expect(rerun.out).toContain('no problems');
    expect(rerun.code).toBe(0);
  }, 120_000);

  it('reports every bad entry of an hsmedia archive, keeps nothing of them, and tells the two formats apart', async () => {
    const base = join(dir.path, 'handmade');
    const archive = join(base, 'archive');
    await mkdir(archive, { recursive: true });
    const sha = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');
    const good = Buffer.from('hello');
    const itemOf = (sequence: number, mediaId: string, bytes: Buffer, edits: Record<string, unknown> = {}): Record<string, unknown> => ({
      server_name: SOURCE,
      media_id: mediaId,
      content_type: 'text/plain',
      upload_name: `${mediaId}.txt`,
      user_id: `@admin:${SOURCE}`,
      created_ts: 1000,
      uploaded_ts: 1000,
      last_access_ts: null,
      size: bytes.length,
      sha256: sha(bytes),
      quarantined: false,
      protected: false,
      authenticated: true,
      profile: false,
      data: `media/${String(sequence).padStart(8, '0')}.bin`,
      thumbnails: [],
      ...edits,
    });
    const file = (name: string, body: Buffer | string) => ({ header: { name, size: Buffer.byteLength(body), mode: 0o644 }, body: Buffer.from(body) });
    const json = (name: string, value: unknown) => file(name, JSON.stringify(value));
    const entries = [
      json('hsmedia-archive.json', { format: 'hsmedia-media-archive', version: 1, export_id: 'e1', part: 1 }),
      json('media/00000001.json', itemOf(1, 'handGood', good)),
      file('media/00000001.bin', good),
      json('media/00000002.json', itemOf(2, 'weirdType', good, { content_type: 'no type at all' })),
      file('media/00000002.bin', good),
      json('media/00000003.json', itemOf(3, 'shortFile', Buffer.from('0123456789'))),
      file('media/00000003.bin', '012345678'),
      json('media/00000004.json', itemOf(4, 'noBytes', good)),
      json('media/00000005.json', itemOf(5, 'hashLies', good, { sha256: '0'.repeat(64) })),
      file('media/00000005.bin', good),
      json('media/00000006.json', itemOf(6, 'bad/id', good)),
      file('media/00000006.bin', good),
      { header: { name: 'media/00000009.bin', type: 'symlink' as const, linkname: '/etc/passwd', size: 0 } },
      { header: { name: 'media/00000010.bin', type: 'link' as const, linkname: 'media/00000001.bin', size: 0 } },
      file('../outside.bin', 'evil'),
      file('stray.txt', 'stray'),
      json('manifest.json', {
        format: 'hsmedia-media-archive',
        version: 1,
        export_id: 'e1',
        created_ts: 1,
        server_name: SOURCE,
        scope: { kind: 'server', include_remote: false },
        parts: [
          { part: 1, file: 'hsmedia-export-part-0001.tar.gz', items: 6, bytes: 100 },
          { part: 2, file: 'hsmedia-export-part-0002.tar.gz', items: 3, bytes: 100 },
        ],
        items: 9,
        bytes: 200,
        thumbnails: 0,
        skipped: { quarantined: 0, missing_bytes: 0 },
      }),
    ];
    await writeFile(join(archive, 'hsmedia-export-part-0001.tar.gz'), gzipSync(await tarOf(entries)));
    const target = await writeArchiveServerConfig(join(base, 'target'), SOURCE);

    const result = await run(base, 'import-archive', 'archive', '--report', 'problems.jsonl', '--config', target.configPath);
    expect(result.code).toBe(1);
    expect(result.out).toContain('imported 1 media');
    const problems = (await readFile(join(base, 'problems.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { kind: string; mxc: string | null; entry: string | null; part: string | null });
    expect(problems.map((problem) => `${problem.kind} ${problem.mxc ?? problem.entry ?? problem.part}`).sort()).toEqual(
      [
        'hash-mismatch mxc://source.test/hashLies',
        'invalid-entry media/00000006.json',
        'missing-file mxc://source.test/noBytes',
        'missing-part hsmedia-export-part-0002.tar.gz',
        'size-mismatch mxc://source.test/shortFile',
        'unknown-content-type media/00000002.json',
        'unlisted-file stray.txt',
        'unsafe-entry ../outside.bin',
        'unsafe-entry media/00000009.bin',
        'unsafe-entry media/00000010.bin',
      ].sort(),
    );
    const store = await createSqliteMetadataStore({ path: join(target.dir, 'media.db') });
    try {
      expect((await store.listMedia({}, { limit: 10 })).map((record) => record.mediaId)).toEqual(['handGood']);
    } finally {
      await store.close();
    }
    expect(await storedFiles(target.mediaPath)).toEqual({ blobs: 1, staging: 0 });

    // The wrong importer for each format says so and imports nothing.
    const mmr = join(base, 'mmr');
    await mkdir(mmr);
    await writeMmrArchive(mmr, [{ origin: SOURCE, mediaId: 'fromMmr', bytes: good, contentType: 'text/plain', name: 'm.txt', uploader: '', createdTs: 1 }], { entity: SOURCE, partSize: 1 << 20 });
    const wrongWay = await run(base, 'import-archive', 'mmr', '--config', target.configPath);
    expect(wrongWay.code).toBe(1);
    expect(wrongWay.out).toContain('not a part of an hsmedia media archive');
    const otherWay = await run(base, 'import-mmr', 'archive', '--config', target.configPath);
    expect(otherWay.code).toBe(1);
    expect(otherWay.err).toContain('this is an hsmedia archive (written by export): import it with import-archive');
    expect(await storedFiles(target.mediaPath)).toEqual({ blobs: 1, staging: 0 });
  }, 120_000);

  it("streams a user's media as an archive from the admin API, for admins only, and it imports elsewhere", async () => {
    const running = await startArchiveServer(source);
    const path = (userId: string): string => `${running.url}/_hsmedia/admin/v1/users/${encodeURIComponent(userId)}/media/export`;
    const as = (token: string) => ({ headers: { Authorization: `Bearer ${token}` } });
    const errcode = async (res: Response): Promise<[number, string]> => [res.status, ((await res.json()) as { errcode: string }).errcode];
    let archive: Buffer;
    try {
      expect(await errcode(await fetch(path(`@bob:${SOURCE}`)))).toEqual([401, 'M_MISSING_TOKEN']);
      expect(await errcode(await fetch(path(`@bob:${SOURCE}`), as(BOB)))).toEqual([403, 'M_FORBIDDEN']);
      expect(await errcode(await fetch(path('nobody'), as(TOKEN)))).toEqual([400, 'M_INVALID_PARAM']);
      expect(await errcode(await fetch(path('@bob:elsewhere.test'), as(TOKEN)))).toEqual([400, 'M_INVALID_PARAM']);
      expect(await errcode(await fetch(`${path(`@bob:${SOURCE}`)}?include_quarantined=maybe`, as(TOKEN)))).toEqual([400, 'M_INVALID_PARAM']);
      const res = await fetch(path(`@bob:${SOURCE}`), as(TOKEN));
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/gzip');
      archive = Buffer.from(await res.arrayBuffer());
    } finally {
      await running.stop();
    }
    const base = join(dir.path, 'via-api');
    await mkdir(base, { recursive: true });
    await writeFile(join(base, 'bob.tar.gz'), archive);
    const target = await writeArchiveServerConfig(join(base, 'target'), SOURCE);
    const imported = await run(base, 'import-archive', 'bob.tar.gz', '--config', target.configPath);
    expect(imported.out).toContain('imported 1 media (1000 B)');
    expect(imported.out).toContain('no problems');
    expect(imported.code).toBe(0);
    const bob = uploads[4]!;
    const check = await startArchiveServer(target);
    try {
      const got = await check.client(SOURCE, bob.mediaId);
      expect(got.bytes.equals(bob.bytes)).toBe(true);
      expect([got.contentType, got.filename]).toEqual([bob.contentType, bob.filename]);
    } finally {
      await check.stop();
    }
  }, 120_000);
});
