import { ClamdError } from './clamd-error.js';

/** What clamd found in a stream. */
export type ClamdVerdict = { readonly verdict: 'clean' } | { readonly verdict: 'infected'; readonly signature: string };

/** Signature names are short printable ASCII; anything else is not clamd talking. */
const SIGNATURE_RE = /^[\x21-\x7e][\x20-\x7e]{0,254}$/;

/**
 * Reads clamd's answer to `zINSTREAM`: `stream: OK`, `stream: <name> FOUND`,
 * `INSTREAM size limit exceeded. ERROR` or another `... ERROR` (clamd's
 * `docs/man/clamd.8`, "INSTREAM"). Anything else is a `protocol` error.
 */
export function parseScanReply(reply: string): ClamdVerdict {
  if (reply === 'stream: OK') return { verdict: 'clean' };
  if (reply.startsWith('stream: ') && reply.endsWith(' FOUND')) {
    const signature = reply.slice('stream: '.length, -' FOUND'.length);
    if (SIGNATURE_RE.test(signature)) return { verdict: 'infected', signature };
  }
  if (reply === 'INSTREAM size limit exceeded. ERROR') throw new ClamdError('size_limit', 'clamd: the stream is over its StreamMaxLength');
  if (/^[\x20-\x7e]{1,500} ERROR$/.test(reply)) throw new ClamdError('clamd', `clamd answered an error: ${reply}`);
  throw new ClamdError('protocol', `clamd answered something that is not a scan result: ${JSON.stringify(reply.slice(0, 100))}`);
}

/** Reads clamd's answer to `zVERSION`: `ClamAV <engine>/<db version>/<db date>`. */
export function parseVersionReply(reply: string): string {
  if (/^ClamAV [\x20-\x7e]{1,200}$/.test(reply)) return reply;
  throw new ClamdError('protocol', `clamd answered something that is not a version: ${JSON.stringify(reply.slice(0, 100))}`);
}
