import { once } from 'node:events';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import {
  generateId,
  type BlobPutOptions,
  type BlobReadOptions,
  type BlobStaging,
  type BlobStore,
  type ByteSource,
  type DirectUrlOptions,
  type ListedBlob,
  type StagedBlob,
  type StoredBlob,
} from '@hsmedia/media-core';
import { bodyStream } from './internal/body-stream.js';
import { isValidBlobId, normalisePrefix } from './internal/blob-key.js';
import { copyObject, listObjects } from './internal/object-ops.js';
import { countedSource, releaseSource, type SourceTally } from './internal/source-reader.js';
import { toS3StoreError } from './s3-store-error.js';

/** Options of {@link S3BlobStore}. */
export interface S3BlobStoreOptions {
  /** A client from {@link createS3Client} (or any `S3Client` with `requestChecksumCalculation: 'WHEN_REQUIRED'`). */
  readonly client: S3Client;
  readonly bucket: string;
  /** Key prefix, e.g. `media/`; '' (the default) puts blobs at the bucket's root. */
  readonly prefix?: string;
  /** Bytes per multipart part (at least 5 MiB, S3's minimum); smaller uploads are one `PutObject`. Default 8 MiB. */
  readonly partSize?: number;
  /** Parts in flight per upload. Memory per upload stays under `partSize × (queueSize + 1)`. Default 4. */
  readonly queueSize?: number;
  /** `cleanupStaging` aborts unfinished multipart uploads older than this. Default one day. */
  readonly staleUploadAfterMs?: number;
}

const MiB = 1024 * 1024;
const MIN_PART_SIZE = 5 * MiB;
const DAY_MS = 24 * 60 * 60 * 1000;
/** Staged objects of content-addressed puts live under `<prefix>.staging/`: a dot is never in a blob ID. */
const STAGING_DIR = '.staging/';

function checkOffset(name: string, value: number | undefined): void {
  if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) {
    throw new RangeError(`${name} must be a non-negative safe integer, got ${value}`);
  }
}

function abortErrorOf(signal: AbortSignal): unknown {
  return signal.reason ?? Object.assign(new Error('The operation was aborted'), { name: 'AbortError' });
}

function serviceNameOf(error: unknown): string | undefined {
  const name = (error as { name?: unknown } | null)?.name;
  return typeof name === 'string' ? name : undefined;
}

function statusOf(error: unknown): number | undefined {
  const status = (error as { $metadata?: { httpStatusCode?: unknown } } | null)?.$metadata?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
}

function emptyStream(): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      controller.close();
    },
  });
}

/**
 * A {@link BlobStore} on an S3-compatible bucket (AWS S3, Ceph RGW, MinIO,
 * Garage, R2).
 *
 * Each blob is one object at `<prefix><blobId>`, with a random ID chosen
 * here (never derived from user input). `put` streams through `Upload`
 * from `@aws-sdk/lib-storage`: one `PutObject` when the bytes fit in a part,
 * a multipart upload otherwise, so an object appears only once complete and
 * a failed upload is aborted (its parts removed). The ETag S3 answers is
 * never used (Ceph RGW sends an empty one for multipart uploads): size and
 * SHA-256 are computed here while streaming.
 */
export class S3BlobStore implements BlobStore, BlobStaging {
  readonly bucket: string;
  readonly prefix: string;
  readonly #client: S3Client;
  readonly #partSize: number;
  readonly #queueSize: number;
  readonly #staleUploadAfterMs: number;
  /** Keys of this instance's uploads in progress, which `cleanupStaging` spares. */
  readonly #writing = new Set<string>();

  constructor(options: S3BlobStoreOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('S3BlobStore: options are required');
    if (typeof options.bucket !== 'string' || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(options.bucket)) {
      throw new TypeError(`S3BlobStore: bucket must be a valid S3 bucket name, got ${JSON.stringify(options.bucket)}`);
    }
    const partSize = options.partSize ?? 8 * MiB;
    if (!Number.isSafeInteger(partSize) || partSize < MIN_PART_SIZE) {
      throw new TypeError(`S3BlobStore: partSize must be an integer of at least ${MIN_PART_SIZE}`);
    }
    const queueSize = options.queueSize ?? 4;
    if (!Number.isSafeInteger(queueSize) || queueSize < 1) throw new TypeError('S3BlobStore: queueSize must be a positive integer');
    this.#client = options.client;
    this.bucket = options.bucket;
    this.prefix = normalisePrefix(options.prefix);
    this.#partSize = partSize;
    this.#queueSize = queueSize;
    this.#staleUploadAfterMs = options.staleUploadAfterMs ?? DAY_MS;
  }

  #keyOf(blobId: string): string {
    return `${this.prefix}${blobId}`;
  }

  async put(source: ByteSource, options: BlobPutOptions = {}): Promise<StoredBlob> {
    const blobId = generateId();
    const { size, sha256 } = await this.#upload(source, options, this.#keyOf(blobId));
    return { blobId, size, sha256 };
  }

  /**
   * Like {@link put}, but the bytes go to a staging key (`<prefix>.staging/<random>`,
   * outside the blob ID space) until `publishAs` copies them to the blob's key on the
   * server side (`CopyObject`, no bytes through this process) and deletes the staging
   * object. Content addressing needs it: the key is the hash, known only at the end.
   */
  async stageBlob(source: ByteSource, options: BlobPutOptions = {}): Promise<StagedBlob> {
    const stagingKey = `${this.prefix}${STAGING_DIR}${generateId()}`;
    const { size, sha256 } = await this.#upload(source, options, stagingKey);
    let settled = false;
    const dropStaging = async (): Promise<void> => {
      settled = true;
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: stagingKey })).catch(() => undefined);
    };
    return {
      size,
      sha256,
      publishAs: async (blobId: string): Promise<void> => {
        if (settled) throw new Error('S3BlobStore: the staged blob was already published or discarded');
        if (!isValidBlobId(blobId)) throw new TypeError('S3BlobStore: invalid blob ID');
        try {
          await copyObject(this.#client, this.bucket, stagingKey, this.#keyOf(blobId), size, this.#partSize);
        } catch (error) {
          await dropStaging();
          throw toS3StoreError(error, 'S3BlobStore.publishAs');
        }
        await dropStaging();
      },
      discard: async (): Promise<void> => {
        if (!settled) await dropStaging();
      },
    };
  }

  /**
   * Every blob under the prefix with its `LastModified` (the orphan sweep); staging and probe keys are
   * skipped. That is when the PUT or the copy out of staging wrote the object, or when a multipart
   * upload began: the orphan grace must outlast the longest single upload.
   */
  async *listBlobs(): AsyncIterable<ListedBlob> {
    try {
      for await (const object of listObjects(this.#client, this.bucket, this.prefix)) {
        const blobId = object.key.slice(this.prefix.length);
        if (isValidBlobId(blobId)) yield { blobId, modifiedAt: object.modifiedAt };
      }
    } catch (error) {
      throw toS3StoreError(error, 'S3BlobStore.listBlobs');
    }
  }

  async #upload(source: ByteSource, options: BlobPutOptions, key: string): Promise<{ size: number; sha256: string }> {
    const { maxBytes = Number.POSITIVE_INFINITY, signal } = options;
    if (maxBytes !== Number.POSITIVE_INFINITY && (!Number.isSafeInteger(maxBytes) || maxBytes < 0)) {
      const error = new RangeError(`maxBytes must be a non-negative safe integer, got ${maxBytes}`);
      await releaseSource(source, error);
      throw error;
    }
    if (signal?.aborted) {
      await releaseSource(source, abortErrorOf(signal));
      throw abortErrorOf(signal);
    }
    const tally: SourceTally = { size: 0, sha256: '', failure: null };
    const body = Readable.from(countedSource(source, maxBytes, tally));
    // An 'error' event with no listener would crash the process; the failure is in `tally`.
    body.on('error', () => {});
    const upload = new Upload({
      client: this.#client,
      params: { Bucket: this.bucket, Key: key, Body: body, ContentType: 'application/octet-stream' },
      partSize: this.#partSize,
      queueSize: this.#queueSize,
      leavePartsOnError: false,
    });
    // Aborting ends the source read with the signal's reason: the uploader then fails, aborts the
    // multipart upload (removing its parts) and `done()` settles.
    const onAbort = (): void => {
      body.destroy(abortErrorOf(signal!) as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    this.#writing.add(key);
    try {
      await upload.done();
    } catch (error) {
      if (tally.failure === null) {
        // S3 failed, not the source. A `CompleteMultipartUpload` that timed out may still have
        // completed: remove the key so no object outlives a failed put (best effort).
        await this.#client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })).catch(() => undefined);
        throw toS3StoreError(error, 'S3BlobStore.put');
      }
      throw tally.failure.error;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.#writing.delete(key);
      // Releases the source when S3 gave up before reading it all, and waits until it is closed
      // (a read in flight finishes first), so that a rejected put never leaves the source open.
      if (!body.closed) {
        const closed = once(body, 'close').catch(() => undefined);
        body.destroy();
        await closed;
      }
    }
    if (tally.failure !== null) {
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })).catch(() => undefined);
      throw tally.failure.error;
    }
    return { size: tally.size, sha256: tally.sha256 };
  }

  async open(blobId: string, options: BlobReadOptions = {}): Promise<ReadableStream<Uint8Array> | null> {
    const { start, end, signal } = options;
    checkOffset('start', start);
    checkOffset('end', end);
    if (start !== undefined && end !== undefined && start > end) throw new RangeError(`start ${start} is past end ${end}`);
    if (!isValidBlobId(blobId)) return null;
    if (signal?.aborted) throw abortErrorOf(signal);
    const range = start === undefined && end === undefined ? undefined : `bytes=${start ?? 0}-${end ?? ''}`;
    try {
      const output = await this.#client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.#keyOf(blobId), ...(range === undefined ? {} : { Range: range }) }),
        signal === undefined ? {} : { abortSignal: signal as never },
      );
      return bodyStream(output.Body as Readable, signal, (error) => toS3StoreError(error, 'S3BlobStore.open'));
    } catch (error) {
      if (serviceNameOf(error) === 'NoSuchKey') return null;
      // 416 for a range starting past the end (and for any range of an empty object): like the
      // filesystem store, a start past the last byte reads as empty when the blob exists.
      if (serviceNameOf(error) === 'InvalidRange' || statusOf(error) === 416) {
        return (await this.stat(blobId)) === null ? null : emptyStream();
      }
      throw toS3StoreError(error, 'S3BlobStore.open');
    }
  }

  async stat(blobId: string): Promise<{ readonly size: number } | null> {
    if (!isValidBlobId(blobId)) return null;
    try {
      const output = await this.#client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.#keyOf(blobId) }));
      return { size: output.ContentLength ?? 0 };
    } catch (error) {
      const name = serviceNameOf(error);
      if (name === 'NotFound' || name === 'NoSuchKey') return null;
      // HEAD answers carry no body, so a missing bucket is a bare 404 as well: tell them apart.
      if (statusOf(error) === 404) return null;
      throw toS3StoreError(error, 'S3BlobStore.stat');
    }
  }

  /**
   * Removes the blob. S3's `DeleteObject` succeeds whether or not the key
   * exists, so a `HeadObject` first tells whether it existed.
   */
  async delete(blobId: string): Promise<boolean> {
    if ((await this.stat(blobId)) === null) return false;
    try {
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.#keyOf(blobId) }));
      return true;
    } catch (error) {
      throw toS3StoreError(error, 'S3BlobStore.delete');
    }
  }

  /**
   * Aborts multipart uploads under the prefix left unfinished for longer than
   * `staleUploadAfterMs` (a crash mid-upload), sparing this instance's own.
   * The age threshold makes it safe while other instances upload to the same
   * bucket. (A bucket lifecycle rule `AbortIncompleteMultipartUpload` does the
   * same on the service side.) Returns how many it aborted.
   */
  async cleanupStaging(): Promise<number> {
    let aborted = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    const cutoff = Date.now() - this.#staleUploadAfterMs;
    try {
      for (;;) {
        const page = await this.#client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.bucket,
            ...(this.prefix === '' ? {} : { Prefix: this.prefix }),
            ...(keyMarker === undefined ? {} : { KeyMarker: keyMarker }),
            ...(uploadIdMarker === undefined ? {} : { UploadIdMarker: uploadIdMarker }),
          }),
        );
        for (const upload of page.Uploads ?? []) {
          if (upload.Key === undefined || upload.UploadId === undefined || this.#writing.has(upload.Key)) continue;
          if ((upload.Initiated?.getTime() ?? 0) > cutoff) continue;
          await this.#client.send(
            new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: upload.Key, UploadId: upload.UploadId }),
          );
          aborted++;
        }
        if (page.IsTruncated !== true) break;
        keyMarker = page.NextKeyMarker;
        uploadIdMarker = page.NextUploadIdMarker;
      }
      return aborted + (await this.#removeStaleStagedObjects(cutoff));
    } catch (error) {
      throw toS3StoreError(error, 'S3BlobStore.cleanupStaging');
    }
  }

  /** Deletes staged objects (`stageBlob`) older than `cutoff` that were never published: a crash between the two. */
  async #removeStaleStagedObjects(cutoff: number): Promise<number> {
    let removed = 0;
    for await (const object of listObjects(this.#client, this.bucket, `${this.prefix}${STAGING_DIR}`)) {
      if (object.modifiedAt > cutoff) continue;
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: object.key }));
      removed++;
    }
    return removed;
  }

  /**
   * A presigned `GET` URL for the blob that makes the object store answer
   * with the given `Content-Type` and `Content-Disposition` (S3's
   * `response-content-*` overrides, which are part of the signature).
   * Signing is local: no request is made and the blob's existence is not checked.
   */
  async directUrl(blobId: string, options: DirectUrlOptions): Promise<string | null> {
    if (!isValidBlobId(blobId)) return null;
    const expiresIn = options.expiresInSeconds;
    if (!Number.isSafeInteger(expiresIn) || expiresIn < 1 || expiresIn > 7 * 24 * 3600) {
      throw new RangeError(`expiresInSeconds must be an integer from 1 to 604800, got ${expiresIn}`);
    }
    return getSignedUrl(
      this.#client,
      new GetObjectCommand({
        Bucket: this.bucket,
        Key: this.#keyOf(blobId),
        ResponseContentType: options.contentType,
        ResponseContentDisposition: options.contentDisposition,
      }),
      { expiresIn },
    );
  }

  /**
   * Start-up check that the bucket is reachable and writable: writes a small
   * probe object (outside the blob ID space) and deletes it. Rejects with an
   * `S3StoreError` saying what failed.
   */
  async checkWritable(): Promise<void> {
    const key = `${this.prefix}.hsmedia-probe-${generateId()}`;
    try {
      await this.#client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: 'probe' }));
    } catch (error) {
      throw toS3StoreError(error, `cannot write to bucket ${this.bucket}`);
    }
    try {
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (error) {
      throw toS3StoreError(error, `cannot delete from bucket ${this.bucket}`);
    }
  }
}
