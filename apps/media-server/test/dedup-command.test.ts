import { createHash } from 'node:crypto';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FsBlobStore } from '@hsmedia/store-fs';
import { createSqliteMetadataStore } from '@hsmedia/store-sqlite';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseCommandLine, runCommand, type CliIo } from '../src/cli-main.js';
import { tempDir } from './helpers.js';

// `hsmedia-server dedup` on a store written before dedup (random blob IDs): SQLite and the filesystem.
let dir: { path: string; cleanup(): Promise<void> };
let configPath: string;

async function writeConfig(dedup: boolean): Promise<void> {
  await writeFile(
    configPath,
    `database:\n  sqlite:\n    path: ${join(dir.path, 'media.sqlite')}\nmedia_store:\n  filesystem:\n    path: ${join(dir.path, 'media')}\ndedup:\n  enabled: ${dedup}\n`,
  );
}

beforeEach(async () => {
  dir = await tempDir('h15dedup-cli-');
  configPath = join(dir.path, 'config.yaml');
  await writeConfig(false);
});
afterEach(async () => {
  await dir.cleanup();
});

async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIo = { stdout: { write: (text: string) => (out += text) }, stderr: { write: (text: string) => (err += text) }, cwd: dir.path };
  const code = await runCommand([...args, '--config', configPath], io);
  return { code, out, err };
}

async function* bytes(text: string): AsyncGenerator<Uint8Array> {
  yield Buffer.from(text);
}

const record = (mediaId: string, blobId: string, size: number) => ({
  serverName: 'localhost',
  mediaId,
  blobId,
  contentType: 'text/plain',
  uploadName: null,
  size,
  sha256: null,
  userId: '@alice:localhost',
  createdAt: 1_700_000_000_000,
  uploadedAt: 1_700_000_000_000,
  expiresAt: null,
  authenticated: true,
  quarantined: false,
  lastAccessAt: null,
});

/** Files under `<media>/blobs`. */
async function blobFiles(): Promise<string[]> {
  const entries = await readdir(join(dir.path, 'media', 'blobs'), { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => entry.name).sort();
}

describe('hsmedia-server dedup', () => {
  it('parses its options and refuses them elsewhere', () => {
    expect(parseCommandLine(['dedup', '--dry-run', '--sweep'])).toMatchObject({ kind: 'run', dedup: { dryRun: true, deleteOld: false, sweep: true } });
    expect(parseCommandLine(['dedup', '--dry-run', '--delete-old'])).toMatchObject({ kind: 'usage-error' });
    expect(parseCommandLine(['migrate', '--sweep'])).toMatchObject({ kind: 'usage-error', message: '--sweep is an option of dedup only' });
  });

  it('refuses to run without dedup.enabled', async () => {
    expect(await run('dedup')).toMatchObject({ code: 1, err: expect.stringContaining('dedup.enabled') });
  });

  it('moves a store written before dedup to content addressing in place: counts, dry run, resumable rerun', async () => {
    // A store from before dedup: two uploads of the same bytes under two random IDs, one other, one thumbnail.
    const metadata = await createSqliteMetadataStore({ path: join(dir.path, 'media.sqlite'), migrate: true });
    const objects = new FsBlobStore({ root: join(dir.path, 'media'), fsync: false });
    const same1 = await objects.put(bytes('the same ten bytes'.slice(0, 10)));
    const same2 = await objects.put(bytes('the same ten bytes'.slice(0, 10)));
    const other = await objects.put(bytes('other'));
    const thumb = await objects.put(bytes('thumbnail bytes'));
    await metadata.insertMedia(record('first', same1.blobId, 10));
    await metadata.insertMedia(record('second', same2.blobId, 10));
    await metadata.insertMedia(record('third', other.blobId, 5));
    await metadata.insertThumbnail({
      serverName: 'localhost',
      mediaId: 'first',
      width: 32,
      height: 32,
      method: 'scale',
      animated: false,
      contentType: 'image/png',
      blobId: thumb.blobId,
      size: 15,
      createdAt: 1_700_000_000_000,
    });
    await metadata.close();
    await writeConfig(true);

    const dry = await run('dedup', '--dry-run');
    expect(dry).toEqual({ code: 0, out: '4 blobs (40 B) under random IDs; 4 blobs referenced, 40 B stored\n', err: '' });
    expect(await blobFiles()).toHaveLength(4);

    const moved = await run('dedup', '--delete-old');
    expect(moved.code).toBe(0);
    expect(moved.out).toContain('moved 4 blobs; 3 blobs referenced, 30 B stored (was 40 B)');
    // Plain progress lines when stderr is not a terminal.
    expect(moved.err).toContain('dedup: 100% 4/4 blobs, 40 B/40 B');
    const sha = (text: string) => createHash('sha256').update(text).digest('hex');
    expect(await blobFiles()).toEqual([sha('the same t'), sha('other'), sha('thumbnail bytes')].sort());

    const after = await createSqliteMetadataStore({ path: join(dir.path, 'media.sqlite'), migrate: true });
    expect((await after.getMedia('localhost', 'first'))!.blobId).toBe(sha('the same t'));
    expect((await after.getMedia('localhost', 'second'))!.blobId).toBe(sha('the same t'));
    expect((await after.listThumbnails('localhost', 'first'))[0]!.blobId).toBe(sha('thumbnail bytes'));
    expect(await after.blobStorageStats()).toEqual({ blobs: 3, storedBytes: 30, referencedBytes: 40 });
    await after.close();

    // Nothing left to move: a rerun (after a crash too) only takes what is still under random IDs.
    expect((await run('dedup', '--sweep')).out).toBe(
      '0 blobs (0 B) under random IDs; 3 blobs referenced, 30 B stored\norphan sweep: 0 unreferenced, 0 unknown, 0 removed\n',
    );
  });
});
