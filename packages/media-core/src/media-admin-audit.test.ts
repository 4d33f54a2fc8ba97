import type { Requester } from '@hsmedia/runtime';
import { describe, expect, it } from 'vitest';
import { MediaAdmin } from './media-admin.js';
import { MediaService } from './media-service.js';
import { MemoryBlobStore, MemoryMetadataStore } from './memory/index.js';
import type { AdminAction } from './ports/index.js';

// Every admin mutation lands in the store's audit log (one entry per call,
// bulk ones included), with who, why and when, and is passed to `onAction`.

const SERVER = 'example.org';
const alice: Requester = { userId: '@alice:example.org', isGuest: false };
const ADMIN = { by: '@admin:example.org', reason: 'report #42' };

function setup() {
  const now = 1_700_000_000_000;
  const clock = { now: () => now };
  const metadata = new MemoryMetadataStore();
  const media = new MediaService({ serverName: SERVER, blobs: new MemoryBlobStore(), metadata, maxUploadBytes: 1 << 20, clock, touchIntervalMs: 0 });
  const seen: AdminAction[] = [];
  const admin = new MediaAdmin({ media, queries: metadata, batchSize: 2, onAction: (entry) => seen.push(entry) });
  const upload = async (text: string): Promise<string> => {
    async function* body(): AsyncGenerator<Uint8Array> {
      yield new TextEncoder().encode(text);
    }
    return (await media.upload({ body: body(), contentType: 'text/plain', requester: alice })).mediaId;
  };
  return { metadata, media, admin, upload, seen, now };
}

describe('MediaAdmin audit trail', () => {
  it('records each mutation with actor, target, reason and time, newest first', async () => {
    const { admin, upload, seen, now } = setup();
    const a = await upload('a');
    const b = await upload('b');
    const sha = 'ab'.repeat(32);
    await admin.setProtected(SERVER, a, true, ADMIN);
    await admin.setProtected(SERVER, a, false, ADMIN);
    await admin.setQuarantined(SERVER, a, true, ADMIN);
    await admin.setQuarantined(SERVER, a, false, { by: ADMIN.by });
    await admin.quarantineUserMedia(alice.userId, true, ADMIN);
    await admin.quarantineByHash(sha.toUpperCase(), false, ADMIN);
    await admin.blockHash({ sha256: sha, blockedBy: ADMIN.by, reason: 'csam list' });
    await admin.unblockHash(sha, ADMIN);
    await admin.deleteMedia(SERVER, b, ADMIN);
    await admin.deleteLocalMedia({ lastUsedBefore: now + 1, includeQuarantined: true }, ADMIN);
    await admin.purgeRemoteCache(now, undefined, {}, ADMIN);

    const log = await admin.listAdminActions({ limit: 100 });
    expect(log.map(({ action, target, actor, reason }) => [action, target, actor, reason]).reverse()).toEqual([
      ['protect', `mxc://${SERVER}/${a}`, ADMIN.by, ADMIN.reason],
      ['unprotect', `mxc://${SERVER}/${a}`, ADMIN.by, ADMIN.reason],
      ['quarantine', `mxc://${SERVER}/${a}`, ADMIN.by, ADMIN.reason],
      ['unquarantine', `mxc://${SERVER}/${a}`, ADMIN.by, null],
      // One entry for the bulk quarantine (it changed both uploads), none per item.
      ['quarantine', alice.userId, ADMIN.by, ADMIN.reason],
      ['unquarantine', sha, ADMIN.by, ADMIN.reason],
      ['block_hash', sha, ADMIN.by, 'csam list'],
      ['unblock_hash', sha, ADMIN.by, ADMIN.reason],
      ['delete', `mxc://${SERVER}/${b}`, ADMIN.by, ADMIN.reason],
      ['purge', 'local_media', ADMIN.by, ADMIN.reason],
      // Nothing to purge, but an admin asked: recorded all the same.
      ['purge', 'remote_cache', ADMIN.by, ADMIN.reason],
    ]);
    expect(log.every((entry) => entry.at === now)).toBe(true);
    expect(seen.map((entry) => entry.action)).toEqual(log.map((entry) => entry.action).reverse());
  });

  it('records a bulk deletion without an actor (retention) only when it deleted something', async () => {
    const { admin, upload, now } = setup();
    await admin.purgeRemoteCache(now);
    expect(await admin.evictRemoteCache(0)).toMatchObject({ deleted: 0 });
    expect(await admin.listAdminActions({ limit: 10 })).toEqual([]);
    await upload('old');
    expect(await admin.deleteLocalMedia({ lastUsedBefore: now + 1 })).toHaveLength(1);
    expect(await admin.listAdminActions({ limit: 10 })).toMatchObject([{ action: 'purge', target: 'local_media', actor: null, reason: null }]);
  });

  it('does not record a deletion of unknown media, and records nowhere with audit: null', async () => {
    const { admin, media, metadata, upload } = setup();
    expect(await admin.deleteMedia(SERVER, 'unknown', ADMIN)).toBe(false);
    expect(await admin.listAdminActions({ limit: 10 })).toEqual([]);
    const silent = new MediaAdmin({ media, queries: metadata, audit: null });
    await silent.setQuarantined(SERVER, await upload('c'), true, ADMIN);
    expect(await silent.listAdminActions({ limit: 10 })).toEqual([]);
    expect(await metadata.listAdminActions({ limit: 10 })).toEqual([]);
  });

  it('fails the call when the action cannot be recorded (a reason over 1000 characters)', async () => {
    const { admin, upload } = setup();
    const mediaId = await upload('d');
    await expect(admin.setProtected(SERVER, mediaId, true, { by: ADMIN.by, reason: 'x'.repeat(1001) })).rejects.toThrow(TypeError);
  });
});
