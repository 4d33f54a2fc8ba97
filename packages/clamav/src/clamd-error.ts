/**
 * Why a clamd exchange failed, one discriminator:
 *
 * - `connect`: the socket could not be reached (clamd stopped, wrong path or port);
 * - `closed`: clamd closed the connection before a complete answer;
 * - `timeout`: no answer within the client's timeout;
 * - `aborted`: the caller's signal aborted the exchange;
 * - `protocol`: an answer that is not clamd's (garbage, too long);
 * - `size_limit`: the stream is over clamd's `StreamMaxLength` (`INSTREAM size limit exceeded`);
 * - `clamd`: clamd answered with an error of its own (`... ERROR`).
 */
export type ClamdErrorCode = 'connect' | 'closed' | 'timeout' | 'aborted' | 'protocol' | 'size_limit' | 'clamd';

/** A failed clamd exchange; never a verdict. */
export class ClamdError extends Error {
  override readonly name = 'ClamdError';
  readonly code: ClamdErrorCode;

  constructor(code: ClamdErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/** Whether `err` is a {@link ClamdError} (with `code`, when given). */
export function isClamdError(err: unknown, code?: ClamdErrorCode): err is ClamdError {
  return err instanceof ClamdError && (code === undefined || err.code === code);
}
