import type { MediaScanner, ScanRequest, ScanVerdict } from '@hsmedia/media-core';
import type { ClamdClient } from './clamd-client.js';
import { isClamdError } from './clamd-error.js';

/**
 * `@hsmedia/media-core`'s `MediaScanner` on clamd: `scan` streams the
 * bytes with `INSTREAM`, `signatureVersion` asks `VERSION`, and clamd's own
 * size limit (`StreamMaxLength`) counts as oversize, not as a failure.
 */
export class ClamdMediaScanner implements MediaScanner {
  readonly client: ClamdClient;

  constructor(client: ClamdClient) {
    this.client = client;
  }

  scan(request: ScanRequest): Promise<ScanVerdict> {
    return this.client.scan(request.bytes, { signal: request.signal });
  }

  signatureVersion(signal: AbortSignal): Promise<string> {
    return this.client.version({ signal });
  }

  isSizeLimitError(err: unknown): boolean {
    return isClamdError(err, 'size_limit');
  }
}
