import { describe, expect, it } from 'vitest';
import {
  BlockedHashCsvReader,
  blockedHashListChunks,
  iterateBlockedHashes,
  parseBlockedHashCsv,
  parseBlockedHashJson,
  toBlockedHashes,
  type ParsedHashList,
} from './blocked-hash-list-format.js';
import type { BlockedHash, BlockedHashPage } from './ports/index.js';

const hash = (digit: string): string => digit.repeat(64);

const ENTRIES: BlockedHash[] = [
  { sha256: hash('a'), reason: 'plain', blockedBy: '@admin:example.org', blockedAt: 1_700_000_000_000 },
  { sha256: hash('b'), reason: 'has, a comma and "quotes"\r\nand a line break', blockedBy: null, blockedAt: 0 },
  { sha256: hash('c'), reason: null, blockedBy: 'tool', blockedAt: 2 ** 53 - 1 },
];

async function* from(entries: readonly BlockedHash[]): AsyncGenerator<BlockedHash> {
  yield* entries;
}

async function text(chunks: AsyncIterable<string>): Promise<string> {
  let all = '';
  for await (const chunk of chunks) all += chunk;
  return all;
}

function imported(entries: readonly BlockedHash[]): ParsedHashList {
  return { entries: entries.map((entry) => ({ sha256: entry.sha256, reason: entry.reason, blockedBy: entry.blockedBy, blockedAt: entry.blockedAt })), errors: [] };
}

describe('blocked-hash list formats', () => {
  it('round-trips every field through CSV, quoting as RFC 4180 says', async () => {
    const csv = await text(blockedHashListChunks(from(ENTRIES), 'csv'));
    expect(csv.split('\r\n')[0]).toBe('sha256,reason,blocked_by,blocked_ts');
    expect(csv).toContain(`${hash('b')},"has, a comma and ""quotes""\r\nand a line break",,0\r\n`);
    expect(parseBlockedHashCsv(csv)).toEqual(imported(ENTRIES));
  });

  it('round-trips every field through JSON', async () => {
    const json = await text(blockedHashListChunks(from(ENTRIES), 'json'));
    const value: unknown = JSON.parse(json);
    expect(value).toEqual({ hashes: ENTRIES.map((e) => ({ sha256: e.sha256, reason: e.reason, blocked_by: e.blockedBy, blocked_ts: e.blockedAt })) });
    expect(parseBlockedHashJson(value)).toEqual(imported(ENTRIES));
    expect(JSON.parse(await text(blockedHashListChunks(from([]), 'json')))).toEqual({ hashes: [] });
  });

  it('reads CSV in any chunking, also split inside quotes and CRLF', async () => {
    const csv = await text(blockedHashListChunks(from(ENTRIES), 'csv'));
    for (const size of [1, 2, 7]) {
      const reader = new BlockedHashCsvReader();
      for (let at = 0; at < csv.length; at += size) reader.push(csv.slice(at, at + size));
      expect(reader.end()).toEqual(imported(ENTRIES));
    }
  });

  it('takes hash-only lines without a header, LF line ends, upper-case hex, a BOM and blank lines', () => {
    const parsed = parseBlockedHashCsv(`\uFEFF${hash('A')}\n\n${hash('d')},why\n`);
    expect(parsed.errors).toEqual([]);
    expect(parsed.entries).toEqual([
      { sha256: hash('a'), reason: null, blockedBy: null, blockedAt: null },
      { sha256: hash('d'), reason: 'why', blockedBy: null, blockedAt: null },
    ]);
    // A header in another order, with fewer columns.
    expect(parseBlockedHashCsv(`reason,sha256\r\nr1,${hash('e')}`).entries).toEqual([{ sha256: hash('e'), reason: 'r1', blockedBy: null, blockedAt: null }]);
    // A header alone is an empty list, not an error.
    expect(parseBlockedHashCsv('sha256,reason,blocked_by,blocked_ts\r\n')).toEqual({ entries: [], errors: [] });
  });

  it('reports every malformed line with its number and keeps no entry', () => {
    const lines = [
      'sha256,reason,blocked_by,blocked_ts',
      `${hash('a')},fine,,1`,
      `${'g'.repeat(64)},bad hex,,1`,
      `${hash('b').slice(2)},short,,1`,
      `${hash('c')},too,many,1,fields`,
      `${hash('d')},"unterminated, then ok",x,1`,
      `${hash('e')},bad"quote,,1`,
      `${hash('f')},"closed"then text,,1`,
      `${hash('1')},"multi`,
      `line",,not-a-number`,
      `${hash('2')},,${'x'.repeat(256)},1`,
      `,no hash,,1`,
      `${hash('3')},"never closed`,
    ];
    const parsed = parseBlockedHashCsv(lines.join('\r\n'));
    expect(parsed.entries).toEqual([]);
    expect(parsed.errors).toEqual([
      { line: 3, error: 'sha256 is not hexadecimal' },
      { line: 4, error: 'sha256 has 62 hex digits, not 64' },
      { line: 5, error: '5 fields, expected 4' },
      { line: 7, error: 'a quote inside an unquoted field' },
      { line: 8, error: 'text after a closing quote' },
      { line: 9, error: 'blocked_ts is not a non-negative integer (ms since the epoch)' },
      { line: 11, error: 'blocked_by is longer than 255 characters' },
      { line: 12, error: 'sha256 is missing' },
      { line: 13, error: 'unterminated quoted field' },
    ]);
  });

  it('refuses an empty file, a bad header and too many positional fields', () => {
    for (const empty of ['', '\uFEFF', '\r\n\n']) {
      expect(parseBlockedHashCsv(empty)).toEqual({ entries: [], errors: [{ line: 1, error: 'the file is empty: expected a header line or hash lines' }] });
    }
    expect(parseBlockedHashCsv(`sha256,colour\r\n${hash('a')},red`).errors).toEqual([{ line: 1, error: 'unknown column "colour"' }]);
    expect(parseBlockedHashCsv(`sha256,sha256\r\n${hash('a')},${hash('a')}`).errors).toEqual([{ line: 1, error: 'a column is named twice' }]);
    expect(parseBlockedHashCsv(`${hash('a')},r,b,1,extra`).errors).toEqual([{ line: 1, error: '5 fields, expected 1 to 4' }]);
    // With a header, every record has exactly its columns.
    expect(parseBlockedHashCsv(`sha256,reason\r\n${hash('a')}`).errors).toEqual([{ line: 2, error: '1 fields, expected 2' }]);
  });

  it('caps the reported errors and counts the rest', () => {
    const parsed = parseBlockedHashCsv(Array.from({ length: 1005 }, () => 'nothex').join('\n'));
    expect(parsed.errors).toHaveLength(1001);
    expect(parsed.errors.at(-1)).toEqual({ line: 1005, error: 'and 5 more malformed lines' });
  });

  it('reports malformed JSON entries by position', () => {
    expect(parseBlockedHashJson([hash('a')]).errors).toEqual([{ line: 1, error: 'expected an object {"hashes": [...]}' }]);
    expect(parseBlockedHashJson({ hashes: 'no' }).errors).toHaveLength(1);
    const parsed = parseBlockedHashJson({
      hashes: [
        { sha256: hash('a') },
        { sha256: 'zz' },
        'not an object',
        { sha256: hash('b'), blocked_ts: -1 },
        { sha256: hash('c'), reason: 5 },
        { sha256: hash('d'), colour: 'red' },
        { reason: 'no hash' },
      ],
    });
    expect(parsed.entries).toEqual([]);
    expect(parsed.errors.map((error) => error.line)).toEqual([2, 3, 4, 5, 6, 7]);
    expect(parseBlockedHashJson({ hashes: [] })).toEqual({ entries: [], errors: [] });
  });

  it('fills in who and when where the list left them out', () => {
    const [missing, given] = toBlockedHashes(
      [
        { sha256: hash('a'), reason: null, blockedBy: null, blockedAt: null },
        { sha256: hash('b'), reason: 'r', blockedBy: 'other', blockedAt: 5 },
      ],
      { blockedBy: '@me:example.org', blockedAt: 99 },
    );
    expect(missing).toEqual({ sha256: hash('a'), reason: null, blockedBy: '@me:example.org', blockedAt: 99 });
    expect(given).toEqual({ sha256: hash('b'), reason: 'r', blockedBy: 'other', blockedAt: 5 });
  });

  it('pages through a list, from a hash, up to a limit', async () => {
    const all = ['1', '2', '3', '4', '5'].map((digit) => ({ sha256: hash(digit), reason: null, blockedBy: null, blockedAt: 0 }));
    const pages: BlockedHashPage[] = [];
    const list = async (page: BlockedHashPage): Promise<BlockedHash[]> => {
      pages.push(page);
      return all.filter((entry) => page.after === undefined || entry.sha256 > page.after).slice(0, page.limit);
    };
    const seen: string[] = [];
    for await (const entry of iterateBlockedHashes(list, { after: hash('1'), limit: 3 }, 2)) seen.push(entry.sha256[0]!);
    expect(seen).toEqual(['2', '3', '4']);
    expect(pages).toEqual([{ limit: 2, after: hash('1') }, { limit: 1, after: hash('3') }]);
    seen.length = 0;
    for await (const entry of iterateBlockedHashes(list, {}, 2)) seen.push(entry.sha256[0]!);
    expect(seen).toEqual(['1', '2', '3', '4', '5']);
  });
});
