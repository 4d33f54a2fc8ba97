import { readdirSync, readlinkSync } from 'node:fs';
import { request } from 'node:http';
import { binaryBytes } from '@hsmedia/test-fixtures';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ALICE, SERVER_NAME, startHarness, upload, type Harness } from './harness.js';

// Large media bypasses Koa's respond() and is written to the response directly: these
// check that the guarantees of the Koa path (bytes, ranges, release on disconnect) hold.

let h: Harness;
beforeEach(async () => {
  h = await startHarness({ maxUploadBytes: 64 * 1024 * 1024 });
});
afterEach(async () => {
  await h.close();
});

const MiB = 1024 * 1024;
const dl = (mediaId: string): string => `/_matrix/client/v1/media/download/${SERVER_NAME}/${mediaId}`;

/** Descriptors of this process that point into the blob store. */
function openBlobFiles(): string[] {
  const open: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(h.blobs.root)) open.push(target);
    } catch {
      // closed while listing
    }
  }
  return open;
}

describe.runIf(process.platform === 'linux')('streamed downloads', () => {
  it('serves large media and ranges of it byte for byte', async () => {
    const bytes = binaryBytes(6 * MiB + 123, 11);
    const { mediaId } = await upload(h, bytes);
    const whole = await fetch(`${h.url}${dl(mediaId)}`, { headers: ALICE });
    expect(whole.status).toBe(200);
    expect(whole.headers.get('content-length')).toBe(String(bytes.byteLength));
    expect(Buffer.compare(new Uint8Array(await whole.arrayBuffer()), bytes)).toBe(0);

    const start = 3 * MiB - 7;
    const end = 5 * MiB + 9;
    const part = await fetch(`${h.url}${dl(mediaId)}`, { headers: { ...ALICE, Range: `bytes=${start}-${end}` } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes ${start}-${end}/${bytes.byteLength}`);
    expect(Buffer.compare(new Uint8Array(await part.arrayBuffer()), bytes.subarray(start, end + 1))).toBe(0);
    // The file is closed right after the last read, which may trail the last byte sent.
    await vi.waitFor(() => expect(openBlobFiles()).toEqual([]), { timeout: 10_000, interval: 20 });
  });

  it('closes the blob file when the client disconnects mid-download, and keeps serving', async () => {
    const bytes = binaryBytes(32 * MiB, 12);
    const { mediaId } = await upload(h, bytes);
    const { port } = new URL(h.url);
    await new Promise<void>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: Number(port), path: dl(mediaId), headers: ALICE }, (res) => {
        expect(res.statusCode).toBe(200);
        // Read one chunk, then stop reading and cut the connection: the server is mid-body.
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', (error) => {
        if (!req.destroyed) reject(error);
      });
      req.end();
    });
    await vi.waitFor(() => expect(openBlobFiles()).toEqual([]), { timeout: 10_000, interval: 20 });
    const again = await fetch(`${h.url}${dl(mediaId)}`, { headers: ALICE });
    expect(again.status).toBe(200);
    expect((await again.arrayBuffer()).byteLength).toBe(bytes.byteLength);
  });
});
