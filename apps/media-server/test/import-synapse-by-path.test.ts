import { createHash } from 'node:crypto';
import { mkdir, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MediaImports, MediaService } from '@hsmedia/media-core';
import { MemoryMetadataStore } from '@hsmedia/media-core/memory';
import { FsBlobStore } from '@hsmedia/store-fs';
import { SynapseImporter, SynapseMediaSource, type SynapseImportEntry } from '@hsmedia/synapse-import';
import { writeSynapseMediaStore, writeSynapseSqlite, type SynapseFixtureContent } from '@hsmedia/test-fixtures/synapse';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './helpers.js';

// Synapse's files handed to the filesystem store unopened (issue 24's import speed): the store's copy
// workers resolve each path, check it against the media store, copy or link it and rename it into place.
// The jail, the missing-file and size checks and a thumbnail's legacy file name must hold there as they
// did when the importer opened each file itself.

const HS = 'hs1.test';
const T0 = 1_765_000_000_000;
const enc = (text: string): Uint8Array => new TextEncoder().encode(text);
const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

const content: SynapseFixtureContent = {
  local: [
    { mediaId: 'AAAAplainFile', type: 'text/plain', bytes: enc('plain bytes'), createdTs: T0, userId: '@a:hs1.test' },
    // Replaced below by a symlink to a file outside the media store.
    { mediaId: 'BBBBlinkedOut', type: 'text/plain', bytes: enc('replaced'), createdTs: T0 + 1, userId: '@a:hs1.test' },
    // Replaced below by a symlink to another file inside the media store: followed, as Synapse would.
    { mediaId: 'CCCClinkedIn', type: 'text/plain', bytes: enc('plain bytes'), createdTs: T0 + 2, userId: '@a:hs1.test' },
    // Replaced below by a directory.
    { mediaId: 'DDDDdirectory', type: 'text/plain', bytes: enc('replaced'), createdTs: T0 + 3, userId: '@a:hs1.test' },
    { mediaId: 'EEEEmissing', type: 'text/plain', bytes: enc('never written'), createdTs: T0 + 4, userId: '@a:hs1.test', noFile: true },
    { mediaId: 'FFFFshortFile', type: 'text/plain', bytes: enc('five!'), createdTs: T0 + 5, userId: '@a:hs1.test', lengthOverride: 9 },
    { mediaId: 'GGGGlongFile', type: 'text/plain', bytes: enc('nine bytes'), createdTs: T0 + 6, userId: '@a:hs1.test', lengthOverride: 4 },
  ],
  remote: [
    {
      origin: 'peer.test',
      mediaId: 'remoteItem',
      filesystemId: 'abcdefghijklmnopqrstuvwx',
      type: 'image/png',
      bytes: enc('remote original'),
      createdTs: T0 + 7,
      thumbnails: [
        { width: 32, height: 32, type: 'image/png', method: 'crop', bytes: enc('thumb, current name') },
        { width: 96, height: 96, type: 'image/png', method: 'scale', bytes: enc('thumb, legacy name'), legacyName: true },
      ],
    },
  ],
};

let dir: Awaited<ReturnType<typeof tempDir>>;
let mediaStore: string;
let database: string;
let outside: string;

beforeAll(async () => {
  dir = await tempDir('import-by-path-');
  mediaStore = join(dir.path, 'media_store');
  database = join(dir.path, 'homeserver.db');
  await writeSynapseSqlite(database, 'current', content);
  await writeSynapseMediaStore(mediaStore, content);
  outside = join(dir.path, 'secret.txt');
  await writeFile(outside, 'secret bytes outside the store');
  const local = (id: string): string => join(mediaStore, 'local_content', id.slice(0, 2), id.slice(2, 4), id.slice(4));
  await rm(local('BBBBlinkedOut'));
  await symlink(outside, local('BBBBlinkedOut'));
  await rm(local('CCCClinkedIn'));
  await symlink(local('AAAAplainFile'), local('CCCClinkedIn'));
  await rm(local('DDDDdirectory'));
  await mkdir(local('DDDDdirectory'));
});
afterAll(() => dir.cleanup());

async function importInto(root: string, linkFiles: boolean) {
  const blobs = new FsBlobStore({ root });
  const metadata = new MemoryMetadataStore();
  const media = new MediaService({ serverName: HS, blobs, metadata, maxUploadBytes: 1 << 20, touchIntervalMs: 0 });
  const imports = new MediaImports({ catalog: media.catalog, actor: 'test', linkFiles });
  expect(imports.takesFilePaths).toBe(true);
  const source = await SynapseMediaSource.open({ database: { sqlite: database }, mediaStorePath: mediaStore });
  const entries: SynapseImportEntry[] = [];
  try {
    await new SynapseImporter({ source, imports, localServerName: HS }).run({ onEntry: (entry) => entries.push(entry) });
  } finally {
    await source.close();
  }
  const outcome = (mediaId: string, thumbnail?: string): SynapseImportEntry | undefined => entries.find((e) => e.mediaId === mediaId && e.thumbnail === thumbnail);
  return { media, metadata, outcome };
}

async function filesUnder(path: string): Promise<string[]> {
  const entries = await readdir(path, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
}

async function bytesOf(media: MediaService, serverName: string, mediaId: string): Promise<string> {
  const handle = await media.getMedia(serverName, mediaId);
  return new Response(await handle!.open()).text();
}

describe.each([
  { mode: 'copy', link: false },
  { mode: 'link', link: true },
])('import-synapse by path ($mode)', ({ mode, link }) => {
  it('keeps the jail, reports missing and wrong-size files, finds legacy thumbnail names, keeps nothing of a refused file', async () => {
    const root = join(dir.path, `store-${mode}`);
    const { media, metadata, outcome } = await importInto(root, link);

    expect(outcome('AAAAplainFile')).toMatchObject({ outcome: 'imported', bytes: 11 });
    expect(await bytesOf(media, HS, 'AAAAplainFile')).toBe('plain bytes');
    expect(await metadata.getMedia(HS, 'AAAAplainFile')).toMatchObject({ sha256: sha256(enc('plain bytes')), size: 11 });
    expect(outcome('CCCClinkedIn')).toMatchObject({ outcome: 'imported' });
    expect(await bytesOf(media, HS, 'CCCClinkedIn')).toBe('plain bytes');

    expect(outcome('BBBBlinkedOut')).toMatchObject({ outcome: 'unsafe-path', detail: 'local_content/BB/BB/linkedOut resolves outside the media store' });
    expect(await metadata.getMedia(HS, 'BBBBlinkedOut')).toBeNull();
    expect(outcome('DDDDdirectory')).toMatchObject({ outcome: 'missing-file' });
    expect(outcome('EEEEmissing')).toMatchObject({ outcome: 'missing-file', detail: 'no file in the media store' });
    expect(outcome('FFFFshortFile')).toMatchObject({ outcome: 'size-mismatch', detail: 'file has 5 bytes, the database says 9' });
    expect(outcome('GGGGlongFile')).toMatchObject({ outcome: 'size-mismatch', detail: 'file has 10 bytes, the database says 4' });
    for (const id of ['DDDDdirectory', 'EEEEmissing', 'FFFFshortFile', 'GGGGlongFile']) expect(await metadata.getMedia(HS, id)).toBeNull();

    expect(outcome('remoteItem')).toMatchObject({ outcome: 'imported' });
    expect(outcome('remoteItem', '32x32 crop image/png')).toMatchObject({ outcome: 'imported' });
    expect(outcome('remoteItem', '96x96 scale image/png')).toMatchObject({ outcome: 'imported' });
    expect((await metadata.listThumbnails('peer.test', 'remoteItem')).map((t) => `${t.width}x${t.height} ${t.method}`).sort()).toEqual(['32x32 crop', '96x96 scale']);

    // Only the imported files are in the store (one blob per row), nothing is left in staging, and the
    // file outside the store was never linked or copied.
    const blobs = await filesUnder(join(root, 'blobs'));
    expect(blobs).toHaveLength(5);
    expect(await filesUnder(join(root, 'staging'))).toEqual([]);
    expect((await stat(outside)).nlink).toBe(1);
    const expectedLinks = link ? 2 : 1;
    expect((await stat(join(mediaStore, 'local_content', 'AA', 'AA', 'plainFile'))).nlink).toBe(link ? 3 : 1);
    for (const blob of blobs) expect((await stat(blob)).nlink).toBeGreaterThanOrEqual(expectedLinks);
  });
});
