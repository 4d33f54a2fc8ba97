import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type StartedServer } from '../src/server.js';
import { tempDir, testConfig } from './helpers.js';

// delivery: x_accel with dedup.enabled: the blobs are named by their SHA-256 through the content-addressed
// store, but nginx still needs the path of the file in the directory store beneath it. (Before the fix the
// server found no filesystem store behind the dedup wrapper and sent every byte itself.)

const TOKEN = { Authorization: 'Bearer alice_token' };
let media: StartedServer | undefined;
let dir: { path: string; cleanup(): Promise<void> } | undefined;
let mediaDir = '';

beforeAll(async () => {
  dir = await tempDir('hsmedia-x-accel-dedup-');
  mediaDir = join(dir.path, 'media');
  media = await startServer(
    testConfig(dir.path, {
      log_level: 'silent',
      auth: { tokens: { alice_token: '@alice:localhost' } },
      media_store: { filesystem: { path: mediaDir } },
      dedup: { enabled: true },
      delivery: 'x_accel',
    }),
  );
}, 120_000);

afterAll(async () => {
  await media?.close();
  await dir?.cleanup();
});

describe('x_accel with dedup', () => {
  it('answers X-Accel-Redirect to the content-addressed file under the store root', async () => {
    const body = randomBytes(4096);
    const up = await fetch(`${media!.url}/_matrix/media/v3/upload?filename=a.bin`, {
      method: 'POST',
      headers: { ...TOKEN, 'Content-Type': 'application/octet-stream' },
      body,
    });
    expect(up.status).toBe(200);
    const mediaId = ((await up.json()) as { content_uri: string }).content_uri.split('/').pop()!;

    const res = await fetch(`${media!.url}/_matrix/client/v1/media/download/localhost/${mediaId}`, { headers: TOKEN });
    expect(res.status).toBe(200);
    const accel = res.headers.get('x-accel-redirect');
    expect(accel).toMatch(/^\/_hsmedia_accel\//);
    expect(await res.arrayBuffer()).toHaveProperty('byteLength', 0);
    const sha256 = createHash('sha256').update(body).digest('hex');
    expect(accel).toContain(sha256);
    // nginx's `alias` is the store root: the path after the location prefix is the file.
    const onDisk = await readFile(join(mediaDir, accel!.slice('/_hsmedia_accel/'.length)));
    expect(onDisk.equals(body)).toBe(true);
  });
});
