import { createHash, randomBytes } from 'node:crypto';
import { ListObjectsV2Command, ListMultipartUploadsCommand, CreateMultipartUploadCommand, type S3Client } from '@aws-sdk/client-s3';
import { describeBlobStore } from '@hsmedia/conformance';
import { ContentTooLargeError } from '@hsmedia/errors';
import { takePushBody, type BodySink } from '@hsmedia/media-core';
import { RGW_START_TIMEOUT_MS, startRgw, type RgwCluster } from '@hsmedia/test-fixtures/rgw';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3BlobStore, S3StoreError, createS3Client } from '../src/index.js';

const MiB = 1024 * 1024;
let rgw: RgwCluster;
let client: S3Client;
let bucket: string;

beforeAll(async () => {
  rgw = await startRgw();
  client = createS3Client({
    endpoint: rgw.endpoint,
    forcePathStyle: true,
    accessKeyId: rgw.accessKeyId,
    secretAccessKey: rgw.secretAccessKey,
  });
  bucket = await rgw.createBucket();
}, RGW_START_TIMEOUT_MS);

afterAll(async () => {
  client?.destroy();
  await rgw?.stop();
}, 120_000);

let prefixes = 0;
/** A store on a fresh prefix of the shared bucket: empty, like a fresh bucket, without the set-up cost. */
function freshStore(options: { partSize?: number; queueSize?: number } = {}): S3BlobStore {
  return new S3BlobStore({ client, bucket, prefix: `p${++prefixes}-${randomBytes(3).toString('hex')}/`, ...options });
}

async function keysUnder(prefix: string): Promise<string[]> {
  const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (out.Contents ?? []).map((o) => o.Key!).sort();
}

async function multipartUploadsUnder(prefix: string): Promise<number> {
  const out = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
  return (out.Uploads ?? []).length;
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const part of stream) parts.push(part);
  return Buffer.concat(parts);
}

async function* chunks(data: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.byteLength; i += size) yield data.subarray(i, i + size);
}

describeBlobStore('S3BlobStore on Ceph RGW', async () => ({ store: freshStore(), cleanup: async () => {} }));

describe('S3BlobStore on Ceph RGW', () => {
  it('stores a multipart upload (3 parts of 5 MiB) without relying on the ETag, under the prefix', async () => {
    const store = freshStore({ partSize: 5 * MiB, queueSize: 2 });
    const data = randomBytes(12 * MiB + 3);
    const stored = await store.put(chunks(data, 256 * 1024));
    expect(stored.size).toBe(data.byteLength);
    expect(stored.sha256).toBe(createHash('sha256').update(data).digest('hex'));
    expect(await keysUnder(store.prefix)).toEqual([`${store.prefix}${stored.blobId}`]);
    expect((await readAll((await store.open(stored.blobId, { start: 5 * MiB - 2, end: 5 * MiB + 1 }))!)).equals(data.subarray(5 * MiB - 2, 5 * MiB + 2))).toBe(true);
    expect(Buffer.compare(await readAll((await store.open(stored.blobId))!), data)).toBe(0);
  });

  it('a multipart upload that goes over maxBytes is aborted: no object, no parts left', async () => {
    const store = freshStore({ partSize: 5 * MiB, queueSize: 2 });
    const error = await store.put(chunks(randomBytes(16 * MiB), MiB), { maxBytes: 11 * MiB }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ContentTooLargeError);
    expect(await keysUnder(store.prefix)).toEqual([]);
    expect(await multipartUploadsUnder(store.prefix)).toBe(0);
  });

  it('a multipart upload whose source fails midway leaves no object and no parts', async () => {
    const store = freshStore({ partSize: 5 * MiB, queueSize: 2 });
    const failure = new Error('client went away');
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield* chunks(randomBytes(11 * MiB), MiB);
      throw failure;
    }
    await expect(store.put(failing())).rejects.toBe(failure);
    expect(await keysUnder(store.prefix)).toEqual([]);
    expect(await multipartUploadsUnder(store.prefix)).toBe(0);
  });

  it('reads a start past the end as empty, like the filesystem store', async () => {
    const store = freshStore();
    const { blobId } = await store.put(chunks(Buffer.from('0123456789'), 4));
    expect((await readAll((await store.open(blobId, { start: 8, end: 1000 }))!)).toString()).toBe('89');
    expect((await readAll((await store.open(blobId, { start: 50 }))!)).byteLength).toBe(0);
    expect(await store.open('Missing_blob_0000', { start: 50 })).toBeNull();
  });

  it('cleanupStaging aborts stale unfinished multipart uploads and spares fresh ones', async () => {
    const prefix = `cleanup-${randomBytes(3).toString('hex')}/`;
    await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: `${prefix}Crashed_upload_0001` }));
    const careful = new S3BlobStore({ client, bucket, prefix });
    expect(await careful.cleanupStaging()).toBe(0); // younger than a day: maybe another instance's
    expect(await multipartUploadsUnder(prefix)).toBe(1);
    const eager = new S3BlobStore({ client, bucket, prefix, staleUploadAfterMs: -60_000 });
    expect(await eager.cleanupStaging()).toBe(1);
    expect(await multipartUploadsUnder(prefix)).toBe(0);
  });

  it('directUrl presigns a GET that forces Content-Type and Content-Disposition', async () => {
    const store = freshStore();
    const { blobId } = await store.put(chunks(Buffer.from('<svg>not inline</svg>'), 100));
    const url = await store.directUrl(blobId, {
      expiresInSeconds: 120,
      contentType: 'image/svg+xml',
      contentDisposition: 'attachment; filename="a.svg"',
    });
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\//);
    expect(new URL(url!).searchParams.get('X-Amz-Expires')).toBe('120');
    const response = await fetch(url!);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('image/svg+xml');
    expect(response.headers.get('content-disposition')).toBe('attachment; filename="a.svg"');
    expect(await response.text()).toBe('<svg>not inline</svg>');
    // Changing the forced headers breaks the signature.
    const tampered = new URL(url!);
    tampered.searchParams.set('response-content-type', 'text/html');
    expect((await fetch(tampered)).status).toBe(403);
    expect(await store.directUrl('../x', { expiresInSeconds: 60, contentType: 'a/b', contentDisposition: 'inline' })).toBeNull();
  });

  it('checkWritable passes on a writable bucket and leaves nothing behind', async () => {
    const store = freshStore();
    await store.checkWritable();
    expect(await keysUnder(store.prefix)).toEqual([]);
  });

  describe('faults give typed errors', () => {
    it('wrong credentials: access_denied', async () => {
      const wrong = createS3Client({ endpoint: rgw.endpoint, forcePathStyle: true, accessKeyId: 'nobody', secretAccessKey: 'wrong' });
      const store = new S3BlobStore({ client: wrong, bucket });
      await expect(store.checkWritable()).rejects.toMatchObject({ name: 'S3StoreError', code: 'access_denied' });
      await expect(store.put(chunks(Buffer.from('x'), 1))).rejects.toMatchObject({ code: 'access_denied' });
      await expect(store.open('Some_blob_id_0001')).rejects.toMatchObject({ code: 'access_denied' });
      wrong.destroy();
    });

    it('missing bucket: no_such_bucket', async () => {
      const store = new S3BlobStore({ client, bucket: 'no-such-bucket-here' });
      const error = await store.checkWritable().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(S3StoreError);
      expect(error).toMatchObject({ code: 'no_such_bucket' });
      await expect(store.put(chunks(Buffer.from('x'), 1))).rejects.toMatchObject({ code: 'no_such_bucket' });
    });

    it('nothing listening: unavailable, quickly', async () => {
      const down = createS3Client({ endpoint: 'http://127.0.0.1:9', forcePathStyle: true, accessKeyId: 'a', secretAccessKey: 'b', maxAttempts: 1 });
      const store = new S3BlobStore({ client: down, bucket });
      await expect(store.stat('Some_blob_id_0001')).rejects.toMatchObject({ code: 'unavailable' });
      await expect(store.put(chunks(Buffer.from('x'), 1))).rejects.toMatchObject({ code: 'unavailable' });
      down.destroy();
    });

    it('gateway stopped mid-upload: unavailable, the source is closed, no object once it is back', async () => {
      const store = new S3BlobStore({
        client: createS3Client({
          endpoint: rgw.endpoint,
          forcePathStyle: true,
          accessKeyId: rgw.accessKeyId,
          secretAccessKey: rgw.secretAccessKey,
          requestTimeoutMs: 2_000,
          maxAttempts: 2,
        }),
        bucket,
        prefix: `mid-${randomBytes(3).toString('hex')}/`,
        partSize: 5 * MiB,
        queueSize: 1,
      });
      let closed = false;
      let stopped: Promise<void> | undefined;
      async function* source(): AsyncGenerator<Uint8Array> {
        try {
          for (let sent = 0; sent < 64 * MiB; sent += MiB) {
            // After two parts are on their way, take the gateway away.
            if (sent === 11 * MiB) stopped = rgw.stopGateway();
            if (stopped !== undefined) await stopped;
            yield randomBytes(MiB);
          }
        } finally {
          closed = true;
        }
      }
      try {
        await expect(store.put(source())).rejects.toMatchObject({ name: 'S3StoreError', code: expect.stringMatching(/^(unavailable|timeout)$/) });
        expect(closed).toBe(true);
      } finally {
        await stopped;
        await rgw.startGateway();
      }
      // Whatever the gateway kept of the unfinished upload is a multipart upload (never an object).
      expect(await keysUnder(store.prefix)).toEqual([]);
    }, 120_000);

    it('a hung gateway: timeout within the request timeout, then recovery', async () => {
      const impatient = createS3Client({
        endpoint: rgw.endpoint,
        forcePathStyle: true,
        accessKeyId: rgw.accessKeyId,
        secretAccessKey: rgw.secretAccessKey,
        requestTimeoutMs: 1_000,
        maxAttempts: 1,
      });
      const store = new S3BlobStore({ client: impatient, bucket, prefix: 'hung/' });
      const { blobId } = await store.put(chunks(Buffer.from('still here'), 3));
      rgw.pauseGateway();
      try {
        await expect(store.stat(blobId)).rejects.toMatchObject({ code: 'timeout' });
      } finally {
        rgw.resumeGateway();
      }
      expect(await store.stat(blobId)).toEqual({ size: 10 });
      impatient.destroy();
    });
  });

  it('refuses bad constructor options', () => {
    expect(() => new S3BlobStore({ client, bucket: 'Bad_Bucket' })).toThrow(TypeError);
    expect(() => new S3BlobStore({ client, bucket, partSize: MiB })).toThrow(TypeError);
    expect(() => new S3BlobStore({ client, bucket, queueSize: 0 })).toThrow(TypeError);
    expect(() => new S3BlobStore({ client, bucket, prefix: '/abs' })).toThrow(TypeError);
    expect(() => new S3BlobStore({ client, bucket, prefix: 'a//b' })).toThrow(TypeError);
    expect(new S3BlobStore({ client, bucket, prefix: 'media' }).prefix).toBe('media/');
  });

  it('open offers the body as a push body: every byte, paced by the sink, once nothing has read the stream', async () => {
    const store = freshStore();
    const body = randomBytes(5 * MiB + 3);
    const { blobId } = await store.put(new Blob([body]).stream());
    const stream = await store.open(blobId, { start: 1, end: 4 * MiB });
    const push = takePushBody(stream!);
    expect(push).toBeDefined();
    const parts: Buffer[] = [];
    let full = false;
    let writesWhileFull = 0;
    const ended = new Promise<void>((resolve, reject) => {
      const sink: BodySink = {
        write: (chunk) => {
          if (full) writesWhileFull++;
          parts.push(Buffer.from(chunk));
          // Full after every chunk: the body must wait for `drained` each time.
          full = true;
          setImmediate(() => {
            full = false;
            controls.drained();
          });
          return false;
        },
        end: resolve,
        abort: reject,
      };
      const controls = push!.attach(sink);
    });
    await ended;
    expect(Buffer.concat(parts).equals(body.subarray(1, 4 * MiB + 1))).toBe(true);
    expect(writesWhileFull).toBe(0);

    // A stream already read is not offered any more; the rest reads as a Web stream.
    const read = await store.open(blobId);
    const reader = read!.getReader();
    const first = await reader.read();
    reader.releaseLock();
    expect(takePushBody(read!)).toBeUndefined();
    expect(Buffer.concat([first.value!, await readAll(read!)]).equals(body)).toBe(true);
  });

  it('a push body stops when its sink goes away, and an abort of the read reaches the sink', async () => {
    const store = freshStore();
    const { blobId } = await store.put(new Blob([randomBytes(4 * MiB)]).stream());
    const gone = await new Promise<'gone'>((resolve) => {
      void store.open(blobId).then((stream) => {
        const controls = takePushBody(stream!)!.attach({
          write: () => {
            controls.gone(new Error('client disconnected'));
            resolve('gone');
            return false;
          },
          end: () => undefined,
          abort: () => undefined,
        });
      });
    });
    expect(gone).toBe('gone');

    const controller = new AbortController();
    const stream = await store.open(blobId, { signal: controller.signal });
    const aborted = new Promise<unknown>((resolve, reject) => {
      takePushBody(stream!)!.attach({
        write: () => {
          controller.abort(new Error('stop'));
          return true;
        },
        end: () => reject(new Error('ended instead of aborting')),
        abort: resolve,
      });
    });
    expect(((await aborted) as Error).message).toBe('stop');
    // The store still serves after both abandoned reads.
    expect((await readAll((await store.open(blobId))!)).length).toBe(4 * MiB);
  });
});
