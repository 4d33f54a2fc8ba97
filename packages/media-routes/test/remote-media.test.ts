import type { RemoteMedia, RemoteMediaRequest, RemoteMediaSource } from '@hsmedia/media-core';
import { afterEach, describe, expect, it } from 'vitest';
import { ALICE, startHarness, type Harness } from './harness.js';

class OneFileRemote implements RemoteMediaSource {
  readonly calls: RemoteMediaRequest[] = [];
  async fetchMedia(request: RemoteMediaRequest): Promise<RemoteMedia> {
    this.calls.push(request);
    const bytes = new TextEncoder().encode(`remote ${request.mediaId}`);
    return {
      contentType: 'text/plain',
      contentDisposition: 'attachment; filename="from remote.txt"',
      contentLength: bytes.byteLength,
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(bytes);
          controller.close();
        },
      }),
    };
  }
}

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('remote media through the RemoteMediaSource seam', () => {
  it('fetches once, caches, and serves with the remote filename; allow_remote=false never fetches', async () => {
    const remote = new OneFileRemote();
    h = await startHarness({ remote });
    await expectNotFound(await fetch(`${h.url}/_matrix/media/v3/download/other.example/abc?allow_remote=false`));
    expect(remote.calls).toHaveLength(0);
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${h.url}/_matrix/client/v1/media/download/other.example/abc`, { headers: ALICE });
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('remote abc');
      expect(res.headers.get('content-disposition')).toBe('inline; filename="from remote.txt"');
    }
    expect(remote.calls).toHaveLength(1);
    expect(await h.mediaRows()).toBe(1);
    // once cached, allow_remote=false may serve it: no request leaves this server
    const cached = await fetch(`${h.url}/_matrix/media/v3/download/other.example/abc?allow_remote=false`);
    expect(cached.status).toBe(200);
  });
});

async function expectNotFound(res: Response): Promise<void> {
  expect(res.status).toBe(404);
  expect(((await res.json()) as { errcode: string }).errcode).toBe('M_NOT_FOUND');
}
