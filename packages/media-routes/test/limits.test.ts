import { TokenBucketRateLimiter } from '@hsmedia/media-core';
import { binaryBytes } from '@hsmedia/test-fixtures';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ALICE,
  BOB,
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

async function expectLimited(res: Response): Promise<number> {
  const body = await expectError(res, 429, 'M_LIMIT_EXCEEDED');
  const retryAfterMs = body['retry_after_ms'];
  expect(typeof retryAfterMs).toBe('number');
  expect(retryAfterMs as number).toBeGreaterThan(0);
  const header = res.headers.get('retry-after');
  expect(header).toMatch(/^\d+$/);
  expect(Number(header)).toBe(Math.max(1, Math.ceil((retryAfterMs as number) / 1000)));
  return retryAfterMs as number;
}

describe('rate limits (token bucket per user)', () => {
  it('refuses uploads over the burst with 429, retry_after_ms and Retry-After; other users are unaffected', async () => {
    const clock = new ManualClock();
    const upload = new TokenBucketRateLimiter({ perSecond: 0.5, burst: 2, clock });
    h = await startLimitsHarness({ rateLimits: { upload } });
    expect((await postUpload(h.url, 'one')).status).toBe(200);
    expect((await postUpload(h.url, 'two')).status).toBe(200);
    const retryAfterMs = await expectLimited(await postUpload(h.url, 'three'));
    // One token at 0.5/s: two seconds.
    expect(retryAfterMs).toBe(2000);
    expect(await h.mediaRows()).toBe(2);
    // Bob has his own bucket.
    expect((await postUpload(h.url, 'bob', BOB)).status).toBe(200);
    // After the advertised wait, Alice may upload again.
    clock.advance(retryAfterMs);
    expect((await postUpload(h.url, 'four')).status).toBe(200);
  });

  it('refuses a limited upload before reading its body', async () => {
    const upload = new TokenBucketRateLimiter({ perSecond: 0.001, burst: 1 });
    h = await startLimitsHarness({ rateLimits: { upload } });
    expect((await postUpload(h.url, 'one')).status).toBe(200);
    const answer = await sendPartially(h.url, 'POST', '/_matrix/media/v3/upload', ALICE, 1 << 30, binaryBytes(1024));
    expect(answer.status).toBe(429);
    expect(answer.finished).toBe(false);
    expect(await h.blobFiles()).toHaveLength(1);
  });

  it('counts PUT uploads against the upload budget', async () => {
    const upload = new TokenBucketRateLimiter({ perSecond: 0.001, burst: 1 });
    h = await startLimitsHarness({ rateLimits: { upload } });
    const first = await createId(h.url);
    const second = await createId(h.url);
    expect((await putMedia(h.url, first.mediaId, 'a')).status).toBe(200);
    await expectLimited(await putMedia(h.url, second.mediaId, 'b'));
    // The refused ID is still pending, not consumed.
    expect((await h.metadata.getMedia(SERVER_NAME, second.mediaId))?.blobId).toBeNull();
  });

  it('limits downloads per user', async () => {
    const downloads = new TokenBucketRateLimiter({ perSecond: 0.001, burst: 2 });
    h = await startLimitsHarness({ rateLimits: { download: downloads } });
    const { content_uri } = (await (await postUpload(h.url, 'x')).json()) as { content_uri: string };
    const mediaId = content_uri.split('/').pop()!;
    expect((await download(h.url, mediaId)).status).toBe(200);
    expect((await download(h.url, mediaId)).status).toBe(200);
    await expectLimited(await download(h.url, mediaId));
    expect((await download(h.url, mediaId, '', BOB)).status).toBe(200);
  });

  it('limits unauthenticated legacy downloads per client address', async () => {
    const downloads = new TokenBucketRateLimiter({ perSecond: 0.001, burst: 1 });
    h = await startLimitsHarness({ rateLimits: { download: downloads } });
    const { content_uri } = (await (await postUpload(h.url, 'x')).json()) as { content_uri: string };
    const path = `${h.url}/_matrix/media/v3/download/${SERVER_NAME}/${content_uri.split('/').pop()!}`;
    expect((await fetch(path)).status).toBe(200);
    await expectLimited(await fetch(path));
  });

  it('limits /create per user', async () => {
    const create = new TokenBucketRateLimiter({ perSecond: 0.001, burst: 1 });
    h = await startLimitsHarness({ rateLimits: { create } });
    await createId(h.url);
    await expectLimited(await fetch(`${h.url}/_matrix/media/v1/create`, { method: 'POST', headers: ALICE }));
    await createId(h.url, BOB);
    expect(await h.mediaRows()).toBe(2);
  });

  it('never limits requests that fail authentication (no bucket is touched)', async () => {
    const upload = new TokenBucketRateLimiter({ perSecond: 0.001, burst: 1 });
    h = await startLimitsHarness({ rateLimits: { upload } });
    for (let i = 0; i < 3; i++) {
      await expectError(await postUpload(h.url, 'x', { Authorization: 'Bearer nope' }), 401, 'M_UNKNOWN_TOKEN');
    }
    expect(upload.size).toBe(0);
  });
});

describe('upload quotas', () => {
  it('refuses the file over max_files with 403 M_FORBIDDEN, leaving no blob and no row', async () => {
    h = await startLimitsHarness({ service: { quotas: { default: { maxFiles: 2 } } } });
    expect((await postUpload(h.url, 'one')).status).toBe(200);
    expect((await postUpload(h.url, 'two')).status).toBe(200);
    await expectError(await postUpload(h.url, 'three'), 403, 'M_FORBIDDEN');
    expect(await h.mediaRows()).toBe(2);
    expect(await h.blobFiles()).toHaveLength(2);
    // Quotas are per user.
    expect((await postUpload(h.url, 'bob', BOB)).status).toBe(200);
  });

  it('refuses by the declared Content-Length before reading the body', async () => {
    h = await startLimitsHarness({ service: { quotas: { default: { maxBytes: 1000 } } } });
    expect((await postUpload(h.url, binaryBytes(600))).status).toBe(200);
    const answer = await sendPartially(h.url, 'POST', '/_matrix/media/v3/upload', ALICE, 500, binaryBytes(100));
    expect(answer.status).toBe(403);
    expect(answer.json['errcode']).toBe('M_FORBIDDEN');
    expect(answer.finished).toBe(false);
    expect(await h.blobFiles()).toHaveLength(1);
    expect(await h.mediaRows()).toBe(1);
  });

  it('refuses by the real size after streaming when no length was declared, deleting the staged blob', async () => {
    h = await startLimitsHarness({ service: { quotas: { default: { maxBytes: 1000 } } } });
    expect((await postUpload(h.url, binaryBytes(600))).status).toBe(200);
    const chunks = [binaryBytes(300, 1), binaryBytes(300, 2)];
    // A streamed body is sent chunked: the server learns its size only by reading it.
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        const next = chunks.shift();
        if (next === undefined) controller.close();
        else controller.enqueue(next);
      },
    });
    const res = await fetch(`${h.url}/_matrix/media/v3/upload`, {
      method: 'POST',
      headers: { ...ALICE, 'Content-Type': 'application/octet-stream' },
      body,
      duplex: 'half',
    } as RequestInit);
    await expectError(res, 403, 'M_FORBIDDEN');
    expect(await h.blobFiles()).toHaveLength(1);
    expect(await h.mediaRows()).toBe(1);
    // What still fits is accepted.
    expect((await postUpload(h.url, binaryBytes(400))).status).toBe(200);
  });

  it('counts a period window: refused within it, accepted once it has passed', async () => {
    const clock = new ManualClock();
    h = await startLimitsHarness({
      service: { clock, quotas: { default: { periodFiles: 1, periodBytes: 10_000, periodMs: 60_000 } } },
    });
    expect((await postUpload(h.url, 'first')).status).toBe(200);
    clock.advance(59_999);
    await expectError(await postUpload(h.url, 'second'), 403, 'M_FORBIDDEN');
    clock.advance(1);
    expect((await postUpload(h.url, 'second')).status).toBe(200);
    clock.advance(60_000);
    await expectError(await postUpload(h.url, binaryBytes(10_001)), 403, 'M_FORBIDDEN');
    expect(await h.mediaRows()).toBe(2);
  });

  it('applies per-user overrides (null lifts a default limit)', async () => {
    h = await startLimitsHarness({
      service: { quotas: { default: { maxFiles: 1 }, users: { '@bob:media.test': { maxFiles: null } } } },
    });
    expect((await postUpload(h.url, 'a')).status).toBe(200);
    await expectError(await postUpload(h.url, 'b'), 403, 'M_FORBIDDEN');
    for (let i = 0; i < 3; i++) expect((await postUpload(h.url, `bob${i}`, BOB)).status).toBe(200);
  });

  it('answers M_USER_LIMIT_EXCEEDED with info_uri when one is configured', async () => {
    h = await startLimitsHarness({
      service: { quotas: { default: { maxFiles: 0 }, infoUri: 'https://example.org/quota' } },
    });
    const body = await expectError(await postUpload(h.url, 'a'), 403, 'M_USER_LIMIT_EXCEEDED');
    expect(body['info_uri']).toBe('https://example.org/quota');
  });

  it('applies to PUT uploads: a refused PUT leaves no blob and the ID pending', async () => {
    h = await startLimitsHarness({ service: { quotas: { default: { maxBytes: 100 } } } });
    const { mediaId } = await createId(h.url);
    const chunks = [binaryBytes(80, 1), binaryBytes(80, 2)];
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        const next = chunks.shift();
        if (next === undefined) controller.close();
        else controller.enqueue(next);
      },
    });
    const res = await fetch(`${h.url}/_matrix/media/v3/upload/${SERVER_NAME}/${mediaId}`, {
      method: 'PUT',
      headers: ALICE,
      body,
      duplex: 'half',
    } as RequestInit);
    await expectError(res, 403, 'M_FORBIDDEN');
    expect(await h.blobFiles()).toEqual([]);
    expect((await h.metadata.getMedia(SERVER_NAME, mediaId))?.blobId).toBeNull();
    expect((await putMedia(h.url, mediaId, binaryBytes(100))).status).toBe(200);
  });

  it('does not let concurrent uploads of one user overshoot the quota', async () => {
    h = await startLimitsHarness({ service: { quotas: { default: { maxFiles: 3 } } } });
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => postUpload(h!.url, `file ${i}`)));
    expect(results.filter((r) => r.status === 200)).toHaveLength(3);
    expect(results.filter((r) => r.status === 403)).toHaveLength(5);
    expect(await h.mediaRows()).toBe(3);
    expect(await h.blobFiles()).toHaveLength(3);
  });
});
