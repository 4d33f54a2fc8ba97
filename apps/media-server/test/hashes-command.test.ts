import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSqliteMetadataStore } from '@hsmedia/store-sqlite';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseCommandLine, runCommand, type CliIo } from '../src/cli-main.js';
import { CLI_ACTOR } from '../src/commands/hashes-command.js';
import { tempDir } from './helpers.js';

const hash = (digit: string): string => digit.repeat(64);

let dir: { path: string; cleanup(): Promise<void> };
let configPath: string;

beforeEach(async () => {
  dir = await tempDir('hsmedia-hashes-cli-');
  configPath = join(dir.path, 'config.yaml');
  await writeFile(configPath, `database:\n  sqlite:\n    path: ${join(dir.path, 'media.sqlite')}\nmedia_store:\n  filesystem:\n    path: ${join(dir.path, 'media')}\n`);
});
afterEach(async () => {
  await dir.cleanup();
});

function sink(): CliIo & { out(): string; err(): string } {
  let out = '';
  let err = '';
  return {
    stdout: { write: (text: string) => (out += text) },
    stderr: { write: (text: string) => (err += text) },
    cwd: dir.path,
    out: () => out,
    err: () => err,
  };
}

async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = sink();
  const code = await runCommand([...args, '--config', configPath], io);
  return { code, out: io.out(), err: io.err() };
}

describe('hsmedia-server hashes', () => {
  it('imports a CSV list into the configured database, exports it as CSV and JSON, and records the import', async () => {
    const csv = join(dir.path, 'list.csv');
    await writeFile(csv, `\uFEFFsha256,reason,blocked_by,blocked_ts\r\n${hash('a')},"shared, by a friend",friend.example,5\r\n${hash('B')},,,\r\n${hash('a')},,,\r\n`);
    expect(await run('hashes', 'import', 'list.csv', '--dry-run')).toEqual({ code: 0, out: 'dry run: 2 would be imported, 0 already present\n', err: '' });
    expect(await run('hashes', 'import', csv, '--reason', 'from friend.example')).toEqual({ code: 0, out: 'imported 2, already present 0\n', err: '' });
    expect((await run('hashes', 'import', csv)).out).toBe('imported 0, already present 2\n');
    expect((await run('hashes', 'import', csv, '--dry-run')).out).toBe('dry run: 0 would be imported, 2 already present\n');

    const exported = await run('hashes', 'export', '--format', 'csv');
    expect(exported.code).toBe(0);
    const lines = exported.out.split('\r\n');
    expect(lines[0]).toBe('sha256,reason,blocked_by,blocked_ts');
    expect(lines[1]).toBe(`${hash('a')},"shared, by a friend",friend.example,5`);
    expect(lines[2]).toMatch(new RegExp(`^${hash('b')},,${CLI_ACTOR},\\d+$`));

    expect(await run('hashes', 'export', '--out', 'list.json')).toEqual({ code: 0, out: '', err: `exported 2 blocked hashes to ${join(dir.path, 'list.json')}\n` });
    const json = JSON.parse(await readFile(join(dir.path, 'list.json'), 'utf8')) as { hashes: { sha256: string; reason: string | null }[] };
    expect(json.hashes.map((entry) => [entry.sha256, entry.reason])).toEqual([[hash('a'), 'shared, by a friend'], [hash('b'), null]]);
    // No temporary file left beside it.
    expect((await readdir(dir.path)).filter((name) => name.includes('partial'))).toEqual([]);

    const store = await createSqliteMetadataStore({ path: join(dir.path, 'media.sqlite') });
    try {
      const actions = await store.listAdminActions({ limit: 10, action: 'import_hashes' });
      expect(actions.map((entry) => [entry.actor, entry.target, entry.reason])).toEqual([
        [CLI_ACTOR, 'blocked_hashes', null],
        [CLI_ACTOR, 'blocked_hashes', 'from friend.example'],
      ]);
    } finally {
      await store.close();
    }
  });

  it('round-trips a JSON export into another database', async () => {
    const json = join(dir.path, 'in.json');
    await writeFile(json, JSON.stringify({ hashes: [{ sha256: hash('c'), reason: 'r', blocked_by: null, blocked_ts: 7 }] }));
    expect((await run('hashes', 'import', json)).code).toBe(0);
    const exported = await run('hashes', 'export');
    expect(JSON.parse(exported.out)).toEqual({ hashes: [{ sha256: hash('c'), reason: 'r', blocked_by: CLI_ACTOR, blocked_ts: 7 }] });
  });

  it('reports malformed lines as FILE:line and imports nothing', async () => {
    const csv = join(dir.path, 'bad.txt');
    await writeFile(csv, `${hash('a')}\nnot-a-hash\n${hash('b')},"unterminated\n`);
    const result = await run('hashes', 'import', 'bad.txt', '--format', 'csv');
    expect(result.code).toBe(1);
    expect(result.err).toBe('bad.txt:2: sha256 is not hexadecimal\nbad.txt:3: unterminated quoted field\nhsmedia-server: 2 malformed line(s); nothing was imported\n');
    await writeFile(join(dir.path, 'empty.csv'), '');
    expect((await run('hashes', 'import', 'empty.csv')).err).toContain('empty.csv:1: the file is empty');
    await writeFile(join(dir.path, 'broken.json'), '{"hashes": [');
    expect((await run('hashes', 'import', 'broken.json')).err).toContain('broken.json:1: not valid JSON');
    expect((await run('hashes', 'import', 'bad.txt')).err).toContain('give --format json or --format csv');
    expect((await run('hashes', 'import', 'missing.csv')).code).toBe(1);
    expect((await run('hashes', 'export')).out).toBe('{"hashes":[]}\n');
  });

  it('refuses bad command lines with a usage error', () => {
    for (const argv of [
      ['hashes'],
      ['hashes', 'list'],
      ['hashes', 'import'],
      ['hashes', 'import', 'a.csv', 'b.csv'],
      ['hashes', 'export', 'extra'],
      ['hashes', 'export', '--format', 'xml'],
      ['hashes', 'export', '--dry-run'],
      ['hashes', 'import', 'a.csv', '--out', 'x'],
      ['migrate', '--format', 'csv'],
      ['migrate', 'extra'],
    ]) {
      expect([argv, parseCommandLine(argv).kind]).toEqual([argv, 'usage-error']);
    }
    expect(parseCommandLine(['hashes', 'import', 'a.csv', '--dry-run'])).toMatchObject({ kind: 'run', command: 'hashes', hashes: { action: 'import', file: 'a.csv', dryRun: true } });
  });
});
