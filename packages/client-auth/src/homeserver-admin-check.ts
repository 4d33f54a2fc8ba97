import { createHash } from 'node:crypto';
import { ErrCode, MatrixError } from '@hsmedia/errors';
import { AnswerCache } from './internal/answer-cache.js';
import { getFromHomeserver } from './internal/homeserver-get.js';

/** Options for {@link HomeserverAdminCheck}. */
export interface HomeserverAdminCheckOptions {
  /** Base URL of the homeserver, e.g. `http://127.0.0.1:8008`. */
  readonly homeserverUrl: string;
  /** The fetch to use (default: global fetch). */
  readonly fetch?: typeof fetch;
  /** How long "admin" is believed without asking again. Default 60 000 ms. */
  readonly positiveTtlMs?: number;
  /** How long "not an admin" is believed without asking again. Default 10 000 ms. */
  readonly negativeTtlMs?: number;
  /** Cache capacity (oldest entries are evicted first). Default 10 000. */
  readonly maxEntries?: number;
  /** Give up on the homeserver after this long (→ 504). Default 10 000 ms. */
  readonly timeoutMs?: number;
  /** Time source for the cache (tests). Default `Date.now`. */
  readonly now?: () => number;
}

/**
 * Whether a user is a server admin of the homeserver, asked with the user's own access token.
 * Synapse answers its admin API only to server admins, so
 * `GET /_synapse/admin/v2/users/{userId}` tells: 200 is an admin; 401, 403 or 404 (an unknown
 * token, a non-admin, a homeserver without that API) is not. Answers are cached per token and
 * user (a SHA-256, not the token itself) for a short while, positive and negative; concurrent
 * checks share one request. Anything else fails closed: 502 `M_UNKNOWN` (504 on a timeout),
 * not cached, and no access.
 */
export class HomeserverAdminCheck {
  readonly #base: string;
  readonly #fetch: typeof fetch;
  readonly #timeoutMs: number;
  readonly #answers: AnswerCache<boolean>;

  constructor(options: HomeserverAdminCheckOptions) {
    let base: URL;
    try {
      base = new URL(options.homeserverUrl);
    } catch {
      throw new TypeError(`HomeserverAdminCheck: homeserverUrl is not a URL: ${options.homeserverUrl}`);
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new TypeError('HomeserverAdminCheck: homeserverUrl must be http(s)');
    this.#base = base.href.endsWith('/') ? base.href : `${base.href}/`;
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    const positiveTtlMs = nonNegative('positiveTtlMs', options.positiveTtlMs ?? 60_000);
    const negativeTtlMs = nonNegative('negativeTtlMs', options.negativeTtlMs ?? 10_000);
    this.#timeoutMs = Math.max(1, nonNegative('timeoutMs', options.timeoutMs ?? 10_000));
    this.#answers = new AnswerCache<boolean>({
      ttlMsOf: (admin) => (admin ? positiveTtlMs : negativeTtlMs),
      maxEntries: Math.max(1, nonNegative('maxEntries', options.maxEntries ?? 10_000)),
      now: options.now ?? Date.now,
    });
  }

  /** Whether `userId`, authenticated by `token`, is a server admin of the homeserver. */
  isAdmin(userId: string, token: string, signal?: AbortSignal): Promise<boolean> {
    // A NUL cannot occur in a token sent as a header, so token and user never run together.
    const key = createHash('sha256').update(token).update('\0').update(userId).digest('base64url');
    return this.#answers.get(key, () => this.#ask(userId, token), signal);
  }

  async #ask(userId: string, token: string): Promise<boolean> {
    const url = new URL(`_synapse/admin/v2/users/${encodeURIComponent(userId)}`, this.#base).href;
    const res = await getFromHomeserver(this.#fetch, url, token, this.#timeoutMs, {
      timedOut: 'Timed out asking the homeserver whether you are a server admin',
      unreachable: 'Could not reach the homeserver to ask whether you are a server admin',
    });
    await res.body?.cancel();
    if (res.status === 200) return true;
    if (res.status === 401 || res.status === 403 || res.status === 404) return false;
    throw new MatrixError(ErrCode.UNKNOWN, `Homeserver answered ${res.status} when asked whether you are a server admin`, { httpStatus: 502 });
  }
}

function nonNegative(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) throw new TypeError(`HomeserverAdminCheck: ${name} must be a non-negative number`);
  return value;
}
