import { ErrCode, MatrixError } from '@hsmedia/errors';
import type { MediaQueries } from './ports/index.js';

/**
 * One user's upload allowance. Every field is optional; `null` lifts a limit
 * that the default sets (in a per-user entry).
 */
export interface UploadQuotaLimits {
  /** Bytes of local media the user may hold in total. */
  readonly maxBytes?: number | null;
  /** Local media items the user may hold in total. */
  readonly maxFiles?: number | null;
  /** Bytes the user may upload per `periodMs` window. */
  readonly periodBytes?: number | null;
  /** Items the user may upload per `periodMs` window. */
  readonly periodFiles?: number | null;
  /** The sliding window of `periodBytes`/`periodFiles`, in ms. Required when either is set. */
  readonly periodMs?: number | null;
}

/** Options for {@link UploadQuotas}. */
export interface UploadQuotaOptions {
  /** Limits of every user without an entry in `users`. */
  readonly default?: UploadQuotaLimits;
  /** Per-user limits, by full user ID; fields override `default` one by one. */
  readonly users?: Readonly<Record<string, UploadQuotaLimits>>;
  /**
   * Where users learn about their quota. When set, refusals are 403
   * `M_USER_LIMIT_EXCEEDED` with this `info_uri` (spec v1.18, MSC4335);
   * when absent they are 403 `M_FORBIDDEN`, which every client understands.
   */
  readonly infoUri?: string;
}

/** Bytes and items of a user's completed local media. */
export interface UserUsage {
  readonly bytes: number;
  readonly files: number;
}

/** {@link UploadQuotaLimits} with the default applied: `null` means no limit. */
export interface ResolvedUploadQuotaLimits {
  readonly maxBytes: number | null;
  readonly maxFiles: number | null;
  readonly periodBytes: number | null;
  readonly periodFiles: number | null;
  readonly periodMs: number | null;
}

const FIELDS = ['maxBytes', 'maxFiles', 'periodBytes', 'periodFiles', 'periodMs'] as const;

function checkLimits(where: string, limits: UploadQuotaLimits): void {
  for (const field of FIELDS) {
    const value = limits[field];
    if (value === undefined || value === null) continue;
    if (!Number.isSafeInteger(value) || value < (field === 'periodMs' ? 1 : 0)) {
      throw new TypeError(`UploadQuotas: ${where}.${field} must be a ${field === 'periodMs' ? 'positive' : 'non-negative'} integer`);
    }
  }
}

/**
 * Per-user upload quotas, counted from the metadata store
 * ({@link MediaQueries.getUserUsage}): totals over all of a user's
 * local media, and a sliding window (`periodMs`) by creation time.
 *
 * `MediaService` checks twice: before reading the body (declared
 * Content-Length, one more file) and after the bytes are staged but before
 * the record is written (real size); a refused upload leaves no blob and no
 * record. The second check and the write run one at a time per user: in this
 * process, and across the processes of a deployment when `MediaService` has
 * `userLeases` (`DeploymentUserLock`), so concurrent finishes on several
 * instances cannot overshoot. The first check may let uploads start that
 * the second then refuses.
 */
export class UploadQuotas {
  readonly #default: ResolvedUploadQuotaLimits;
  readonly #users: ReadonlyMap<string, ResolvedUploadQuotaLimits>;
  readonly #infoUri: string | undefined;

  /** Throws `TypeError` for negative or fractional limits, or a period limit without `periodMs`. */
  constructor(options: UploadQuotaOptions) {
    const base = options.default ?? {};
    checkLimits('default', base);
    this.#default = resolve({}, base, 'default');
    const users = new Map<string, ResolvedUploadQuotaLimits>();
    for (const [userId, limits] of Object.entries(options.users ?? {})) {
      checkLimits(`users[${JSON.stringify(userId)}]`, limits);
      users.set(userId, resolve(this.#default, limits, `users[${JSON.stringify(userId)}]`));
    }
    this.#users = users;
    this.#infoUri = options.infoUri;
  }

  /** The limits that apply to `userId`. */
  limitsFor(userId: string): ResolvedUploadQuotaLimits {
    return this.#users.get(userId) ?? this.#default;
  }

  /**
   * Throws the quota error when `userId` storing one more item of
   * `incomingBytes` would pass a limit. Queries the store only for the
   * limits that are set.
   */
  async check(metadata: Pick<MediaQueries, 'getUserUsage'>, userId: string, incomingBytes: number, now: number): Promise<void> {
    const limits = this.limitsFor(userId);
    if (limits.maxBytes !== null || limits.maxFiles !== null) {
      const total = await metadata.getUserUsage(userId, 0);
      if (limits.maxFiles !== null && total.files + 1 > limits.maxFiles) {
        throw this.#refuse(`You may store at most ${limits.maxFiles} files`);
      }
      if (limits.maxBytes !== null && total.bytes + incomingBytes > limits.maxBytes) {
        throw this.#refuse(`You may store at most ${limits.maxBytes} bytes`);
      }
    }
    if (limits.periodMs !== null && (limits.periodBytes !== null || limits.periodFiles !== null)) {
      // The window is the last periodMs: media exactly periodMs old has left it.
      const recent = await metadata.getUserUsage(userId, now - limits.periodMs + 1);
      if (limits.periodFiles !== null && recent.files + 1 > limits.periodFiles) {
        throw this.#refuse(`You may upload at most ${limits.periodFiles} files per ${limits.periodMs} ms`);
      }
      if (limits.periodBytes !== null && recent.bytes + incomingBytes > limits.periodBytes) {
        throw this.#refuse(`You may upload at most ${limits.periodBytes} bytes per ${limits.periodMs} ms`);
      }
    }
  }

  #refuse(message: string): MatrixError {
    if (this.#infoUri === undefined) return new MatrixError(ErrCode.FORBIDDEN, `Upload quota exceeded: ${message}`);
    return new MatrixError(ErrCode.USER_LIMIT_EXCEEDED, `Upload quota exceeded: ${message}`, {
      httpStatus: 403,
      data: { info_uri: this.#infoUri },
    });
  }
}

function resolve(base: UploadQuotaLimits, override: UploadQuotaLimits, where: string): ResolvedUploadQuotaLimits {
  const pick = (field: (typeof FIELDS)[number]): number | null => {
    const value = override[field] !== undefined ? override[field] : base[field];
    return value ?? null;
  };
  const resolved: ResolvedUploadQuotaLimits = {
    maxBytes: pick('maxBytes'),
    maxFiles: pick('maxFiles'),
    periodBytes: pick('periodBytes'),
    periodFiles: pick('periodFiles'),
    periodMs: pick('periodMs'),
  };
  if ((resolved.periodBytes !== null || resolved.periodFiles !== null) && resolved.periodMs === null) {
    throw new TypeError(`UploadQuotas: ${where} sets periodBytes or periodFiles without periodMs`);
  }
  return resolved;
}
