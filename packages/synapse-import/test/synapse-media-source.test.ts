import { tmpdir, type TempDir } from '@hsmedia/test-fixtures';
import { PG_URL } from '@hsmedia/test-fixtures/postgres';
import {
  createPostgresDatabase,
  writeSynapseMediaStore,
  writeSynapsePostgres,
  writeSynapseSqlite,
  type SynapseFixtureContent,
  type SynapseSchemaEra,
} from '@hsmedia/test-fixtures/synapse';
import { createHash } from 'node:crypto';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SynapseMediaSource, UnsafeMediaPathError, type SynapseDatabaseLocation, type SynapseMediaItem } from '../src/index.js';

const enc = (text: string): Uint8Array => new TextEncoder().encode(text);
const T0 = 1_765_000_000_000;

const content: SynapseFixtureContent = {
  local: [
    {
      mediaId: 'AAAAlocalPng',
      type: 'image/png',
      bytes: enc('png bytes'),
      createdTs: T0,
      uploadName: 'pic.png',
      userId: '@alice:hs1',
      authenticated: true,
      thumbnails: [
        { width: 32, height: 32, type: 'image/png', method: 'crop', bytes: enc('crop 32') },
        { width: 1, height: 1, type: 'image/png', method: 'scale', bytes: enc('png bytes') },
      ],
    },
    { mediaId: 'BBBBquarantined', type: 'text/plain', bytes: enc('bad'), createdTs: T0 + 1, userId: '@bob:hs1', quarantinedBy: '@admin:hs1' },
    { mediaId: 'CCCCprotected', type: 'text/plain', bytes: enc('kept'), createdTs: T0 + 2, userId: '@bob:hs1', safeFromQuarantine: true, lastAccessTs: T0 + 50 },
    { mediaId: 'DDDDpending', type: null, bytes: null, createdTs: T0 + 3, userId: '@alice:hs1' },
    { mediaId: '2026-12-07_urlPreviewImg', type: 'image/jpeg', bytes: enc('og image'), createdTs: T0 + 4, userId: '@alice:hs1', urlCache: 'http://127.0.0.1/page', thumbnails: [{ width: 32, height: 32, type: 'image/jpeg', method: 'scale', bytes: enc('og thumb') }] },
    { mediaId: 'EEEEmissingFile', type: 'text/plain', bytes: enc('gone'), createdTs: T0 + 5, userId: '@alice:hs1', noFile: true },
  ],
  remote: [
    { origin: 'hs2.example', mediaId: 'remoteOne', filesystemId: 'QWERTYUIOPASDFGHJKLZXCVB', type: 'image/gif', bytes: enc('gif bytes'), createdTs: T0 + 10, uploadName: null, thumbnails: [
      { width: 96, height: 96, type: 'image/jpeg', method: 'crop', bytes: enc('jpeg thumb') },
      { width: 96, height: 96, type: 'image/webp', method: 'crop', bytes: enc('webp anim'), legacyName: true },
    ] },
    { origin: 'hs2.example', mediaId: 'onlyThumb', filesystemId: 'MNBVCXZLKJHGFDSAPOIUYTRE', type: null, bytes: null, createdTs: T0 + 11, thumbnails: [{ width: 32, height: 32, type: 'image/png', method: 'scale', bytes: enc('remote thumb') }] },
    { origin: 'hs3.example:8448', mediaId: 'remoteTwo', filesystemId: 'ZZZZYYYYXXXXWWWWVVVVUUUU', type: 'text/plain', bytes: enc('port origin'), createdTs: T0 + 12, quarantinedBy: 'system' },
  ],
};

/** Rows that try to leave the store (written in the DB only; the store has a symlink for one). */
const hostile: SynapseFixtureContent = {
  local: [{ mediaId: '../../../etc/passwd', type: 'text/plain', bytes: enc('x'), createdTs: T0, userId: '@evil:hs1', noFile: true }],
  remote: [{ origin: '..', mediaId: 'escape', filesystemId: 'abcdefgh', type: 'text/plain', bytes: enc('x'), createdTs: T0, noFile: true }],
};

async function drain(stream: AsyncIterable<Uint8Array>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks).toString();
}

async function all(source: SynapseMediaSource, limit: number): Promise<SynapseMediaItem[]> {
  const items: SynapseMediaItem[] = [];
  for await (const { item } of source.items(null, limit)) items.push(item);
  return items;
}

let dir: TempDir;
beforeAll(async () => {
  dir = await tmpdir('h24syn-source-');
});
afterAll(() => dir.cleanup());

interface Backend {
  readonly name: string;
  location(era: SynapseSchemaEra, tag: string): Promise<SynapseDatabaseLocation>;
  cleanup(): Promise<void>;
}

const dropPg: (() => Promise<void>)[] = [];
const backends: Backend[] = [
  {
    name: 'SQLite',
    async location(era, tag) {
      const path = join(dir.path, `${tag}-${era}.db`);
      await writeSynapseSqlite(path, era, { local: [...content.local, ...hostile.local], remote: [...content.remote, ...hostile.remote] });
      return { sqlite: path };
    },
    async cleanup() {},
  },
  {
    name: 'PostgreSQL',
    async location(era) {
      const db = await createPostgresDatabase(PG_URL, 'h24syn_src');
      dropPg.push(() => db.drop());
      await writeSynapsePostgres(db.url, era, { local: [...content.local, ...hostile.local], remote: [...content.remote, ...hostile.remote] });
      return { postgres: db.url };
    },
    async cleanup() {
      for (const drop of dropPg.splice(0)) await drop();
    },
  },
];

describe.each(backends)('SynapseMediaSource on $name', (backend) => {
  afterAll(() => backend.cleanup());

  describe.each(['current', 'legacy'] as const)('schema era %s', (era) => {
    let source: SynapseMediaSource;
    let store: string;
    beforeAll(async () => {
      store = join(dir.path, `store-${backend.name}-${era}`);
      await writeSynapseMediaStore(store, content);
      // A local file that is a symlink out of the store.
      await writeFile(join(dir.path, `secret-${backend.name}-${era}`), 'secret');
      await mkdir(join(store, 'local_content', 'CC', 'CC'), { recursive: true });
      await symlink(join(dir.path, `secret-${backend.name}-${era}`), join(store, 'local_content', 'CC', 'CC', 'protected-link'));
      source = await SynapseMediaSource.open({ database: await backend.location(era, 'a'), mediaStorePath: store });
    });
    afterAll(() => source.close());

    it('reads which optional columns the schema has', () => {
      const later = era === 'current';
      expect(source.schema).toEqual({ quarantinedBy: true, safeFromQuarantine: true, authenticated: later, sha256: later, urlCache: true });
    });

    it('iterates local, remote and thumbnail-only remote media in a stable order, resumable from any cursor', async () => {
      const items = await all(source, 2);
      expect(items.map((i) => `${i.origin ?? 'local'}/${i.mediaId}`)).toEqual([
        'local/../../../etc/passwd',
        'local/2026-12-07_urlPreviewImg',
        'local/AAAAlocalPng',
        'local/BBBBquarantined',
        'local/CCCCprotected',
        'local/DDDDpending',
        'local/EEEEmissingFile',
        '../escape',
        'hs2.example/remoteOne',
        'hs3.example:8448/remoteTwo',
        'hs2.example/onlyThumb',
      ]);
      // Resume after the 4th item: the rest, nothing twice.
      const cursors: string[] = [];
      for await (const { cursor } of source.items(null, 3)) cursors.push(cursor);
      const rest: string[] = [];
      for await (const { item } of source.items(cursors[3]!, 3)) rest.push(item.mediaId);
      expect(rest).toEqual(items.slice(4).map((i) => i.mediaId));
      const last = await source.page(cursors[cursors.length - 1]!, 5);
      expect(last).toEqual({ items: [], next: null });
      await expect(source.page('{"phase":"nope"}')).rejects.toThrow('malformed cursor');
    });

    it('maps columns: quarantine, protection, authenticated, sha256, pending, URL-preview media, thumbnails with their types and methods', async () => {
      const png = (await source.localMedia('AAAAlocalPng'))!;
      expect(png).toMatchObject({ origin: null, mediaType: 'image/png', mediaLength: 9, createdTs: T0, uploadName: 'pic.png', userId: '@alice:hs1', quarantinedBy: null, pending: false, path: 'local_content/AA/AA/localPng', lastAccessTs: null });
      expect(png.authenticated).toBe(era === 'current');
      expect(png.sha256).toBe(era === 'current' ? createHash('sha256').update('png bytes').digest('hex') : null);
      expect(png.thumbnails.map((t) => `${t.width}x${t.height} ${t.method} ${t.type} ${t.path}`).sort()).toEqual([
        '1x1 scale image/png local_thumbnails/AA/AA/localPng/1-1-image-png-scale',
        '32x32 crop image/png local_thumbnails/AA/AA/localPng/32-32-image-png-crop',
      ]);
      expect((await source.localMedia('BBBBquarantined'))?.quarantinedBy).toBe('@admin:hs1');
      expect((await source.localMedia('CCCCprotected'))).toMatchObject({ safeFromQuarantine: true, lastAccessTs: T0 + 50 });
      expect(await source.localMedia('DDDDpending')).toMatchObject({ pending: true, mediaLength: null, mediaType: null, path: null });
      const preview = (await source.localMedia('2026-12-07_urlPreviewImg'))!;
      expect(preview).toMatchObject({ urlCache: 'http://127.0.0.1/page', path: 'url_cache/2026-12-07/urlPreviewImg' });
      expect(preview.thumbnails[0]?.path).toBe('url_cache_thumbnails/2026-12-07/urlPreviewImg/32-32-image-jpeg-scale');
      expect(await drain((await source.openThumbnail(preview.thumbnails[0]!))!.stream)).toBe('og thumb');
      expect(await source.localMedia('nope')).toBeNull();

      const remote = (await source.remoteMedia('hs2.example', 'remoteOne'))!;
      expect(remote).toMatchObject({ filesystemId: 'QWERTYUIOPASDFGHJKLZXCVB', path: 'remote_content/hs2.example/QW/ER/TYUIOPASDFGHJKLZXCVB', lastAccessTs: T0 + 10, thumbnailOnly: false });
      expect(await drain((await source.openMedia(remote))!.stream)).toBe('gif bytes');
      const webp = remote.thumbnails.find((t) => t.type === 'image/webp')!;
      // Written under the older name without the method: found through legacyPath.
      expect(await drain((await source.openThumbnail(webp))!.stream)).toBe('webp anim');
      const onlyThumb = (await source.remoteMedia('hs2.example', 'onlyThumb'))!;
      expect(onlyThumb).toMatchObject({ thumbnailOnly: true, path: null, mediaType: null });
      expect(onlyThumb.thumbnails).toHaveLength(1);
      expect((await source.remoteMedia('hs3.example:8448', 'remoteTwo'))?.quarantinedBy).toBe('system');
      expect(await source.remoteMedia('hs2.example', 'nope')).toBeNull();
    });

    it('opens files streaming with their size; a missing file is null; a path that leaves the store is refused', async () => {
      const file = (await source.openMedia((await source.localMedia('AAAAlocalPng'))!))!;
      expect(file.size).toBe(9);
      expect(await drain(file.stream)).toBe('png bytes');
      expect(await source.openMedia((await source.localMedia('EEEEmissingFile'))!)).toBeNull();
      expect(await source.openMedia((await source.localMedia('DDDDpending'))!)).toBeNull();

      const escape = (await source.localMedia('../../../etc/passwd'))!;
      expect(escape.path).toBeNull();
      expect(escape.pathProblem).toContain('invalid path component');
      await expect(source.openMedia(escape)).rejects.toBeInstanceOf(UnsafeMediaPathError);
      await expect(source.openMedia((await source.remoteMedia('..', 'escape'))!)).rejects.toBeInstanceOf(UnsafeMediaPathError);
      // A symlink inside the store that points outside it.
      await expect(source.store.open('local_content/CC/CC/protected-link')).rejects.toBeInstanceOf(UnsafeMediaPathError);
    });

    it('counts rows and bytes', async () => {
      expect(await source.stats()).toEqual({
        local: { count: 7, bytes: 9 + 3 + 4 + 8 + 4 + 1 },
        remote: { count: 3, bytes: 9 + 11 + 1 },
        localThumbnails: { count: 3, bytes: 7 + 9 + 8 },
        remoteThumbnails: { count: 3, bytes: 10 + 9 + 12 },
        pending: 1,
      });
    });
  });

  it('refuses a database without Synapse media tables', async () => {
    const location: SynapseDatabaseLocation =
      backend.name === 'SQLite' ? { sqlite: join(dir.path, 'empty.db') } : { postgres: (await createPostgresDatabase(PG_URL, 'h24syn_empty').then((db) => (dropPg.push(() => db.drop()), db))).url };
    if ('sqlite' in location) {
      const { default: Database } = await import('better-sqlite3');
      new Database(location.sqlite).close();
    }
    await expect(SynapseMediaSource.open({ database: location, mediaStorePath: dir.path })).rejects.toThrow('not a Synapse database');
  });
});

describe('README', () => {
  it('runs the usage example', async () => {
    const store = join(dir.path, 'readme-store');
    const db = join(dir.path, 'readme.db');
    await writeSynapseMediaStore(store, content);
    await writeSynapseSqlite(db, 'current', content);
    const written: Buffer[] = [];
    const stdout = { write: (chunk: Uint8Array) => void written.push(Buffer.from(chunk)) };
    const log: string[] = [];
    const console = { log: (line: string) => void log.push(line) };
    const process = { stdout };

    const source = await SynapseMediaSource.open({
      database: { sqlite: db },
      mediaStorePath: store,
    });
    const stats = await source.stats();
    console.log(`${stats.local.count} local items, ${stats.local.bytes} bytes`);
    const item = await source.localMedia('AAAAlocalPng');
    const file = item === null ? null : await source.openMedia(item);
    if (file !== null) for await (const chunk of file.stream) process.stdout.write(chunk);
    await source.close();

    expect(log).toEqual(['6 local items, 28 bytes']);
    expect(Buffer.concat(written).toString()).toBe('png bytes');
  });
});
