import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createSqliteMetadataStore } from '@hsmedia/store-sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand, type CliIo } from '../src/cli-main.js';
import { startArchiveServer, storedFiles, writeArchiveServerConfig } from './archive-server.js';
import { CliProcess } from './cli-process.js';
import { archivedNameOf, writeMmrArchive, type MmrFixtureItem } from './mmr-archive-fixture.js';
import { tempDir } from './helpers.js';

// matrix-media-repo archives written by the fixture writer (its v2 format),
// imported by the CLI into SQLite + files, then every item downloaded from
// the real server process through the client and federation APIs.

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const LOCAL = 'mmr.test';

let dir: { path: string; cleanup(): Promise<void> };

beforeAll(async () => {
  await promisify(execFile)('npx', ['tsc', '-b', 'apps/media-server'], { cwd: repoRoot });
  dir = await tempDir('h24arc-mmr-');
}, 120_000);
afterAll(async () => {
  await dir?.cleanup();
});

function item(mediaId: string, bytes: Buffer, contentType: string, name: string, extra: Partial<MmrFixtureItem> = {}): MmrFixtureItem {
  return { origin: LOCAL, mediaId, bytes, contentType, name, uploader: `@alice:${LOCAL}`, createdTs: 1_700_000_000_000 + bytes.length, extension: '.bin', ...extra };
}

const ITEMS: MmrFixtureItem[] = [
  item('pngImage', randomBytes(3000), 'image/png', 'cat.png', { extension: '.png' }),
  item('textCharset', Buffer.from('héllo wörld\n'), 'text/plain; charset=utf-8', 'résumé 📄.txt', { extension: '.txt' }),
  item('emptyFile', Buffer.alloc(0), 'application/octet-stream', ''),
  item('bigBinary', randomBytes(5 * 1024 * 1024), 'application/octet-stream', 'big.bin'),
  // Remote media cached by matrix-media-repo: kept under its origin.
  item('remoteMedia', randomBytes(700), 'image/jpeg', 'remote.jpg', { origin: 'remote.example', uploader: '@bob:remote.example', extension: '.jpg' }),
  // An uploader of another server than the media's origin is dropped (as matrix-media-repo's importer does).
  item('strangerUpload', randomBytes(50), 'image/gif', 'x.gif', { uploader: '@eve:other.example', extension: '.gif' }),
];

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

async function records(dbPath: string): Promise<Map<string, { userId: string | null; contentType: string | null; uploadName: string | null; createdAt: number; quarantined: boolean }>> {
  const store = await createSqliteMetadataStore({ path: dbPath });
  try {
    const list = await store.listMedia({}, { limit: 1000 });
    return new Map(list.map((record) => [`${record.serverName}/${record.mediaId}`, record]));
  } finally {
    await store.close();
  }
}

describe('hsmedia-server import-mmr', () => {
  it('imports a multi-part export (dry run first, then idempotently) and every item downloads byte for byte through the client and federation APIs', async () => {
    const base = join(dir.path, 'good');
    const archive = join(base, 'archive');
    await mkdir(archive, { recursive: true });
    const parts = await writeMmrArchive(archive, ITEMS, { entity: LOCAL, partSize: 1024 * 1024 });
    expect(parts.length).toBeGreaterThanOrEqual(3);
    const server = await writeArchiveServerConfig(base, LOCAL);

    const dry = await run(base, 'import-mmr', 'archive', '--dry-run', '--config', server.configPath);
    expect(dry.err.split('\n').filter((line) => line.includes(': done')).length).toBe(parts.length);
    expect(dry.out).toContain(`would import ${ITEMS.length} media`);
    expect(dry.code).toBe(0);
    expect((await records(join(base, 'media.db'))).size).toBe(0);

    // Parts in any order and named one by one: the manifest is found first.
    const first = await run(base, 'import-mmr', ...[...parts].reverse().map((name) => join('archive', name)), '--config', server.configPath);
    expect(first.out).toContain(`imported ${ITEMS.length} media`);
    expect(first.out).toContain('no problems');
    expect(first.code).toBe(0);
    const again = await run(base, 'import-mmr', 'archive', '--config', server.configPath);
    expect(again.out).toContain(`imported 0 media (0 B), already present ${ITEMS.length}`);
    expect(again.code).toBe(0);

    const rows = await records(join(base, 'media.db'));
    expect(rows.get(`${LOCAL}/pngImage`)).toMatchObject({ userId: `@alice:${LOCAL}`, contentType: 'image/png', uploadName: 'cat.png', createdAt: ITEMS[0]!.createdTs, quarantined: false });
    expect(rows.get('remote.example/remoteMedia')).toMatchObject({ contentType: 'image/jpeg', uploadName: 'remote.jpg' });
    expect(rows.get(`${LOCAL}/strangerUpload`)?.userId).toBeNull();
    expect(rows.get(`${LOCAL}/emptyFile`)?.uploadName).toBeNull();

    // The imported server moves on with its remote cache: export --server --include-remote, import-archive elsewhere.
    const moved = await run(base, 'export', '--server', '--include-remote', '--out', 'moved', '--config', server.configPath);
    expect(moved.out).toMatch(new RegExp(`^exported ${ITEMS.length} media`));
    const localOnly = await run(base, 'export', '--server', '--out', 'local-only', '--config', server.configPath);
    expect(localOnly.out).toMatch(new RegExp(`^exported ${ITEMS.length - 1} media`));
    const next = await writeArchiveServerConfig(join(base, 'next'), LOCAL);
    const into = await run(base, 'import-archive', 'moved', '--config', next.configPath);
    expect(into.out).toContain(`imported ${ITEMS.length} media`);
    expect((await records(join(base, 'next', 'media.db'))).get('remote.example/remoteMedia')).toMatchObject({ contentType: 'image/jpeg', userId: null });

    const running = await startArchiveServer(server);
    try {
      for (const fixture of ITEMS) {
        const got = await running.client(fixture.origin, fixture.mediaId);
        expect([fixture.mediaId, got.status]).toEqual([fixture.mediaId, 200]);
        expect(got.bytes.equals(fixture.bytes)).toBe(true);
        expect(got.contentType).toBe(fixture.contentType);
        expect(got.filename).toBe(fixture.name === '' ? null : fixture.name);
        if (fixture.origin !== LOCAL) continue;
        const viaFederation = await running.federation(fixture.mediaId);
        expect([fixture.mediaId, viaFederation.status]).toEqual([fixture.mediaId, 200]);
        expect(viaFederation.bytes.equals(fixture.bytes)).toBe(true);
        expect(viaFederation.contentType).toBe(fixture.contentType);
      }
    } finally {
      await running.stop();
    }
  }, 180_000);

  it('reports every bad entry, imports nothing of them, and a rerun on a repaired archive completes', async () => {
    const base = join(dir.path, 'bad');
    const archive = join(base, 'archive');
    await mkdir(archive, { recursive: true });
    const good = [item('goodOne', randomBytes(100), 'image/png', 'a.png'), item('goodTwo', randomBytes(200), 'text/plain', 'b.txt')];
    const bad = {
      sizeLies: item('sizeLies', randomBytes(300), 'image/png', 'c.png'),
      hashLies: item('hashLies', randomBytes(310), 'image/png', 'd.png'),
      weirdType: item('weirdType', randomBytes(320), 'image/png', 'e.png'),
      badId: item('badId', randomBytes(330), 'image/png', 'f.png'),
      unlisted: item('unlisted', randomBytes(340), 'image/png', 'g.png'),
    };
    const server = await writeArchiveServerConfig(base, LOCAL);
    const parts = await writeMmrArchive(archive, [...good, bad.sizeLies, bad.hashLies, bad.weirdType, bad.badId], {
      entity: LOCAL,
      partSize: 1 << 20,
      unlisted: [bad.unlisted],
      extraEntries: [
        { header: { name: '../escape.png', size: 4, mode: 0o644 }, body: Buffer.from('evil') },
        { header: { name: '/etc/absolute.png', size: 4, mode: 0o644 }, body: Buffer.from('evil') },
        { header: { name: 'link.png', type: 'symlink', linkname: '/etc/passwd', size: 0 } },
        { header: { name: 'hard.png', type: 'link', linkname: archivedNameOf(good[0]!), size: 0 } },
      ],
      editRecord: (mxc, record) => {
        if (mxc.endsWith('/sizeLies')) return { ...record, size_bytes: 301 };
        if (mxc.endsWith('/hashLies')) return { ...record, sha256: '0'.repeat(64) };
        if (mxc.endsWith('/weirdType')) return { ...record, content_type: 'not a media type' };
        if (mxc.endsWith('/badId')) return { ...record, media_id: 'bad/id' };
        return record;
      },
      extraRecords: {
        [`mxc://${LOCAL}/fileless`]: { name: 'h.png', file_name: `${LOCAL}__fileless.png`, size_bytes: 5, content_type: 'image/png', s3_url: '', sha256: '', origin: LOCAL, media_id: 'fileless', created_ts: 1, uploader: '' },
        [`mxc://${LOCAL}/escaping`]: { name: 'i.png', file_name: '../../etc/passwd', size_bytes: 5, content_type: 'image/png', s3_url: '', sha256: '', origin: LOCAL, media_id: 'escaping', created_ts: 1, uploader: '' },
      },
    });

    const result = await run(base, 'import-mmr', 'archive', '--report', 'problems.jsonl', '--config', server.configPath);
    expect(result.code).toBe(1);
    expect(result.out).toContain('imported 2 media');
    const problems = (await readFile(join(base, 'problems.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { kind: string; mxc: string | null; entry: string | null });
    const summary = problems.map((problem) => `${problem.kind} ${problem.mxc ?? problem.entry}`).sort();
    expect(summary).toEqual(
      [
        `hash-mismatch mxc://${LOCAL}/hashLies`,
        `invalid-entry mxc://${LOCAL}/badId`,
        `invalid-entry mxc://${LOCAL}/escaping`,
        `missing-file mxc://${LOCAL}/fileless`,
        `size-mismatch mxc://${LOCAL}/sizeLies`,
        `unknown-content-type mxc://${LOCAL}/weirdType`,
        `unlisted-file ${archivedNameOf(bad.unlisted)}`,
        'unsafe-entry ../escape.png',
        'unsafe-entry /etc/absolute.png',
        'unsafe-entry hard.png',
        'unsafe-entry link.png',
      ].sort(),
    );
    // Nothing half-imported: two rows, two blobs, no staging leftovers.
    const rows = await records(join(base, 'media.db'));
    expect([...rows.keys()].sort()).toEqual([`${LOCAL}/goodOne`, `${LOCAL}/goodTwo`]);
    expect(await storedFiles(server.mediaPath)).toEqual({ blobs: 2, staging: 0 });

    // The repaired export (the same IDs, honest manifest) completes the import.
    const repaired = join(base, 'repaired');
    await mkdir(repaired);
    await writeMmrArchive(repaired, [...good, bad.sizeLies, bad.hashLies, bad.weirdType, bad.unlisted], { entity: LOCAL, partSize: 1 << 20 });
    const rerun = await run(base, 'import-mmr', 'repaired', '--config', server.configPath);
    expect(rerun.out).toContain('imported 4 media');
    expect(rerun.out).toContain('already present 2');
    expect(rerun.code).toBe(0);
    expect(parts.length).toBeGreaterThan(0);
  }, 120_000);

  it('reports a truncated part, keeps what came before the damage whole, and finishes on the rerun with the intact part', async () => {
    const base = join(dir.path, 'truncated');
    const archive = join(base, 'archive');
    const intact = join(base, 'intact');
    await mkdir(archive, { recursive: true });
    await mkdir(intact, { recursive: true });
    const items = Array.from({ length: 8 }, (_, index) => item(`chunk${index}`, randomBytes(200_000), 'application/octet-stream', `c${index}.bin`));
    // One media part holding all eight, and the manifest part.
    const parts = await writeMmrArchive(archive, items, { entity: LOCAL, partSize: 64 << 20 });
    await writeMmrArchive(intact, items, { entity: LOCAL, partSize: 64 << 20 });
    expect(parts).toEqual(['export-part-1.tgz', 'export-manifest.tgz']);
    const partPath = join(archive, 'export-part-1.tgz');
    await truncate(partPath, Math.floor((await stat(partPath)).size * 0.6));
    const server = await writeArchiveServerConfig(base, LOCAL);

    const first = await run(base, 'import-mmr', 'archive', '--config', server.configPath);
    expect(first.code).toBe(1);
    expect(first.out).toMatch(/damaged-part 1/);
    expect(first.out).toContain('export-part-1.tgz): truncated');
    const imported = Number(/imported (\d+) media/.exec(first.out)![1]);
    expect(imported).toBeGreaterThan(0);
    expect(imported).toBeLessThan(items.length);
    expect(first.out).toContain(`missing-file ${items.length - imported}`);
    expect(await storedFiles(server.mediaPath)).toEqual({ blobs: imported, staging: 0 });

    const rerun = await run(base, 'import-mmr', 'intact', '--config', server.configPath);
    expect(rerun.out).toContain(`imported ${items.length - imported} media`);
    expect(rerun.out).toContain(`already present ${imported}`);
    expect(rerun.code).toBe(0);
  }, 120_000);

  it('refuses parts without a manifest and imports nothing', async () => {
    const base = join(dir.path, 'nomanifest');
    const archive = join(base, 'archive');
    await mkdir(archive, { recursive: true });
    await writeMmrArchive(archive, [item('lonely', randomBytes(10), 'image/png', 'l.png')], { entity: LOCAL, partSize: 1 });
    const server = await writeArchiveServerConfig(base, LOCAL);
    const result = await run(base, 'import-mmr', join('archive', 'export-part-1.tgz'), '--config', server.configPath);
    expect(result.code).toBe(1);
    expect(result.err).toContain('no manifest.json in the given parts');
    expect((await records(join(base, 'media.db'))).size).toBe(0);
  }, 60_000);

  it('resumes after the import process is killed mid-import: no row without its bytes, the rerun completes', async () => {
    const base = join(dir.path, 'killed');
    const archive = join(base, 'archive');
    await mkdir(archive, { recursive: true });
    const items = Array.from({ length: 12 }, (_, index) => item(`killed${index}`, randomBytes(400_000), 'application/octet-stream', `k${index}.bin`));
    // One part per item: progress lines tell how far the import got.
    await writeMmrArchive(archive, items, { entity: LOCAL, partSize: 1 });
    const server = await writeArchiveServerConfig(base, LOCAL);
    const cli = new CliProcess(['import-mmr', 'archive', '--config', server.configPath], base);
    await cli.waitFor(() => cli.stderr.includes('export-part-2.tgz: done'), 'two parts imported');
    cli.child.kill('SIGKILL');
    await cli.exited;

    const rows = await records(join(base, 'media.db'));
    expect(rows.size).toBeGreaterThanOrEqual(2);
    // Never a row without its blob; a kill between a blob's rename and its row leaves that blob without a row
    // (at most one per import in flight: ImportPipeline's limit, 8).
    const { blobs } = await storedFiles(server.mediaPath);
    expect(blobs - rows.size).toBeGreaterThanOrEqual(0);
    expect(blobs - rows.size).toBeLessThanOrEqual(8);

    const rerun = await run(base, 'import-mmr', 'archive', '--config', server.configPath);
    expect(rerun.out).toContain(`imported ${items.length - rows.size} media`);
    expect(rerun.out).toContain(`already present ${rows.size}`);
    expect(rerun.code).toBe(0);
    const running = await startArchiveServer(server);
    try {
      for (const fixture of items) expect((await running.client(LOCAL, fixture.mediaId)).bytes.equals(fixture.bytes)).toBe(true);
    } finally {
      await running.stop();
    }
  }, 180_000);

  it('refuses files larger than --max-file-size (default max_upload_size) before storing a byte', async () => {
    const base = join(dir.path, 'bomb');
    const archive = join(base, 'archive');
    await mkdir(archive, { recursive: true });
    const big = item('largeOne', Buffer.alloc(64 * 1024), 'application/octet-stream', 'zeros.bin');
    await writeMmrArchive(archive, [big, item('smallOne', randomBytes(100), 'image/png', 's.png')], { entity: LOCAL, partSize: 1 << 20 });
    const server = await writeArchiveServerConfig(base, LOCAL);
    const capped = await run(base, 'import-mmr', 'archive', '--max-file-size', '16K', '--config', server.configPath);
    expect(capped.code).toBe(1);
    expect(capped.out).toContain('imported 1 media');
    expect(capped.out).toContain(`refused mxc://${LOCAL}/largeOne`);
    expect(await storedFiles(server.mediaPath)).toEqual({ blobs: 1, staging: 0 });
    const rerun = await run(base, 'import-mmr', 'archive', '--config', server.configPath);
    expect(rerun.out).toContain('imported 1 media (64 KiB), already present 1');
    expect(rerun.code).toBe(0);
  }, 60_000);
});
