/**
 * Read-through from a REAL Synapse's media (issue 24, item 2): the fixture of synapse-fixture.ts
 * (homeserver.db and media_store kept from a live Synapse 1.160 driven through its APIs) is what
 * hsmedia reads. Every item Synapse served is served by hsmedia byte for byte through the client
 * v1, legacy v3 and federation APIs before anything was imported, and keeps being served after
 * Synapse's files are gone; what Synapse refused (quarantine, never uploaded) is refused the same
 * way; the backfill imports the rest and reports progress; a missing file and an unreachable
 * database are clean errors that recover. Skips loudly when Synapse cannot be installed.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { signXMatrixRequest } from '@hsmedia/signing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type StartedServer } from '../../src/server.js';
import { tempDir, testConfig } from '../helpers.js';
import { copySynapseFixture, loadSynapseFixture, type FixtureItem, type SynapseFixture } from './synapse-fixture.js';
import { installSynapse } from './synapse-harness.js';

const loaded = await loadSynapseFixture();
if (loaded.fixture === undefined) {
  const line = '!'.repeat(100);
  // Loud on purpose: a skipped integration test must not pass unnoticed.
  process.stderr.write(`\n${line}\n!! SKIPPED: the Synapse read-through test has no real-Synapse fixture:\n!! ${loaded.reason.replaceAll('\n', '\n!! ')}\n${line}\n\n`);
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');
const ADMIN_TOKEN = 'admin_token';

describe.skipIf(loaded.fixture === undefined)('read-through from a real Synapse', { timeout: 120_000 }, () => {
  const source = loaded.fixture!;
  const serverName = source.serverName;
  let dir: { path: string; cleanup(): Promise<void> };
  let peer: StartedServer;
  const started: StartedServer[] = [];

  /** hsmedia on a private copy of the fixture, as server A (Synapse's server name). */
  async function hsmediaOn(fixture: SynapseFixture, name: string, backfill: Record<string, unknown> = { enabled: false }): Promise<StartedServer> {
    const base = join(dir.path, name);
    const server = await startServer(
      testConfig(base, {
        server_name: serverName,
        log_level: 'error',
        auth: { tokens: { alice_token: `@alice:${serverName}`, [ADMIN_TOKEN]: `@admin:${serverName}` } },
        admins: [`@admin:${serverName}`],
        federation: { destinations: { 'peer.test': peer.url }, ip_range_allowlist: ['127.0.0.1/32'] },
        synapse_read_through: { database: { sqlite: fixture.databasePath }, media_store_path: fixture.mediaStorePath, backfill },
      }),
    );
    started.push(server);
    return server;
  }

  const get = async (server: StartedServer, path: string, headers: Record<string, string> = { Authorization: 'Bearer alice_token' }): Promise<{ status: number; type: string | null; body: Buffer; json: () => Record<string, unknown> }> => {
    const response = await fetch(`${server.url}${path}`, { headers });
    const body = Buffer.from(await response.arrayBuffer());
    return { status: response.status, type: response.headers.get('content-type'), body, json: () => JSON.parse(body.toString('utf8')) as Record<string, unknown> };
  };
  const download = (server: StartedServer, item: FixtureItem, query = ''): ReturnType<typeof get> => get(server, `/_matrix/client/v1/media/download/${item.serverName}/${item.mediaId}${query}`);
  const byLabel = (label: string): FixtureItem => source.items.find((item) => item.label === label)!;
  const local = source.items.filter((item) => item.origin === 'local');

  /** Synapse's own Python (it has sqlite3) runs SQL on a copy: the fixture's media are all `authenticated`. */
  async function synapseSql(database: string, sql: string, ...params: string[]): Promise<void> {
    const install = installSynapse();
    const script = 'import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\nc.execute(sys.argv[2], sys.argv[3:])\nc.commit()';
    await promisify(execFile)(install.python!, ['-c', script, database, sql, ...params]);
  }

  beforeAll(async () => {
    dir = await tempDir('hsmedia-read-through-');
    peer = await startServer(testConfig(join(dir.path, 'peer'), { server_name: 'peer.test', log_level: 'warn', auth: { tokens: { t: '@p:peer.test' } } }));
  }, 120_000);

  afterAll(async () => {
    for (const server of [...started, peer]) await server?.close();
    await dir?.cleanup();
  });

  it('serves every local item as Synapse did, before any import, through client v1, legacy v3 and federation; then without Synapse', async () => {
    const fixture = await copySynapseFixture(source, join(dir.path, 'copy-a'));
    // One item as if uploaded before Synapse froze the legacy endpoints: served on them, like Synapse would.
    await synapseSql(fixture.databasePath, 'UPDATE local_media_repository SET authenticated = 0 WHERE media_id = ?', byLabel('png-rgb').mediaId);
    const server = await hsmediaOn(fixture, 'a');

    // Federation first, for an item nobody asked for yet: read-through works for other servers too.
    const federated = byLabel('unicode-name');
    const uri = `/_matrix/federation/v1/media/download/${federated.mediaId}`;
    const overFederation = await get(server, uri, { Authorization: signXMatrixRequest({ method: 'GET', uri, origin: 'peer.test', destination: serverName }, peer.signingKey) });
    expect(overFederation.status, overFederation.body.toString().slice(0, 300)).toBe(200);
    expect(overFederation.type).toMatch(/^multipart\/mixed/);
    const bytes = (await get(server, `/_matrix/client/v1/media/download/${serverName}/${federated.mediaId}`)).body;
    expect(sha256(bytes)).toBe(federated.sha256);
    expect(overFederation.body.includes(bytes)).toBe(true);

    // A thumbnail as the first request of an item (client v1, and federation for another one).
    const firstThumb = await get(server, `/_matrix/client/v1/media/thumbnail/${serverName}/${byLabel('jpeg-exif').mediaId}?width=32&height=32&method=crop`);
    expect(firstThumb.status).toBe(200);
    expect(firstThumb.type).toBe('image/jpeg');
    const thumbUri = `/_matrix/federation/v1/media/thumbnail/${byLabel('webp-still').mediaId}?width=32&height=32&method=crop`;
    const federatedThumb = await get(server, thumbUri, { Authorization: signXMatrixRequest({ method: 'GET', uri: thumbUri, origin: 'peer.test', destination: serverName }, peer.signingKey) });
    expect(federatedThumb.status, federatedThumb.body.toString().slice(0, 300)).toBe(200);
    expect(federatedThumb.type).toMatch(/^multipart\/mixed/);

    // Legacy v3: served for the unauthenticated item, refused like Synapse for the frozen ones.
    const legacy = await get(server, `/_matrix/media/v3/download/${serverName}/${byLabel('png-rgb').mediaId}`, {});
    expect(legacy.status).toBe(200);
    expect(sha256(legacy.body)).toBe(byLabel('png-rgb').sha256);
    expect((await get(server, `/_matrix/media/v3/download/${serverName}/${byLabel('png-rgba').mediaId}`, {})).status).toBe(404);

    for (const item of local) {
      const answer = await download(server, item, '?timeout_ms=0');
      expect(answer.status, `${item.label}: ${answer.body.toString().slice(0, 200)}`).toBe(item.downloadStatus);
      if (item.downloadStatus === 200) expect(sha256(answer.body), item.label).toBe(item.sha256);
      if (item.downloadStatus === 504) expect(answer.json()['errcode']).toBe('M_NOT_YET_UPLOADED');
      for (const thumbnail of item.downloadStatus === 200 ? item.thumbnails : []) {
        const thumb = await get(server, `/_matrix/client/v1/media/thumbnail/${serverName}/${item.mediaId}?${thumbnail.query}`);
        expect(thumb.status, `${item.label} ${thumbnail.query}`).toBe(200);
        expect(thumb.type).toMatch(/^image\//);
      }
    }
    // Synapse's thumbnails came with the media: the 1x1 PNG keeps its unclamped crops, the animated GIF its image/webp rows.
    const rows = async (label: string): Promise<string[]> =>
      (await server.media.catalog.thumbnails.listThumbnails(serverName, byLabel(label).mediaId)).map((row) => `${row.width}x${row.height} ${row.method} ${row.contentType}${row.animated === true ? ' animated' : ''}`);
    expect(await rows('png-1x1')).toEqual(expect.arrayContaining(['32x32 crop image/png', '96x96 crop image/png']));
    expect((await rows('gif-animated')).some((row) => row.endsWith('image/webp animated'))).toBe(true);

    // Synapse's files gone: everything already imported is served from hsmedia's own store.
    await rm(fixture.mediaStorePath, { recursive: true, force: true });
    for (const item of local.filter((entry) => entry.downloadStatus === 200)) {
      const answer = await download(server, item);
      expect(answer.status, item.label).toBe(200);
      expect(sha256(answer.body), item.label).toBe(item.sha256);
    }
  });

  it('a missing file is a clear 404, reported by the admin API; an unreachable database is 503 and recovers; a reservation made on Synapse takes its upload here', async () => {
    const fixture = await copySynapseFixture(source, join(dir.path, 'copy-b'));
    const item = byLabel('binary-5mib');
    await rm(join(fixture.mediaStorePath, 'local_content', item.mediaId.slice(0, 2), item.mediaId.slice(2, 4), item.mediaId.slice(4)));
    await rename(fixture.databasePath, `${fixture.databasePath}.away`);
    const server = await hsmediaOn(fixture, 'b');

    const unreachable = await download(server, byLabel('png-rgb'));
    expect(unreachable.status).toBe(503);
    expect(unreachable.json()).toMatchObject({ errcode: 'M_UNKNOWN' });
    await rename(`${fixture.databasePath}.away`, fixture.databasePath);
    const recovered = await download(server, byLabel('png-rgb'));
    expect(recovered.status).toBe(200);
    expect(sha256(recovered.body)).toBe(byLabel('png-rgb').sha256);

    const missing = await download(server, item);
    expect(missing.status).toBe(404);
    expect(missing.json()).toMatchObject({ errcode: 'M_NOT_FOUND', error: expect.stringContaining("missing from Synapse's media store") });
    const report = (await get(server, '/_hsmedia/admin/v1/import/synapse', { Authorization: `Bearer ${ADMIN_TOKEN}` })).json();
    expect(report['errors']).toEqual(expect.arrayContaining([expect.objectContaining({ media_id: item.mediaId, code: 'missing-file', error: expect.stringContaining('missing') }), expect.objectContaining({ code: 'source-unavailable' })]));
    expect(report['read_through']).toMatchObject({ imported: 1, failed: 2, not_in_synapse: 0 });
    expect((await get(server, '/_hsmedia/admin/v1/import/synapse')).status).toBe(403);

    // An ID its uploader reserved on Synapse (never asked for here yet) takes the upload here.
    const reserved = byLabel('never-uploaded');
    const put = await fetch(`${server.url}/_matrix/media/v3/upload/${serverName}/${reserved.mediaId}`, {
      method: 'PUT',
      headers: { Authorization: 'Bearer alice_token', 'Content-Type': 'text/plain' },
      body: 'uploaded after the switch',
    });
    expect(put.status, await put.clone().text()).toBe(200);
    expect((await download(server, reserved)).body.toString()).toBe('uploaded after the switch');
  });

  it('the backfill imports everything (remote media included) at its rate, resumes after a restart, and reports progress', async () => {
    const fixture = await copySynapseFixture(source, join(dir.path, 'copy-c'));
    const progress = async (server: StartedServer): Promise<Record<string, unknown>> =>
      (await get(server, '/_hsmedia/admin/v1/import/synapse', { Authorization: `Bearer ${ADMIN_TOKEN}` })).json()['backfill'] as Record<string, unknown>;
    // Slow first: stopped after a few items, the next process goes on from the saved cursor.
    const first = await hsmediaOn(fixture, 'c', { enabled: true, files_per_second: 10 });
    await expect.poll(async () => (await progress(first))['imported'], { timeout: 60_000, interval: 100 }).toBeGreaterThanOrEqual(3);
    expect(await progress(first)).toMatchObject({ enabled: true, running: true, done: false, files_per_second: 10, total: source.items.length });
    expect((await progress(first))['measured_per_second']).toBeGreaterThan(0);
    await first.close();
    const server = await hsmediaOn(fixture, 'c', { enabled: true, files_per_second: 500 });
    await server.synapseReadThrough!.backfill()!.whenDone();
    const report = (await get(server, '/_hsmedia/admin/v1/import/synapse', { Authorization: `Bearer ${ADMIN_TOKEN}` })).json();
    const backfill = report['backfill'] as Record<string, unknown>;
    // Nothing twice: the second process went on after the first one's last saved item (the one it was
    // stopped in, when it had just been stored, is found present).
    expect(backfill).toMatchObject({ done: true, remaining: 0, failed: 0 });
    expect(backfill['present']).toBeLessThanOrEqual(1);
    expect((backfill['imported'] as number) + (backfill['present'] as number)).toBe(source.items.length);

    // Synapse's files gone: every item is served from hsmedia's store, remote media included, as Synapse did.
    await rm(fixture.mediaStorePath, { recursive: true, force: true });
    await rename(fixture.databasePath, `${fixture.databasePath}.away`);
    for (const item of source.items) {
      const answer = await download(server, item, '?timeout_ms=0');
      // Remote media Synapse refused is refused here without asking its origin (quarantine came along).
      expect(answer.status, item.label).toBe(item.downloadStatus);
      if (item.downloadStatus === 200) expect(sha256(answer.body), item.label).toBe(item.sha256);
    }
    const thumbOnly = byLabel('remote-thumbnail-only');
    const thumb = await get(server, `/_matrix/client/v1/media/thumbnail/${thumbOnly.serverName}/${thumbOnly.mediaId}?width=96&height=96&method=crop`);
    expect(thumb.status).toBe(200);
    expect(thumb.type).toMatch(/^image\//);
  });
});
