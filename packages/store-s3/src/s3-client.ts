import { S3Client } from '@aws-sdk/client-s3';

/** How to reach an S3-compatible service; see {@link createS3Client}. */
export interface S3ConnectionOptions {
  /** Service URL, e.g. `https://s3.eu-west-1.amazonaws.com` or `http://127.0.0.1:7480`; AWS's default when absent. */
  readonly endpoint?: string;
  /** Signing region; `us-east-1` when absent (what most S3-compatible services expect). */
  readonly region?: string;
  /** `https://host/bucket/key` rather than `https://bucket.host/key`: needed by most self-hosted services. */
  readonly forcePathStyle?: boolean;
  /** Static keys; when absent the SDK's default chain reads `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (and profiles, roles). */
  readonly accessKeyId?: string;
  readonly secretAccessKey?: string;
  readonly sessionToken?: string;
  /** Most milliseconds a request may wait for a connection. Default 5 000. */
  readonly connectTimeoutMs?: number;
  /** Most milliseconds a request may stay silent (no byte either way) before it fails. Default 30 000. */
  readonly requestTimeoutMs?: number;
  /** Attempts per request including the first (the SDK retries 5xx, throttling and network errors). Default 3. */
  readonly maxAttempts?: number;
}

/**
 * Creates an `S3Client` set up for streamed uploads to any S3-compatible
 * service. Flexible checksums are computed and validated only when an
 * operation requires them: with the SDK's default (`WHEN_SUPPORTED`) a
 * streamed `PutObject` is sent with `aws-chunked` encoding, which Ceph RGW
 * answers with `411 MissingContentLength`.
 */
export function createS3Client(options: S3ConnectionOptions = {}): S3Client {
  const credentials =
    options.accessKeyId !== undefined && options.secretAccessKey !== undefined
      ? {
          accessKeyId: options.accessKeyId,
          secretAccessKey: options.secretAccessKey,
          ...(options.sessionToken === undefined ? {} : { sessionToken: options.sessionToken }),
        }
      : undefined;
  const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  return new S3Client({
    region: options.region ?? 'us-east-1',
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
    forcePathStyle: options.forcePathStyle ?? false,
    ...(credentials === undefined ? {} : { credentials }),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: options.maxAttempts ?? 3,
    requestHandler: {
      connectionTimeout: options.connectTimeoutMs ?? 5_000,
      // `socketTimeout` fails a request whose socket goes silent (a hung gateway, also mid-body);
      // `requestTimeout` only warns unless told to throw.
      socketTimeout: requestTimeoutMs,
      requestTimeout: requestTimeoutMs,
      throwOnRequestTimeout: true,
    },
  });
}
