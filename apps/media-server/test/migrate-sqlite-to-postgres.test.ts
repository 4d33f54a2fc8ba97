import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { MediaRecord } from '@hsmedia/media-core';
import { createPostgresMetadataStore } from '@hsmedia/store-postgres';
import { createSqliteMetadataStore } from '@hsmedia/store-sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand, type CliIo } from '../src/cli-main.js';
import { tempDir } from './helpers.js';
import { openPostgresTestEnv, PG_URL, type PostgresTestEnv } from '@hsmedia/test-fixtures/postgres';

const env: PostgresTestEnv = await openPostgresTestEnv('PostgreSQL tests of media-server');

function io(cwd: string): CliIo & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    cwd,
    stdout: { write: (text: string) => (out += text) },
    stderr: { write: (text: string) => (err += text) },
    out: () => out,
    err: () => err,
  };
}

function record(index: number, overrides: Partial<MediaRecord> = {}): MediaRecord {
  return {
    serverName: index % 3 === 0 ? 'remote.example:8448' : 'media.test',
    mediaId: `Media${String(index).padStart(6, '0')}`,
    blobId: `Blob${String(index).padStart(8, '0')}`,
    contentType: 'image/png',
    uploadName: index % 2 === 0 ? `ünïcödé ${index}.png` : null,
    size: 1000 + index,
    sha256: randomBytes(32).toString('hex'),
    userId: index % 3 === 0 ? null : '@alice:media.test',
    createdAt: 1_700_000_000_000 + index,
    uploadedAt: 1_700_000_000_500 + index,
    expiresAt: null,
    authenticated: index % 2 === 1,
    quarantined: index % 7 === 0,
    lastAccessAt: index % 5 === 0 ? null : 1_700_000_100_000 + index,
    ...overrides,
  };
}

describe.skipIf(env.unavailable !== undefined)('hsmedia-server migrate-sqlite-to-postgres', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let sqlitePath: string;
  const records: MediaRecord[] = [];

  beforeAll(async () => {
    dir = await tempDir('hsmedia-copy-');
    sqlitePath = join(dir.path, 'media.db');
    const sqlite = await createSqliteMetadataStore({ path: sqlitePath });
    for (let index = 0; index < 1234; index++) records.push(record(index));
    records.push(
      record(5000, { blobId: null, contentType: null, size: null, sha256: null, uploadedAt: null, expiresAt: 1_800_000_000_000 }),
    );
    for (const item of records) expect(await sqlite.insertMedia(item)).toBe(true);
    await sqlite.putServerKeys([
      { serverName: 'remote.example:8448', keyId: 'ed25519:a', publicKey: 'AAAA', validUntilTs: 1_800_000_000_000, fetchedAt: 1 },
      { serverName: 'remote.example:8448', keyId: 'ed25519:b', publicKey: 'BBBB', validUntilTs: 1_800_000_000_001, fetchedAt: 2 },
    ]);
    await sqlite.close();
  });

  afterAll(async () => {
    await env.dispose();
    await dir?.cleanup();
  });

  it('copies every row in batches, exactly, and a second run skips them all', async () => {
    const schema = await env.createSchema();
    const first = io(dir.path);
    const args = ['migrate-sqlite-to-postgres', '--from', 'media.db', '--to', PG_URL, '--schema', schema, '--batch-size', '100'];
    expect(await runCommand(args, first)).toBe(0);
    expect(first.out()).toContain(`media: ${records.length} rows in SQLite, ${records.length} inserted, 0 already present`);
    expect(first.out()).toContain('server_keys: 2 rows in SQLite, 2 inserted');
    expect(first.out()).toContain('counts verified');
    expect(first.out() + first.err()).not.toContain(PG_URL);

    const postgres = await createPostgresMetadataStore({ url: PG_URL, searchPath: schema });
    try {
      for (const item of records) expect(await postgres.getMedia(item.serverName, item.mediaId)).toStrictEqual(item);
      expect(await postgres.getServerKeys('remote.example:8448')).toHaveLength(2);
    } finally {
      await postgres.close();
    }

    const second = io(dir.path);
    expect(await runCommand(args, second)).toBe(0);
    expect(second.out()).toContain(`media: ${records.length} rows in SQLite, 0 inserted, ${records.length} already present, ${records.length} in PostgreSQL`);
  }, 60_000);

  it('keeps rows PostgreSQL already had, and takes --to and --schema from a postgres config', async () => {
    const schema = await env.createSchema();
    const postgres = await createPostgresMetadataStore({ url: PG_URL, searchPath: schema });
    const existing = record(1, { contentType: 'text/plain' });
    await postgres.insertMedia(existing);
    await postgres.insertMedia(record(99_999));
    await postgres.close();
    const configPath = join(dir.path, 'pg.yaml');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(configPath, `database:\n  postgres:\n    url: ${PG_URL}\n    schema: ${schema}\n`);
    const out = io(dir.path);
    expect(await runCommand(['migrate-sqlite-to-postgres', '--config', configPath, '--from', sqlitePath], out)).toBe(0);
    expect(out.out()).toContain(`media: ${records.length} rows in SQLite, ${records.length - 1} inserted, 1 already present, ${records.length + 1} in PostgreSQL`);
    const check = await createPostgresMetadataStore({ url: PG_URL, searchPath: schema });
    expect((await check.getMedia(existing.serverName, existing.mediaId))?.contentType).toBe('text/plain');
    await check.close();
  }, 60_000);

  it('refuses a missing SQLite file, missing arguments and options of other commands', async () => {
    const missing = io(dir.path);
    expect(await runCommand(['migrate-sqlite-to-postgres', '--from', 'nope.db', '--to', PG_URL], missing)).toBe(1);
    expect(missing.err()).toContain('SQLite database not found');
    const noTo = io(dir.path);
    expect(await runCommand(['migrate-sqlite-to-postgres', '--from', sqlitePath], noTo)).toBe(2);
    expect(noTo.err()).toContain('needs --from SQLITE_FILE and --to POSTGRES_URL');
    const badTo = io(dir.path);
    expect(await runCommand(['migrate-sqlite-to-postgres', '--from', sqlitePath, '--to', 'mysql://x'], badTo)).toBe(2);
    const badBatch = io(dir.path);
    expect(await runCommand(['migrate-sqlite-to-postgres', '--from', sqlitePath, '--to', PG_URL, '--batch-size', '0'], badBatch)).toBe(2);
    const stray = io(dir.path);
    expect(await runCommand(['migrate', '--from', sqlitePath], stray)).toBe(2);
    expect(stray.err()).toContain('--from is an option of migrate-sqlite-to-postgres only');
  });

  it('migrate creates the PostgreSQL schema from a postgres config and names the database without its password', async () => {
    const schema = await env.createSchema();
    const configPath = join(dir.path, 'migrate.yaml');
    const { writeFile } = await import('node:fs/promises');
    const url = PG_URL.replace('postgres://postgres@', 'postgres://postgres:not-needed@');
    await writeFile(configPath, `database:\n  postgres:\n    url: ${url}\n    schema: ${schema}\n`);
    const out = io(dir.path);
    expect(await runCommand(['migrate', '--config', configPath], out)).toBe(0);
    expect(out.out()).toMatch(/database ready: postgres postgres:\/\/postgres@127\.0\.0\.1:5432\/test schema t_/);
    expect(out.out()).not.toContain('not-needed');
    const tables = (await env.admin.raw('select tablename from pg_tables where schemaname = ?', [schema])) as {
      rows: { tablename: string }[];
    };
    expect(tables.rows.map((row) => row.tablename)).toEqual(expect.arrayContaining(['media', 'server_keys', 'job_leases']));
  });
});
