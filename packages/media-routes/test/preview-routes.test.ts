import { join } from 'node:path';
import { StaticTokenVerifier, createClientAuth } from '@hsmedia/client-auth';
import { MatrixError } from '@hsmedia/errors';
import { MediaService } from '@hsmedia/media-core';
import { FsBlobStore } from '@hsmedia/store-fs';
import { createSqliteMetadataStore } from '@hsmedia/store-sqlite';
import { listen, tmpdir, type Listening, type TempDir } from '@hsmedia/test-fixtures';
import Koa from 'koa';
import { afterEach, describe, expect, it } from 'vitest';
import { createPreviewUrlHandler, mountMediaRoutes, type PreviewUrlOptions, type PreviewUrlRequest } from '../src/index.js';

const ALICE = { Authorization: 'Bearer alice_token' } as const;
const GUEST = { Authorization: 'Bearer guest_token' } as const;

/** A previewer that records its calls and answers from `answer`. */
class RecordingPreviewer {
  readonly calls: { url: string; options: PreviewUrlRequest }[] = [];
  answer: (url: string) => Promise<Record<string, unknown>> = async (url) => ({ 'og:title': `Title of ${url}` });
  preview(url: string, options: PreviewUrlRequest): Promise<Record<string, unknown>> {
    this.calls.push({ url, options });
    return this.answer(url);
  }
}

interface Front {
  readonly url: string;
  close(): Promise<void>;
}

const open: Front[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((front) => front.close()));
});

async function startFront(preview: PreviewUrlOptions | undefined): Promise<Front> {
  const dir: TempDir = await tmpdir('hsmedia-preview-routes-');
  const blobs = new FsBlobStore({ root: join(dir.path, 'blobs'), fsync: false });
  const metadata = await createSqliteMetadataStore({ path: join(dir.path, 'media.sqlite') });
  const media = new MediaService({ serverName: 'media.test', blobs, metadata, maxUploadBytes: 1024 });
  const app = new Koa();
  app.silent = true;
  const verifier = new StaticTokenVerifier({
    alice_token: '@alice:media.test',
    guest_token: { userId: '@guest:media.test', isGuest: true },
  });
  mountMediaRoutes(app, { media, authenticate: createClientAuth({ verifier }), ...(preview === undefined ? {} : { preview }) });
  const server: Listening = await listen(app);
  const front = {
    url: server.url,
    async close() {
      await server.close();
      await media.close();
      await metadata.close();
      await dir.cleanup();
    },
  };
  open.push(front);
  return front;
}

const CLIENT = '/_matrix/client/v1/media/preview_url';
const LEGACY = '/_matrix/media/v3/preview_url';

describe('preview_url', () => {
  it('answers the previewer’s object on the client v1 and the legacy endpoints, passing url, ts and the requester', async () => {
    const previewer = new RecordingPreviewer();
    const front = await startFront({ previewer });
    for (const path of [CLIENT, LEGACY, '/_matrix/media/r0/preview_url']) {
      const response = await fetch(`${front.url}${path}?url=${encodeURIComponent('https://example.org/a?b=c')}&ts=1700000000000`, {
        headers: ALICE,
      });
      expect(response.status).toBe(200);
      expect(response.headers.get('cache-control')).toBe('no-store');
      expect(await response.json()).toEqual({ 'og:title': 'Title of https://example.org/a?b=c' });
    }
    expect(previewer.calls).toHaveLength(3);
    const first = previewer.calls[0]!;
    expect(first.url).toBe('https://example.org/a?b=c');
    expect(first.options.ts).toBe(1_700_000_000_000);
    expect(first.options.requester).toMatchObject({ userId: '@alice:media.test', isGuest: false });
    expect(first.options.signal).toBeInstanceOf(AbortSignal);
  });

  it('leaves ts out when it is not given', async () => {
    const previewer = new RecordingPreviewer();
    const front = await startFront({ previewer });
    const response = await fetch(`${front.url}${CLIENT}?url=https%3A%2F%2Fexample.org%2F`, { headers: ALICE });
    expect(response.status).toBe(200);
    expect('ts' in previewer.calls[0]!.options).toBe(false);
  });

  it('requires authentication on both endpoints before looking at parameters', async () => {
    const previewer = new RecordingPreviewer();
    const front = await startFront({ previewer });
    for (const path of [CLIENT, LEGACY]) {
      const response = await fetch(`${front.url}${path}`);
      expect(response.status).toBe(401);
      expect(await response.json()).toMatchObject({ errcode: 'M_MISSING_TOKEN' });
    }
    expect(previewer.calls).toHaveLength(0);
  });

  it('refuses guests with 403 M_GUEST_ACCESS_FORBIDDEN', async () => {
    const previewer = new RecordingPreviewer();
    const front = await startFront({ previewer });
    for (const path of [CLIENT, LEGACY]) {
      const response = await fetch(`${front.url}${path}?url=https%3A%2F%2Fexample.org%2F`, { headers: GUEST });
      expect(response.status).toBe(403);
      expect(await response.json()).toMatchObject({ errcode: 'M_GUEST_ACCESS_FORBIDDEN' });
    }
    expect(previewer.calls).toHaveLength(0);
  });

  it('refuses a missing url (400 M_MISSING_PARAM) and bad ts or repeated parameters (400 M_INVALID_PARAM)', async () => {
    const previewer = new RecordingPreviewer();
    const front = await startFront({ previewer });
    const missing = await fetch(`${front.url}${CLIENT}?ts=5`, { headers: ALICE });
    expect(missing.status).toBe(400);
    expect(await missing.json()).toMatchObject({ errcode: 'M_MISSING_PARAM' });
    for (const query of [
      'url=https%3A%2F%2Fexample.org%2F&ts=abc',
      'url=https%3A%2F%2Fexample.org%2F&ts=-1',
      'url=https%3A%2F%2Fexample.org%2F&ts=1.5',
      'url=https%3A%2F%2Fexample.org%2F&ts=',
      'url=https%3A%2F%2Fexample.org%2F&ts=1234567890123456',
      'url=https%3A%2F%2Fexample.org%2F&ts=1&ts=2',
      'url=https%3A%2F%2Fa.example%2F&url=https%3A%2F%2Fb.example%2F',
    ]) {
      const response = await fetch(`${front.url}${CLIENT}?${query}`, { headers: ALICE });
      expect(response.status, query).toBe(400);
      expect(await response.json()).toMatchObject({ errcode: 'M_INVALID_PARAM' });
    }
    expect(previewer.calls).toHaveLength(0);
  });

  it('maps previewer failures with mapError, and hides other errors behind 500 M_UNKNOWN by default', async () => {
    const previewer = new RecordingPreviewer();
    previewer.answer = async () => {
      throw new Error('secret internal detail 10.0.0.7');
    };
    const mapped = await startFront({
      previewer,
      mapError: (error) => new MatrixError('M_UNKNOWN', `mapped: ${(error as Error).name}`, { httpStatus: 502 }),
    });
    const viaMapper = await fetch(`${mapped.url}${CLIENT}?url=https%3A%2F%2Fexample.org%2F`, { headers: ALICE });
    expect(viaMapper.status).toBe(502);
    expect(await viaMapper.json()).toEqual({ errcode: 'M_UNKNOWN', error: 'mapped: Error' });

    const unmapped = await startFront({ previewer });
    const hidden = await fetch(`${unmapped.url}${CLIENT}?url=https%3A%2F%2Fexample.org%2F`, { headers: ALICE });
    expect(hidden.status).toBe(500);
    const body = (await hidden.json()) as { errcode: string; error: string };
    expect(body.errcode).toBe('M_UNKNOWN');
    expect(body.error).not.toContain('10.0.0.7');

    previewer.answer = async () => {
      throw new MatrixError('M_LIMIT_EXCEEDED', 'slow down', { data: { retry_after_ms: 1000 } });
    };
    const passed = await fetch(`${unmapped.url}${CLIENT}?url=https%3A%2F%2Fexample.org%2F`, { headers: ALICE });
    expect(passed.status).toBe(429);
    expect(await passed.json()).toMatchObject({ errcode: 'M_LIMIT_EXCEEDED', retry_after_ms: 1000 });
  });

  it('is not routed without a previewer: 404 M_UNRECOGNIZED, as Synapse answers when previews are disabled', async () => {
    const front = await startFront(undefined);
    for (const path of [CLIENT, LEGACY]) {
      const response = await fetch(`${front.url}${path}?url=https%3A%2F%2Fexample.org%2F`, { headers: ALICE });
      expect(response.status).toBe(404);
      expect(await response.json()).toMatchObject({ errcode: 'M_UNRECOGNIZED' });
    }
  });

  it('answers a wrong method with 405 M_UNRECOGNIZED', async () => {
    const front = await startFront({ previewer: new RecordingPreviewer() });
    const response = await fetch(`${front.url}${CLIENT}?url=x`, { method: 'POST', headers: ALICE });
    expect(response.status).toBe(405);
    expect(await response.json()).toMatchObject({ errcode: 'M_UNRECOGNIZED' });
  });

  it('refuses a previewer without a preview function when built', () => {
    expect(() => createPreviewUrlHandler({ previewer: {} as never })).toThrow(TypeError);
  });
});
