/** A failed fill as {@link LocalBlobCache} reports it. */
export interface FillFailure {
  readonly blobId: string;
  readonly error: unknown;
  /**
   * What failed, as a short bounded name usable as a metric label: the error's
   * `code` (`ENOSPC`, `EACCES`, an `S3StoreError` code such as `unavailable`,
   * `size_mismatch`), found on the error or its `cause` chain, else `other`.
   */
  readonly cause: string;
  /** Failures of this cause so far in this process, this one included. */
  readonly count: number;
}

const CODE_RE = /^[A-Za-z][A-Za-z0-9_]{0,39}$/;

/** The cause label of `error` (see {@link FillFailure.cause}). */
export function fillFailureCause(error: unknown): string {
  for (let current = error, depth = 0; current !== null && typeof current === 'object' && depth < 4; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && CODE_RE.test(code)) return code;
    current = (current as { cause?: unknown }).cause;
  }
  return 'other';
}

/**
 * Counts fill failures by cause and decides which to report: the first of
 * each cause, then at most one per cause per `reportEveryMs`, so that a full
 * disk or an unreachable bucket is one log line, not one per request.
 */
export class FillFailureTally {
  readonly #counts = new Map<string, number>();
  readonly #lastReported = new Map<string, number>();
  readonly #reportEveryMs: number;

  constructor(reportEveryMs: number) {
    this.#reportEveryMs = reportEveryMs;
  }

  /** Failures so far by cause. */
  get counts(): ReadonlyMap<string, number> {
    return this.#counts;
  }

  /** Counts the failure; answers it when it is to be reported. */
  record(blobId: string, error: unknown, now: number): FillFailure | undefined {
    const cause = fillFailureCause(error);
    const count = (this.#counts.get(cause) ?? 0) + 1;
    this.#counts.set(cause, count);
    const last = this.#lastReported.get(cause);
    if (last !== undefined && now - last < this.#reportEveryMs) return undefined;
    this.#lastReported.set(cause, now);
    return { blobId, error, cause, count };
  }
}
