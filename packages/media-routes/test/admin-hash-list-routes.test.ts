import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { StaticTokenVerifier, createClientAuth } from '@hsmedia/client-auth';
import { MediaAdmin, MediaService } from '@hsmedia/media-core';
import { FsBlobStore } from '@hsmedia/store-fs';
import { createSqliteMetadataStore, type SqliteMetadataStore } from '@hsmedia/store-sqlite';
import { listen, tmpdir } from '@hsmedia/test-fixtures';
import Koa from 'koa';
import { afterEach, describe, expect, it } from 'vitest';
import { createAdminRouter, mountMediaRoutes } from '../src/index.js';

const SERVER = 'media.test';
const ADMIN = { Authorization: 'Bearer admin_token' } as const;
const ALICE = { Authorization: 'Bearer alice_token' } as const;
const T0 = 1_750_000_000_000;
const DAY = 86_400_000;
const LIST = '/_hsmedia/admin/v1/blocked_hashes';
const hash = (digit: string): string => digit.repeat(64);
const sha256Of = (text: string): string => createHash('sha256').update(text).digest('hex');

interface Harness {
  readonly url: string;
  readonly metadata: SqliteMetadataStore;
  close(): Promise<void>;
}

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function start(maxHashListBytes?: number): Promise<Harness> {
  const dir = await tmpdir('hsmedia-hash-list-routes-');
  const clock = { now: () => T0 };
  const blobs = new FsBlobStore({ root: join(dir.path, 'blobs'), fsync: false });
  const metadata = await createSqliteMetadataStore({ path: join(dir.path, 'media.sqlite') });
  const media = new MediaService({ serverName: SERVER, blobs, metadata, maxUploadBytes: 1 << 20, clock });
  const admin = new MediaAdmin({ media, queries: metadata });
  const authenticate = createClientAuth({ verifier: new StaticTokenVerifier({ admin_token: '@admin:media.test', alice_token: '@alice:media.test' }) });
  const app = new Koa();
  app.silent = true;
  mountMediaRoutes(app, {
    media,
    authenticate,
    routers: [createAdminRouter({ admin, authenticate, isAdmin: (r) => r.userId === '@admin:media.test', ...(maxHashListBytes === undefined ? {} : { maxHashListBytes }) })],
  });
  const server = await listen(app);
  return {
    url: server.url,
    metadata,
    async close() {
      await server.close();
      await media.close();
      await metadata.close();
      await dir.cleanup();
    },
  };
}

function call(method: string, path: string, init: { headers?: Record<string, string>; body?: string | Uint8Array } = {}): Promise<Response> {
  return fetch(`${h!.url}${path}`, { method, headers: init.headers ?? ADMIN, ...(init.body === undefined ? {} : { body: init.body }) });
}

async function json(res: Response): Promise<Record<string, unknown>> {
  return (await res.json()) as Record<string, unknown>;
}

function importCsv(csv: string | Uint8Array, query = ''): Promise<Response> {
  return call('POST', `${LIST}/import${query}`, { headers: { ...ADMIN, 'Content-Type': 'text/csv' }, body: csv });
}

function importJson(value: unknown, query = ''): Promise<Response> {
  return call('POST', `${LIST}/import${query}`, { headers: { ...ADMIN, 'Content-Type': 'application/json' }, body: JSON.stringify(value) });
}

async function listed(query = ''): Promise<string[]> {
  const body = await json(await call('GET', `${LIST}${query}`));
  return (body['hashes'] as { sha256: string }[]).map((entry) => entry.sha256);
}

async function upload(body: string): Promise<string> {
  const res = await fetch(`${h!.url}/_matrix/media/v3/upload`, { method: 'POST', headers: { ...ALICE, 'Content-Type': 'text/plain' }, body });
  expect(res.status).toBe(200);
  return ((await res.json()) as { content_uri: string }).content_uri.split('/').pop()!;
}

async function downloadStatus(mediaId: string): Promise<number> {
  const res = await fetch(`${h!.url}/_matrix/client/v1/media/download/${SERVER}/${mediaId}`, { headers: ALICE });
  await res.arrayBuffer();
  return res.status;
}

async function audit(action: string): Promise<{ actor: string; target: string; reason: string | null }[]> {
  return (await json(await call('GET', `/_hsmedia/admin/v1/audit?action=${action}`)))['actions'] as { actor: string; target: string; reason: string | null }[];
}

describe('admin API: blocked-hash list', () => {
  it('refuses non-admins (403) and missing tokens (401) on every route, changing nothing', async () => {
    h = await start();
    const routes: [string, string][] = [
      ['GET', LIST],
      ['GET', `${LIST}?format=csv`],
      ['POST', `${LIST}/import`],
      ['PUT', `${LIST}/${hash('a')}`],
      ['DELETE', `${LIST}/${hash('a')}`],
      ['POST', `/_hsmedia/admin/v1/media/${SERVER}/abc/profile`],
      ['DELETE', `/_hsmedia/admin/v1/media/${SERVER}/abc/profile`],
    ];
    for (const [method, path] of routes) {
      const body = method === 'GET' || method === 'DELETE' ? {} : { body: JSON.stringify({ hashes: [{ sha256: hash('a') }] }) };
      const asUser = await call(method, path, { headers: ALICE, ...body });
      expect([method, path, asUser.status, (await json(asUser))['errcode']]).toEqual([method, path, 403, 'M_FORBIDDEN']);
      const anonymous = await call(method, path, { headers: {}, ...body });
      expect([path, anonymous.status]).toEqual([path, 401]);
      await anonymous.arrayBuffer();
    }
    expect(await listed()).toEqual([]);
  });

  it('blocks one hash with a reason (served nowhere after), lists it, unblocks it; each change audited', async () => {
    h = await start();
    const id = await upload('shared bytes');
    const sha = sha256Of('shared bytes');
    const put = await call('PUT', `${LIST}/${sha.toUpperCase()}`, { body: JSON.stringify({ reason: 'csam list' }) });
    expect([put.status, await json(put)]).toEqual([200, { already_present: false }]);
    expect(await json(await call('PUT', `${LIST}/${sha}`))).toEqual({ already_present: true });
    expect(await downloadStatus(id)).toBe(404);
    const page = await json(await call('GET', LIST));
    expect(page).toEqual({ hashes: [{ sha256: sha, reason: 'csam list', blocked_by: '@admin:media.test', blocked_ts: T0 }] });
    expect(await json(await call('DELETE', `${LIST}/${sha}?reason=false%20positive`))).toEqual({});
    const again = await call('DELETE', `${LIST}/${sha}`);
    expect([again.status, (await json(again))['errcode']]).toEqual([404, 'M_NOT_FOUND']);
    expect(await downloadStatus(id)).toBe(200);
    expect((await audit('block_hash'))[1]).toMatchObject({ actor: '@admin:media.test', target: sha, reason: 'csam list' });
    expect((await audit('unblock_hash'))[1]).toMatchObject({ actor: '@admin:media.test', target: sha, reason: 'false positive' });
    for (const bad of [`${LIST}/${hash('a').slice(1)}`, `${LIST}/${'g'.repeat(64)}`]) {
      const res = await call('PUT', bad);
      expect([bad, res.status, (await json(res))['errcode']]).toEqual([bad, 400, 'M_INVALID_PARAM']);
    }
  });

  it('pages with limit and next_batch, and searches by hash prefix or reason', async () => {
    h = await start();
    const entries = ['1', '2', '3', 'a', 'b'].map((digit) => ({ sha256: hash(digit), reason: digit === 'b' ? 'Spam Wave' : null }));
    expect(await json(await importJson({ hashes: entries }))).toEqual({ imported: 5, already_present: 0 });
    const first = await json(await call('GET', `${LIST}?limit=2`));
    expect((first['hashes'] as unknown[]).length).toBe(2);
    expect(first['next_batch']).toBe(hash('2'));
    expect(await listed(`?limit=2&from=${hash('2')}`)).toEqual([hash('3'), hash('a')]);
    const last = await json(await call('GET', `${LIST}?limit=2&from=${hash('a')}`));
    expect(last).toEqual({ hashes: [{ sha256: hash('b'), reason: 'Spam Wave', blocked_by: '@admin:media.test', blocked_ts: T0 }] });
    expect(await listed('?q=aa')).toEqual([hash('a')]);
    expect(await listed('?q=spam%20w')).toEqual([hash('b')]);
    expect(await listed('?q=100%25')).toEqual([]);
    for (const bad of ['?limit=0', '?limit=1001', '?from=abc', '?format=xml', '?q=', `?q=${'x'.repeat(256)}`, '?limit=1&limit=2']) {
      const res = await call('GET', `${LIST}${bad}`);
      expect([bad, res.status, (await json(res))['errcode']]).toEqual([bad, 400, 'M_INVALID_PARAM']);
    }
  });

  it('exports CSV (RFC 4180, streamed) that imports back to the same list', async () => {
    h = await start();
    const reason = 'comma, "quote"\r\nnewline';
    await importJson({ hashes: [{ sha256: hash('c'), reason, blocked_by: 'other.example', blocked_ts: 5 }, { sha256: hash('d') }] });
    const res = await call('GET', `${LIST}?format=csv`);
    expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
    const csv = await res.text();
    expect(csv).toBe(`sha256,reason,blocked_by,blocked_ts\r\n${hash('c')},"comma, ""quote""\r\nnewline",other.example,5\r\n${hash('d')},,@admin:media.test,${T0}\r\n`);
    expect(await (await call('GET', `${LIST}?format=csv&q=dd&limit=1`)).text()).toBe(`sha256,reason,blocked_by,blocked_ts\r\n${hash('d')},,@admin:media.test,${T0}\r\n`);
    for (const sha of [hash('c'), hash('d')]) expect((await call('DELETE', `${LIST}/${sha}`)).status).toBe(200);
    expect(await json(await importCsv(csv, '?reason=shared%20list'))).toEqual({ imported: 2, already_present: 0 });
    expect(await (await call('GET', `${LIST}?format=csv`)).text()).toBe(csv);
    expect((await audit('import_hashes'))[0]).toMatchObject({ actor: '@admin:media.test', target: 'blocked_hashes', reason: 'shared list' });
  });

  it('imports idempotently: duplicates in the list and hashes already listed are fine', async () => {
    h = await start();
    expect(await json(await importCsv(`${hash('a')}\n${hash('a')}\n${hash('b')},first\n`))).toEqual({ imported: 2, already_present: 0 });
    expect(await json(await importJson({ hashes: [{ sha256: hash('b'), reason: 'second' }, { sha256: hash('c') }], reason: 'why' }))).toEqual({ imported: 1, already_present: 1 });
    expect((await json(await call('GET', `${LIST}?q=bbbb`)))['hashes']).toMatchObject([{ reason: 'first' }]);
    expect(await json(await importJson({ hashes: [] }))).toEqual({ imported: 0, already_present: 0 });
  });

  it('reports malformed lines one by one and imports nothing', async () => {
    h = await start();
    const csv = await importCsv(`sha256,reason\r\n${hash('a')},ok\r\nnothex,x\r\n${hash('b')},"open\r\n${hash('c')},x,extra\r\n`);
    expect(csv.status).toBe(400);
    const csvBody = await json(csv);
    expect(csvBody['errcode']).toBe('M_INVALID_PARAM');
    expect(csvBody['errors']).toEqual([
      { line: 3, error: 'sha256 is not hexadecimal' },
      { line: 4, error: 'unterminated quoted field' },
    ]);
    const bad = await importJson({ hashes: [{ sha256: hash('a') }, { sha256: hash('b').slice(1) }, { sha256: hash('c'), blocked_ts: 'yesterday' }] });
    expect(bad.status).toBe(400);
    expect(await json(bad)).toMatchObject({ errcode: 'M_BAD_JSON', errors: [{ line: 2 }, { line: 3 }] });
    for (const [body, errcode] of [
      ['', 'M_INVALID_PARAM'],
      ['\uFEFF', 'M_INVALID_PARAM'],
    ] as const) {
      const res = await importCsv(body);
      expect([res.status, (await json(res))['errcode']]).toEqual([400, errcode]);
    }
    const notUtf8 = await importCsv(new Uint8Array([0x61, 0xff, 0x0a]));
    expect([notUtf8.status, (await json(notUtf8))['errcode']]).toEqual([400, 'M_INVALID_PARAM']);
    const notJson = await call('POST', `${LIST}/import`, { headers: { ...ADMIN, 'Content-Type': 'application/json' }, body: '{"hashes": [' });
    expect([notJson.status, (await json(notJson))['errcode']]).toEqual([400, 'M_NOT_JSON']);
    const otherType = await call('POST', `${LIST}/import`, { headers: { ...ADMIN, 'Content-Type': 'image/png' }, body: 'x' });
    expect([otherType.status, (await json(otherType))['errcode']]).toEqual([400, 'M_INVALID_PARAM']);
    expect(await listed()).toEqual([]);
    expect(await audit('import_hashes')).toEqual([]);
  });

  it('bounds the import body (413 M_TOO_LARGE, nothing imported)', async () => {
    h = await start(1024);
    const lines = Array.from({ length: 20 }, (_, index) => index.toString(16).padStart(64, '0')).join('\n');
    const res = await importCsv(lines);
    expect([res.status, (await json(res))['errcode']]).toEqual([413, 'M_TOO_LARGE']);
    const jsonRes = await importJson({ hashes: Array.from({ length: 20 }, (_, index) => ({ sha256: index.toString(16).padStart(64, '0') })) });
    expect([jsonRes.status, (await json(jsonRes))['errcode']]).toEqual([413, 'M_TOO_LARGE']);
    expect(await listed()).toEqual([]);
  });
});

describe('admin API: profile media (keep_profiles)', () => {
  it('flags media as profile media; bulk deletions keep it unless keep_profiles=false', async () => {
    h = await start();
    const avatar = await upload('avatar');
    const other = await upload('other');
    const flag = await call('POST', `/_hsmedia/admin/v1/media/${SERVER}/${avatar}/profile?reason=avatar`);
    expect([flag.status, await json(flag)]).toEqual([200, {}]);
    expect(((await json(await call('GET', `/_synapse/admin/v1/media/${SERVER}/${avatar}`)))['media_info'] as Record<string, unknown>)['profile']).toBe(true);
    expect((await audit('mark_profile'))[0]).toMatchObject({ target: `mxc://${SERVER}/${avatar}`, reason: 'avatar' });

    const deleteOld = (extra: string) => call('POST', `/_synapse/admin/v1/media/delete?before_ts=${T0 + 1}${extra}`);
    expect(await json(await deleteOld(''))).toEqual({ deleted_media: [other], total: 1 });
    expect(await json(await call('DELETE', '/_synapse/admin/v1/users/@alice:media.test/media'))).toEqual({ deleted_media: [], total: 0 });
    expect(await json(await deleteOld('&keep_profiles=true'))).toEqual({ deleted_media: [], total: 0 });

    // A remote avatar stays in the remote cache through purges too.
    await h.metadata.insertMedia({
      serverName: 'remote.example', mediaId: 'avatar', blobId: null, contentType: 'image/png', uploadName: null, size: null, sha256: null,
      userId: null, createdAt: T0 - 50 * DAY, uploadedAt: T0 - 50 * DAY, expiresAt: null, authenticated: false, quarantined: false, lastAccessAt: null,
    });
    expect((await call('POST', '/_hsmedia/admin/v1/media/remote.example/avatar/profile')).status).toBe(200);
    const purge = (extra: string) => call('POST', `/_synapse/admin/v1/purge_media_cache?before_ts=${T0 - 30 * DAY}${extra}`);
    expect(await json(await purge(''))).toEqual({ deleted: 0 });
    expect(await json(await purge('&keep_profiles=false'))).toEqual({ deleted: 1 });

    expect(await json(await call('DELETE', `/_hsmedia/admin/v1/media/${SERVER}/${avatar}/profile`))).toEqual({});
    expect(await json(await deleteOld(''))).toEqual({ deleted_media: [avatar], total: 1 });
    const unknown = await call('POST', `/_hsmedia/admin/v1/media/${SERVER}/nope/profile`);
    expect([unknown.status, (await json(unknown))['errcode']]).toEqual([404, 'M_NOT_FOUND']);
    const badServer = await call('POST', '/_hsmedia/admin/v1/media/bad..server/x/profile');
    expect([badServer.status, (await json(badServer))['errcode']]).toEqual([400, 'M_INVALID_PARAM']);
  });
});
