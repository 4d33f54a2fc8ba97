import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  ListObjectsV2Command,
  UploadPartCopyCommand,
  type S3Client,
} from '@aws-sdk/client-s3';

/** S3's largest single `CopyObject`. */
const MAX_SINGLE_COPY = 5 * 1024 * 1024 * 1024;
/** S3's most parts per multipart upload. */
const MAX_PARTS = 10_000;

/**
 * A server-side copy of `from` to `to` in `bucket`: one `CopyObject` up to 5 GiB (S3's limit for
 * it), `UploadPartCopy` parts beyond (aborted on failure). No byte passes through this process and
 * no ETag is relied on beyond handing the parts' back to `CompleteMultipartUpload`.
 */
export async function copyObject(client: S3Client, bucket: string, from: string, to: string, size: number, partSize: number): Promise<void> {
  const source = `${bucket}/${encodeURIComponent(from).replace(/%2F/g, '/')}`;
  if (size <= MAX_SINGLE_COPY) {
    await client.send(new CopyObjectCommand({ Bucket: bucket, Key: to, CopySource: source }));
    return;
  }
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: to, ContentType: 'application/octet-stream' }));
  try {
    const parts: { PartNumber: number; ETag?: string }[] = [];
    const step = Math.max(partSize, Math.ceil(size / MAX_PARTS));
    for (let start = 0, number = 1; start < size; start += step, number++) {
      const end = Math.min(start + step, size) - 1;
      const { CopyPartResult } = await client.send(
        new UploadPartCopyCommand({ Bucket: bucket, Key: to, UploadId, PartNumber: number, CopySource: source, CopySourceRange: `bytes=${start}-${end}` }),
      );
      parts.push({ PartNumber: number, ...(CopyPartResult?.ETag === undefined ? {} : { ETag: CopyPartResult.ETag }) });
    }
    await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: to, UploadId, MultipartUpload: { Parts: parts } }));
  } catch (error) {
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: to, UploadId })).catch(() => undefined);
    throw error;
  }
}

/**
 * Every object under `prefix` ('' for the whole bucket), page by page. An
 * object listed without `LastModified` counts as written now: an age that
 * cannot be told must never make it look old to a sweep.
 */
export async function* listObjects(client: S3Client, bucket: string, prefix: string): AsyncGenerator<{ key: string; modifiedAt: number }> {
  let token: string | undefined;
  for (;;) {
    const page = await client.send(
      new ListObjectsV2Command({
        Bucket: bucket,
        ...(prefix === '' ? {} : { Prefix: prefix }),
        ...(token === undefined ? {} : { ContinuationToken: token }),
      }),
    );
    for (const object of page.Contents ?? []) {
      if (object.Key !== undefined) yield { key: object.Key, modifiedAt: object.LastModified?.getTime() ?? Date.now() };
    }
    if (page.IsTruncated !== true || page.NextContinuationToken === undefined) return;
    token = page.NextContinuationToken;
  }
}
