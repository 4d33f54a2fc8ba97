import { MediaImports, MediaService, type ByteSource, type ImportedMediaRecord } from '@hsmedia/media-core';
import { MemoryBlobStore, MemoryMetadataStore } from '@hsmedia/media-core/memory';
import { tmpdir, type TempDir } from '@hsmedia/test-fixtures';
import { PG_URL } from '@hsmedia/test-fixtures/postgres';
import { createPostgresDatabase, writeSynapseMediaStore, writeSynapsePostgres, writeSynapseSqlite, type SynapseFixtureContent } from '@hsmedia/test-fixtures/synapse';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cursorAfter, SynapseImporter, SynapseMediaSource, type SynapseImportEntry } from '../src/index.js';

// The import pipeline on media-core's in-memory stores (conformance-tested
// like the SQL and filesystem ones; the CLI test in apps/media-server runs
// it on SQLite, PostgreSQL and the filesystem store and downloads
// everything through the HTTP APIs).

const enc = (text: string): Uint8Array => new TextEncoder().encode(text);
const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');
const T0 = 1_765_000_000_000;
const HS = 'hs1.example';

const content: SynapseFixtureContent = {
  local: [
    {
      mediaId: 'AAAApicture',
      type: 'image/gif',
      bytes: enc('gif original'),
      createdTs: T0,
      uploadName: 'anim.gif',
      userId: '@alice:hs1.example',
      authenticated: true,
      thumbnails: [
        { width: 32, height: 32, type: 'image/png', method: 'crop', bytes: enc('still crop') },
        { width: 32, height: 32, type: 'image/webp', method: 'crop', bytes: enc('animated crop') },
        { width: 1, height: 1, type: 'image/gif', method: 'scale', bytes: enc('gif original') },
        { width: 640, height: 480, type: 'image/png', method: 'scale', bytes: enc('no file'), noFile: true },
      ],
    },
    { mediaId: 'BBBBquarantined', type: 'text/plain', bytes: enc('evil'), createdTs: T0 + 1, userId: '@bob:hs1.example', quarantinedBy: '@admin:hs1.example', thumbnails: [] },
    { mediaId: 'CCCCsystemQuar', type: 'text/plain', bytes: enc('evil'), createdTs: T0 + 2, userId: '@bob:hs1.example', quarantinedBy: 'system' },
    { mediaId: 'DDDDpending', type: null, bytes: null, createdTs: Date.now(), userId: '@alice:hs1.example' },
    { mediaId: 'EEEEmissing', type: 'text/plain', bytes: enc('gone'), createdTs: T0 + 4, userId: '@alice:hs1.example', noFile: true },
    { mediaId: 'FFFFwrongSize', type: 'text/plain', bytes: enc('five!'), createdTs: T0 + 5, userId: '@alice:hs1.example', lengthOverride: 6 },
    { mediaId: '../escape', type: 'text/plain', bytes: enc('x'), createdTs: T0 + 6, userId: '@evil:hs1.example', noFile: true },
    { mediaId: 'GGGGprotected', type: 'text/plain', bytes: enc('kept'), createdTs: T0 + 7, userId: '@bob:hs1.example', safeFromQuarantine: true, lastAccessTs: T0 + 99 },
  ],
  remote: [
    { origin: 'hs2.example', mediaId: 'remoteOne', filesystemId: 'QWERTYUIOPASDFGHJKLZXCVB', type: 'image/png', bytes: enc('remote png'), createdTs: T0 + 10, thumbnails: [{ width: 96, height: 96, type: 'image/png', method: 'crop', bytes: enc('remote crop') }] },
    { origin: 'hs2.example', mediaId: 'onlyThumb', filesystemId: 'MNBVCXZLKJHGFDSAPOIUYTRE', type: null, bytes: null, createdTs: T0 + 11, thumbnails: [{ width: 32, height: 32, type: 'image/png', method: 'scale', bytes: enc('thumb only') }] },
  ],
};

let dir: TempDir;
let database: string;
let store: string;
beforeAll(async () => {
  dir = await tmpdir('h24syn-importer-');
  database = join(dir.path, 'homeserver.db');
  store = join(dir.path, 'media_store');
  await writeSynapseSqlite(database, 'current', content);
  await writeSynapseMediaStore(store, content);
});
afterAll(() => dir.cleanup());

function target() {
  const blobs = new MemoryBlobStore();
  const metadata = new MemoryMetadataStore();
  const media = new MediaService({ serverName: HS, blobs, metadata, maxUploadBytes: 1 << 20, touchIntervalMs: 0 });
  return { blobs, metadata, media, imports: new MediaImports({ catalog: media.catalog, actor: 'test' }) };
}

async function run(imports: MediaImports, options: { dryRun?: boolean; cursor?: string | null; source?: SynapseMediaSource } = {}) {
  const source = options.source ?? (await SynapseMediaSource.open({ database: { sqlite: database }, mediaStorePath: store }));
  const entries: SynapseImportEntry[] = [];
  const cursors: string[] = [];
  try {
    const importer = new SynapseImporter({ source, imports, localServerName: HS, dryRun: options.dryRun === true, concurrency: 3 });
    const tally = await importer.run({ cursor: options.cursor ?? null, onEntry: (e) => entries.push(e), onCursor: (c) => cursors.push(c) });
    return { tally, entries, cursors };
  } finally {
    if (options.source === undefined) await source.close();
  }
}

const line = (e: SynapseImportEntry): string => `${e.outcome} ${e.serverName}/${e.mediaId}${e.thumbnail === undefined ? '' : ` [${e.thumbnail}]`}`;

async function read(stream: ReadableStream<Uint8Array>): Promise<string> {
  return new Response(stream).text();
}

describe('SynapseImporter', () => {
  it('dry run: counts what would be imported and the problems, writes nothing', async () => {
    const { imports, blobs, metadata } = target();
    const { tally, entries } = await run(imports, { dryRun: true });
    expect(tally.media).toMatchObject({ 'would-import': 5, pending: 1, 'missing-file': 1, 'size-mismatch': 1, 'unsafe-path': 1, imported: 0 });
    expect(tally.thumbnails).toMatchObject({ 'would-import': 5, 'missing-file': 1 });
    expect(tally.bytes).toBe([12, 4, 4, 4, 10].reduce((a, b) => a + b) + [10, 13, 12, 11, 10].reduce((a, b) => a + b));
    expect(entries.find((e) => e.mediaId === 'FFFFwrongSize')?.detail).toBe('file has 5 bytes, the database says 6');
    expect(blobs.blobCount).toBe(0);
    expect((await metadata.summarizeMedia({})).count).toBe(0);
  });

  it('imports every item under its ID with its thumbnails; problems reported and skipped; a rerun imports nothing twice', async () => {
    const { imports, blobs, metadata, media } = target();
    const first = await run(imports);
    expect(first.entries.map(line).sort()).toEqual(
      [
        'imported hs1.example/AAAApicture',
        'imported hs1.example/AAAApicture [32x32 crop image/png]',
        'imported hs1.example/AAAApicture [32x32 crop image/webp]',
        'imported hs1.example/AAAApicture [1x1 scale image/gif]',
        'missing-file hs1.example/AAAApicture [640x480 scale image/png]',
        'imported hs1.example/BBBBquarantined',
        'imported hs1.example/CCCCsystemQuar',
        'pending hs1.example/DDDDpending',
        'missing-file hs1.example/EEEEmissing',
        'size-mismatch hs1.example/FFFFwrongSize',
        'unsafe-path hs1.example/../escape',
        'imported hs1.example/GGGGprotected',
        'imported hs2.example/remoteOne',
        'imported hs2.example/remoteOne [96x96 crop image/png]',
        'imported hs2.example/onlyThumb [32x32 scale image/png]',
      ].sort(),
    );
    // Local media under our name with its uploader; remote under its origin without one.
    expect(await metadata.getMedia(HS, 'AAAApicture')).toMatchObject({ userId: '@alice:hs1.example', uploadName: 'anim.gif', contentType: 'image/gif', authenticated: true, createdAt: T0, sha256: sha256(enc('gif original')) });
    expect(await metadata.getMedia('hs2.example', 'remoteOne')).toMatchObject({ userId: null, lastAccessAt: T0 + 10 });
    expect(await metadata.getMedia(HS, 'GGGGprotected')).toMatchObject({ protected: true, lastAccessAt: T0 + 99 });
    // Quarantine kept, its hash blocked; the `system` one too.
    expect(await metadata.getMedia(HS, 'BBBBquarantined')).toMatchObject({ quarantined: true });
    expect(await metadata.getMedia(HS, 'CCCCsystemQuar')).toMatchObject({ quarantined: true });
    expect(await metadata.isHashBlocked(sha256(enc('evil')))).toBe(true);
    // Thumbnails: type and method kept, the GIF's webp row animated, the scale row equal to the original its own row.
    const rows = await metadata.listThumbnails(HS, 'AAAApicture');
    expect(rows.map((r) => `${r.width}x${r.height} ${r.method} ${r.contentType} ${r.animated}`).sort()).toEqual([
      '1x1 scale image/gif false',
      '32x32 crop image/png false',
      '32x32 crop image/webp true',
    ]);
    const original = (await metadata.getMedia(HS, 'AAAApicture'))!;
    expect(rows.every((r) => r.blobId !== original.blobId)).toBe(true);
    expect(await read((await blobs.open(rows.find((r) => r.animated)!.blobId))!)).toBe('animated crop');
    expect(await read(await (await media.getMedia(HS, 'AAAApicture')).open())).toBe('gif original');
    expect((await metadata.listThumbnails('hs2.example', 'onlyThumb')).length).toBe(1);

    const blobCount = blobs.blobCount;
    const second = await run(imports);
    expect(second.tally.media).toMatchObject({ imported: 0, present: 6, 'missing-file': 1, 'size-mismatch': 1, 'unsafe-path': 1 });
    expect(second.tally.thumbnails).toMatchObject({ imported: 0, present: 5, 'missing-file': 1 });
    expect(blobs.blobCount).toBe(blobCount);
  });

  it('resumes from a saved cursor: the items before it are not read again', async () => {
    const { imports } = target();
    const source = await SynapseMediaSource.open({ database: { sqlite: database }, mediaStorePath: store });
    try {
      const { items } = await source.page(null, 100);
      const full = await run(imports, { dryRun: true, source });
      const resumed = await run(imports, { dryRun: true, source, cursor: cursorAfter(items[3]!) });
      const rest = resumed.entries.filter((e) => e.thumbnail === undefined).map((e) => e.mediaId);
      // The first page is the local media (in ID order); the rest and the remote media follow.
      expect(rest.sort()).toEqual([...items.slice(4).map((i) => i.mediaId), 'remoteOne'].sort());
      expect(rest.length).toBe(full.entries.filter((e) => e.thumbnail === undefined).length - 4);
      // The cursor reported while running only ever moves past items that are done.
      expect(full.cursors.length).toBeGreaterThan(0);
    } finally {
      await source.close();
    }
  });

  it('README: imports a Synapse database into a MediaService', async () => {
    const blobs = new MemoryBlobStore();
    const metadata = new MemoryMetadataStore();
    const log: string[] = [];
    const console = { log: (text: string) => void log.push(text) };
    const synapseDb = database;
    const mediaStore = store;

    const media = new MediaService({ serverName: 'hs1.example', blobs, metadata, maxUploadBytes: 50 << 20 });
    const source = await SynapseMediaSource.open({ database: { sqlite: synapseDb }, mediaStorePath: mediaStore });
    const importer = new SynapseImporter({
      source,
      imports: new MediaImports({ catalog: media.catalog }),
      localServerName: 'hs1.example',
    });
    const tally = await importer.run({ onEntry: (entry) => console.log(`${entry.outcome} ${entry.serverName}/${entry.mediaId}`) });
    console.log(`imported ${tally.media.imported} media, ${tally.bytes} bytes`);
    await source.close();

    expect(log).toContain('imported hs1.example/AAAApicture');
    expect(log.at(-1)).toBe('imported 5 media, 90 bytes');
    await media.close();
  });
});

describe('SynapseImporter on PostgreSQL when the database goes away', () => {
  it('stops with the error, keeps nothing half-imported, and a rerun from the saved cursor completes', async () => {
    const many: SynapseFixtureContent = {
      local: Array.from({ length: 450 }, (_, i) => ({ mediaId: `m${String(i).padStart(5, '0')}xyz`, type: 'text/plain', bytes: enc(`item ${i}`), createdTs: T0 + i, userId: '@alice:hs1.example' })),
      remote: [],
    };
    const db = await createPostgresDatabase(PG_URL, 'h24syn_gone');
    const manyStore = join(dir.path, 'many_store');
    try {
      await writeSynapsePostgres(db.url, 'legacy', many);
      await writeSynapseMediaStore(manyStore, many);
      const name = new URL(db.url).pathname.slice(1);
      const admin = new pg.Client({ connectionString: PG_URL });
      await admin.connect();
      // The sink holds the 10th item until the database is gone (no new connections, sessions ended).
      let calls = 0;
      let unblock: () => void = () => {};
      const gone = new Promise<void>((resolve) => (unblock = resolve));
      class GatedImports extends MediaImports {
        override async importMedia(record: ImportedMediaRecord, bytes: ByteSource | null, signal?: AbortSignal) {
          if (++calls === 10) {
            await admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
            await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
            unblock();
          }
          return super.importMedia(record, bytes, signal);
        }
      }
      const { media } = target();
      const sink = new GatedImports({ catalog: media.catalog });
      const source = await SynapseMediaSource.open({ database: { postgres: db.url }, mediaStorePath: manyStore });
      let saved: string | null = null;
      try {
        const importer = new SynapseImporter({ source, imports: sink, localServerName: HS, concurrency: 4 });
        await expect(importer.run({ onCursor: (c) => (saved = c) })).rejects.toThrow();
        await gone;
      } finally {
        await source.close();
      }
      const before = await mediaCount(media);
      expect(before).toBeGreaterThanOrEqual(10);
      expect(before).toBeLessThan(450);
      expect(saved).not.toBeNull();
      // Every record that exists is complete and served.
      for (let i = 0; i < 450; i++) {
        const id = `m${String(i).padStart(5, '0')}xyz`;
        if ((await media.catalog.records.getMedia(HS, id)) !== null) expect(await read(await (await media.getMedia(HS, id)).open())).toBe(`item ${i}`);
      }

      await admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
      await admin.end();
      const again = await SynapseMediaSource.open({ database: { postgres: db.url }, mediaStorePath: manyStore });
      try {
        const importer = new SynapseImporter({ source: again, imports: new MediaImports({ catalog: media.catalog }), localServerName: HS });
        const tally = await importer.run({ cursor: saved });
        expect(tally.media.imported + tally.media.present).toBe(450 - many.local.findIndex((m) => m.mediaId === JSON.parse(saved!).mediaId) - 1);
      } finally {
        await again.close();
      }
      expect(await mediaCount(media)).toBe(450);
      expect(await read(await (await media.getMedia(HS, 'm00449xyz')).open())).toBe('item 449');
    } finally {
      await db.drop();
    }
  }, 120_000);
});

async function mediaCount(media: MediaService): Promise<number> {
  let n = 0;
  for (let i = 0; i < 450; i++) if ((await media.catalog.records.getMedia(HS, `m${String(i).padStart(5, '0')}xyz`)) !== null) n++;
  return n;
}
