/**
 * A streaming client of ClamAV's `clamd` and a `MediaScanner` on it for the
 * scan stage of `@hsmedia/media-core`.
 */
export { ClamdClient, type ClamdClientOptions, type ClamdCallOptions } from './clamd-client.js';
export { ClamdError, type ClamdErrorCode, isClamdError } from './clamd-error.js';
export { parseScanReply, parseVersionReply, type ClamdVerdict } from './clamd-reply.js';
export { ClamdMediaScanner } from './clamd-media-scanner.js';
export type { ScanSource } from './internal/byte-chunks.js';
