import { binaryBytes } from '@hsmedia/test-fixtures';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ALICE,
  BOB,
  GUEST,
  ManualClock,
  SERVER_NAME,
  createId,
  download,
  expectError,
  postUpload,
  putMedia,
  sendPartially,
  startLimitsHarness,
  type LimitsHarness,
} from './limits-harness.js';

let h: LimitsHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('async upload: POST /_matrix/media/v1/create + PUT /_matrix/media/v3/upload/{serverName}/{mediaId}', () => {
  it('creates an ID, fills it with PUT, and serves the bytes', async () => {
    const clock = new ManualClock();
    h = await startLimitsHarness({ service: { clock } });
    const res = await fetch(`${h.url}/_matrix/media/v1/create`, { method: 'POST', headers: ALICE });
    expect(res.status).toBe(200);
    const created = (await res.json()) as { content_uri: string; unused_expires_at: number };
    expect(created.content_uri).toMatch(/^mxc:\/\/media\.test\/[A-Za-z0-9_-]+$/);
    // Default expiry: 24 h after creation (spec recommendation).
    expect(created.unused_expires_at).toBe(clock.current + 24 * 60 * 60 * 1000);
    const mediaId = created.content_uri.split('/').pop()!;

    const bytes = binaryBytes(100_000, 5);
    const put = await fetch(`${h.url}/_matrix/media/v3/upload/${SERVER_NAME}/${mediaId}?filename=a.bin`, {
      method: 'PUT',
      headers: { ...ALICE, 'Content-Type': 'application/x-test' },
      body: bytes,
    });
    expect(put.status).toBe(200);
    expect(await put.json()).toEqual({});

    const got = await download(h.url, mediaId);
    expect(got.status).toBe(200);
    expect(got.headers.get('content-type')).toBe('application/x-test');
    expect(Buffer.compare(new Uint8Array(await got.arrayBuffer()), bytes)).toBe(0);
    const record = await h.metadata.getMedia(SERVER_NAME, mediaId);
    expect(record).toMatchObject({ userId: '@alice:media.test', size: 100_000, uploadName: 'a.bin' });
  });

  it.each([
    ['absent', undefined],
    ['an empty object', '{}'],
    ['an object with unknown fields', '{"future":"field"}'],
  ])('accepts a body that is %s', async (_label, body) => {
    h = await startLimitsHarness();
    const res = await fetch(`${h.url}/_matrix/media/v1/create`, {
      method: 'POST',
      headers: { ...ALICE, 'Content-Type': 'application/json' },
      ...(body === undefined ? {} : { body }),
    });
    expect(res.status).toBe(200);
  });

  it('refuses bodies that are not a JSON object, and oversized bodies, creating nothing', async () => {
    h = await startLimitsHarness();
    const post = (body: string): Promise<Response> =>
      fetch(`${h!.url}/_matrix/media/v1/create`, { method: 'POST', headers: ALICE, body });
    await expectError(await post('[]'), 400, 'M_BAD_JSON');
    await expectError(await post('not json'), 400, 'M_NOT_JSON');
    await expectError(await post(`{"x":"${'a'.repeat(100_000)}"}`), 413, 'M_TOO_LARGE');
    expect(await h.mediaRows()).toBe(0);
  });

  it('refuses guests (403) and missing tokens (401)', async () => {
    h = await startLimitsHarness();
    await expectError(
      await fetch(`${h.url}/_matrix/media/v1/create`, { method: 'POST', headers: GUEST }),
      403,
      'M_GUEST_ACCESS_FORBIDDEN',
    );
    await expectError(await fetch(`${h.url}/_matrix/media/v1/create`, { method: 'POST' }), 401, 'M_MISSING_TOKEN');
    expect(await h.mediaRows()).toBe(0);
  });

  it('lets only the creator upload: another user gets 403 M_FORBIDDEN and the ID stays usable', async () => {
    h = await startLimitsHarness();
    const { mediaId } = await createId(h.url);
    await expectError(await putMedia(h.url, mediaId, 'from bob', BOB), 403, 'M_FORBIDDEN');
    expect(await h.blobFiles()).toEqual([]);
    expect((await putMedia(h.url, mediaId, 'from alice')).status).toBe(200);
    expect(await (await download(h.url, mediaId, '', BOB)).text()).toBe('from alice');
  });

  it('uploads only once: a second PUT is 409 M_CANNOT_OVERWRITE_MEDIA and the first content stays', async () => {
    h = await startLimitsHarness();
    const { mediaId } = await createId(h.url);
    expect((await putMedia(h.url, mediaId, 'first')).status).toBe(200);
    await expectError(await putMedia(h.url, mediaId, 'second'), 409, 'M_CANNOT_OVERWRITE_MEDIA');
    expect(await (await download(h.url, mediaId)).text()).toBe('first');
    expect(await h.blobFiles()).toHaveLength(1);
  });

  it('answers the second PUT with 409 before reading its body', async () => {
    h = await startLimitsHarness();
    const { mediaId } = await createId(h.url);
    expect((await putMedia(h.url, mediaId, 'first')).status).toBe(200);
    // Declares 1 GiB and sends 64 KiB: the answer arrives while the client still owes almost all of it.
    const answer = await sendPartially(
      h.url,
      'PUT',
      `/_matrix/media/v3/upload/${SERVER_NAME}/${mediaId}`,
      ALICE,
      1024 * 1024 * 1024,
      binaryBytes(64 * 1024),
    );
    expect(answer.status).toBe(409);
    expect(answer.json['errcode']).toBe('M_CANNOT_OVERWRITE_MEDIA');
    expect(answer.finished).toBe(false);
    expect(await h.blobFiles()).toHaveLength(1);
  });

  it('answers 403 to another user before reading the body either', async () => {
    h = await startLimitsHarness();
    const { mediaId } = await createId(h.url);
    const answer = await sendPartially(h.url, 'PUT', `/_matrix/media/v3/upload/${SERVER_NAME}/${mediaId}`, BOB, 1 << 30, binaryBytes(1024));
    expect(answer.status).toBe(403);
    expect(answer.finished).toBe(false);
  });

  it('answers 404 M_NOT_FOUND once the ID expired, for PUT and download', async () => {
    const clock = new ManualClock();
    h = await startLimitsHarness({ service: { clock, asyncUploads: { unusedExpirationMs: 60_000 } } });
    const { mediaId, expiresAt } = await createId(h.url);
    expect(expiresAt).toBe(clock.current + 60_000);
    clock.advance(60_000);
    await expectError(await putMedia(h.url, mediaId, 'late'), 404, 'M_NOT_FOUND');
    await expectError(await download(h.url, mediaId, '?timeout_ms=0'), 404, 'M_NOT_FOUND');
    expect(await h.blobFiles()).toEqual([]);
  });

  it('answers 404 for IDs that did not come from /create here', async () => {
    h = await startLimitsHarness();
    await expectError(await putMedia(h.url, 'NeverCreated0000', 'x'), 404, 'M_NOT_FOUND');
    const res = await fetch(`${h.url}/_matrix/media/v3/upload/other.example/${'A'.repeat(16)}`, {
      method: 'PUT',
      headers: ALICE,
      body: 'x',
    });
    await expectError(res, 404, 'M_NOT_FOUND');
    // A plain upload already has content: it cannot be overwritten.
    const plain = (await (await postUpload(h.url, 'plain')).json()) as { content_uri: string };
    await expectError(await putMedia(h.url, plain.content_uri.split('/').pop()!, 'x'), 409, 'M_CANNOT_OVERWRITE_MEDIA');
  });

  it('caps pending uploads per user with 429 M_LIMIT_EXCEEDED; completing one frees a slot', async () => {
    h = await startLimitsHarness({ service: { asyncUploads: { maxPending: 2 } } });
    const first = await createId(h.url);
    await createId(h.url);
    const refused = await fetch(`${h.url}/_matrix/media/v1/create`, { method: 'POST', headers: ALICE });
    await expectError(refused, 429, 'M_LIMIT_EXCEEDED');
    expect(await h.mediaRows()).toBe(2);
    // Another user has their own allowance.
    await createId(h.url, BOB);
    expect((await putMedia(h.url, first.mediaId, 'done')).status).toBe(200);
    await createId(h.url);
  });

  it('does not count expired IDs as pending', async () => {
    const clock = new ManualClock();
    h = await startLimitsHarness({ service: { clock, asyncUploads: { maxPending: 1, unusedExpirationMs: 1000 } } });
    await createId(h.url);
    await expectError(await fetch(`${h.url}/_matrix/media/v1/create`, { method: 'POST', headers: ALICE }), 429, 'M_LIMIT_EXCEEDED');
    clock.advance(1000);
    await createId(h.url);
  });

  it('keeps the cap under concurrent creates', async () => {
    h = await startLimitsHarness({ service: { asyncUploads: { maxPending: 3 } } });
    const results = await Promise.all(
      Array.from({ length: 8 }, () => fetch(`${h!.url}/_matrix/media/v1/create`, { method: 'POST', headers: ALICE })),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(3);
    expect(results.filter((r) => r.status === 429)).toHaveLength(5);
    expect(await h.mediaRows()).toBe(3);
  });
});

describe('downloads of created-but-not-uploaded media', () => {
  it('wait timeout_ms, then answer 504 M_NOT_YET_UPLOADED', async () => {
    h = await startLimitsHarness({ service: { pendingPollMs: 50 } });
    const { mediaId } = await createId(h.url);
    await expectError(await download(h.url, mediaId, '?timeout_ms=200'), 504, 'M_NOT_YET_UPLOADED');
    await expectError(
      await fetch(`${h.url}/_matrix/media/v3/download/${SERVER_NAME}/${mediaId}?timeout_ms=0`),
      504,
      'M_NOT_YET_UPLOADED',
    );
  });

  it('end the moment the upload completes in this process (not at the next poll)', async () => {
    // The poll interval is far longer than the test timeout: only the in-process wake-up can answer in time.
    h = await startLimitsHarness({ service: { pendingPollMs: 600_000, maxTimeoutMs: 600_000 } });
    const { mediaId } = await createId(h.url);
    const waiting = download(h.url, mediaId, '?timeout_ms=600000');
    // Let the download reach its wait: its request is sent before the PUT's.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const bytes = binaryBytes(5000, 9);
    expect((await putMedia(h.url, mediaId, bytes)).status).toBe(200);
    const res = await waiting;
    expect(res.status).toBe(200);
    expect(Buffer.compare(new Uint8Array(await res.arrayBuffer()), bytes)).toBe(0);
  }, 10_000);

  it('end when the upload lands on another instance (through the metadata poll)', async () => {
    h = await startLimitsHarness({ service: { pendingPollMs: 50 } });
    const peer = await h.startPeer();
    const { mediaId } = await createId(h.url);
    const waiting = download(h.url, mediaId, '?timeout_ms=30000');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect((await putMedia(peer.url, mediaId, 'via peer')).status).toBe(200);
    const res = await waiting;
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('via peer');
  }, 20_000);

  it('cap timeout_ms at maxTimeoutMs', async () => {
    h = await startLimitsHarness({ service: { pendingPollMs: 20, maxTimeoutMs: 100 } });
    const { mediaId } = await createId(h.url);
    // Asked for an hour: the cap answers long before the test timeout.
    await expectError(await download(h.url, mediaId, '?timeout_ms=3600000'), 504, 'M_NOT_YET_UPLOADED');
  }, 5_000);
});
