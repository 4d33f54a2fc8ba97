import { describe, expect, it } from 'vitest';
import { parseCommandLine } from '../src/cli-main.js';
import { parseMediaEntryName } from '../src/commands/archive-format.js';
import { MmrManifestError, parseMmrManifest } from '../src/commands/archive-mmr.js';
import { humanBytes } from '../src/commands/archive-report.js';
import { isSafeEntryName } from '../src/commands/archive-tar.js';

describe('archive entry names', () => {
  it('accepts plain relative names and refuses any that would leave the target', () => {
    for (const name of ['a.png', 'example.org__abc.png', 'media/00000001.bin', 'dir/sub/file']) expect([name, isSafeEntryName(name)]).toEqual([name, true]);
    for (const name of ['', '../x', 'a/../../x', '/etc/passwd', 'C:evil', 'a\\..\\b', './a', 'a//b', 'a/', 'a\u0000b', 'a\nb']) {
      expect([name, isSafeEntryName(name)]).toEqual([name, false]);
    }
  });

  it('tells the media entries of the hsmedia format apart', () => {
    expect(parseMediaEntryName('media/00000012.json')).toEqual({ kind: 'item', sequence: 12 });
    expect(parseMediaEntryName('media/00000012.bin')).toEqual({ kind: 'data', sequence: 12 });
    expect(parseMediaEntryName('media/00000012.thumb-3.bin')).toEqual({ kind: 'thumbnail', sequence: 12, index: 3 });
    expect(parseMediaEntryName('media/12.bin')).toBeNull();
    expect(parseMediaEntryName('media/00000012.exe')).toBeNull();
  });
});

describe('the import report', () => {
  it('gives byte counts for people', () => {
    expect([0, 1000, 65_536, 201_528_523, 3 * 1024 ** 4].map(humanBytes)).toEqual(['0 B', '1000 B', '64 KiB', '192.2 MiB', '3 TiB']);
  });
});

describe('matrix-media-repo manifests', () => {
  const record = { name: 'a.png', file_name: 'hs.example__abc.png', size_bytes: 3, content_type: 'image/png', s3_url: '', sha256: 'A'.repeat(64), origin: 'hs.example', media_id: 'abc', created_ts: 5, uploader: '@u:hs.example' };

  it('reads version 1 (user_id) and version 2 (entity_id) and normalises hashes', () => {
    for (const manifest of [
      { version: 1, user_id: '@u:hs.example', created_ts: 1, media: { 'mxc://hs.example/abc': record } },
      { version: 2, entity_id: 'hs.example', created_ts: 1, media: { 'mxc://hs.example/abc': record } },
    ]) {
      const parsed = parseMmrManifest(JSON.stringify(manifest));
      expect(parsed.rejected).toEqual([]);
      expect(parsed.itemsByArchivedName.get('hs.example__abc.png')).toMatchObject({ mxc: 'mxc://hs.example/abc', sha256: 'a'.repeat(64), uploader: '@u:hs.example', createdAt: 5 });
    }
  });

  it('refuses unusable manifests as a whole and bad entries one by one', () => {
    expect(() => parseMmrManifest('{')).toThrow(MmrManifestError);
    expect(() => parseMmrManifest(JSON.stringify({ version: 3, entity_id: 'x', media: {} }))).toThrow(/unsupported version 3/);
    expect(() => parseMmrManifest(JSON.stringify({ version: 2, media: {} }))).toThrow(/no entity/);
    const parsed = parseMmrManifest(
      JSON.stringify({
        version: 2,
        entity_id: 'hs.example',
        media: {
          'mxc://hs.example/other': record,
          'mxc://hs.example/neg': { ...record, media_id: 'neg', file_name: 'n', size_bytes: -1 },
          'mxc://hs.example/typ': { ...record, media_id: 'typ', file_name: 't', content_type: 'image png' },
        },
      }),
    );
    expect(parsed.rejected.map((entry) => [entry.mxc, entry.kind])).toEqual([
      ['mxc://hs.example/other', 'invalid-entry'],
      ['mxc://hs.example/neg', 'invalid-entry'],
      ['mxc://hs.example/typ', 'unknown-content-type'],
    ]);
  });
});

describe('archive command lines', () => {
  it('parses the archive commands and refuses bad ones with a usage error', () => {
    expect(parseCommandLine(['import-mmr', 'a.tgz', 'b.tgz', '--dry-run', '--report', 'r.jsonl'])).toMatchObject({
      kind: 'run',
      archive: { action: 'import-mmr', parts: ['a.tgz', 'b.tgz'], dryRun: true, report: 'r.jsonl' },
    });
    expect(parseCommandLine(['export', '--user', '@u:hs.example', '--out', 'dir', '--part-size', '2G'])).toMatchObject({
      kind: 'run',
      archive: { action: 'export', scope: { kind: 'user', userId: '@u:hs.example' }, out: 'dir', partSize: 2 * 1024 ** 3, includeQuarantined: false },
    });
    expect(parseCommandLine(['import-archive', 'dir', '--max-file-size', '1G'])).toMatchObject({ kind: 'run', archive: { action: 'import-archive', maxFileBytes: 1024 ** 3 } });
    for (const argv of [
      ['import-mmr'],
      ['import-mmr', 'a', '--max-file-size', 'huge'],
      ['export', '--server', '--out', 'x', '--max-file-size', '1G'],
      ['import-archive', '--out', 'x', 'a'],
      ['export', '--out', 'x'],
      ['export', '--user', '@u:s', '--server', '--out', 'x'],
      ['export', '--user', 'nobody', '--out', 'x'],
      ['export', '--server'],
      ['export', '--server', '--out', 'x', '--part-size', 'big'],
      ['export', '--server', '--out', 'x', 'extra'],
      ['export', '--server', '--out', 'x', '--dry-run'],
      ['export', '--user', '@u:s', '--include-remote', '--out', 'x'],
      ['migrate', '--report', 'x'],
      ['hashes', 'export', '--user', '@u:s'],
    ]) {
      expect([argv, parseCommandLine(argv).kind]).toEqual([argv, 'usage-error']);
    }
  });
});
