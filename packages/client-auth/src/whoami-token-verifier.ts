import { createHash } from 'node:crypto';
import { ErrCode, MatrixError, errors } from '@hsmedia/errors';
import type { Requester } from '@hsmedia/runtime';
import { AnswerCache } from './internal/answer-cache.js';
import { getFromHomeserver } from './internal/homeserver-get.js';
import type { AccessTokenVerifier, VerifyOptions } from './verifier.js';

/** Options for {@link WhoamiTokenVerifier}. */
export interface WhoamiTokenVerifierOptions {
  /** Base URL of the homeserver's client-server API, e.g. `https://matrix.example.org`. */
  readonly homeserverUrl: string;
  /** The fetch to use (default: global fetch). */
  readonly fetch?: typeof fetch;
  /** How long a valid token is trusted without asking again. Default 60 000 ms. */
  readonly positiveTtlMs?: number;
  /** How long an unknown token is refused without asking again. Default 5 000 ms. */
  readonly negativeTtlMs?: number;
  /** Cache capacity (oldest entries are evicted first). Default 10 000. */
  readonly maxEntries?: number;
  /** Give up on the homeserver after this long (→ 504). Default 10 000 ms. */
  readonly timeoutMs?: number;
  /** Time source for the cache (tests). Default `Date.now`. */
  readonly now?: () => number;
}

/** The cache key of a token (and asserted user): a hash, so the cache holds no token. */
function cacheKey(token: string, asserted: string | undefined): string {
  const hash = createHash('sha256').update(token);
  // A NUL cannot occur in a token sent as a header, so token and user never run together.
  if (asserted !== undefined) hash.update('\0').update(asserted);
  return hash.digest('base64url');
}

/**
 * Verifies access tokens by asking the homeserver
 * (`GET /_matrix/client/v3/account/whoami` with the token as Bearer), so a
 * separate media server accepts exactly the tokens its homeserver does.
 *
 * Answers are cached (keyed by a SHA-256 of the token, so tokens do not sit in
 * memory in clear): valid tokens for `positiveTtlMs`, unknown ones for
 * `negativeTtlMs`; concurrent checks of one token share one request. Failures
 * are not cached: 502 `M_UNKNOWN` when the homeserver errs or answers
 * nonsense, 504 `M_UNKNOWN` when it is too slow.
 * A logged-out token keeps working for at most `positiveTtlMs`.
 *
 * An application service's identity assertion (`options.userId`, the
 * request's `user_id`) is passed on as whoami's own `user_id` parameter
 * (https://spec.matrix.org/v1.12/application-service-api/#identity-assertion),
 * and the user the homeserver answers with is the requester; the answer is
 * cached per token and user. A homeserver refusing the assertion (403) is
 * 403 `M_FORBIDDEN`, not cached.
 */
export class WhoamiTokenVerifier implements AccessTokenVerifier {
  readonly #whoamiUrl: string;
  readonly #fetch: typeof fetch;
  readonly #timeoutMs: number;
  readonly #answers: AnswerCache<Requester | null>;

  constructor(options: WhoamiTokenVerifierOptions) {
    let base: URL;
    try {
      base = new URL(options.homeserverUrl);
    } catch {
      throw new TypeError(`WhoamiTokenVerifier: homeserverUrl is not a URL: ${options.homeserverUrl}`);
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') {
      throw new TypeError('WhoamiTokenVerifier: homeserverUrl must be http(s)');
    }
    this.#whoamiUrl = new URL('_matrix/client/v3/account/whoami', base.href.endsWith('/') ? base : `${base.href}/`).href;
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    const positiveTtlMs = nonNegative('positiveTtlMs', options.positiveTtlMs ?? 60_000);
    const negativeTtlMs = nonNegative('negativeTtlMs', options.negativeTtlMs ?? 5_000);
    this.#timeoutMs = Math.max(1, nonNegative('timeoutMs', options.timeoutMs ?? 10_000));
    this.#answers = new AnswerCache<Requester | null>({
      ttlMsOf: (requester) => (requester ? positiveTtlMs : negativeTtlMs),
      maxEntries: Math.max(1, nonNegative('maxEntries', options.maxEntries ?? 10_000)),
      now: options.now ?? Date.now,
    });
  }

  verify(token: string, signal?: AbortSignal, options?: VerifyOptions): Promise<Requester | null> {
    const asserted = options?.userId;
    return this.#answers.get(cacheKey(token, asserted), () => this.#ask(token, asserted), signal);
  }

  /** The cached answer (positive or negative, unexpired), or undefined when the homeserver must be asked. */
  known(token: string, options?: VerifyOptions): Requester | null | undefined {
    return this.#answers.peek(cacheKey(token, options?.userId));
  }

  async #ask(token: string, asserted: string | undefined): Promise<Requester | null> {
    const url = asserted === undefined ? this.#whoamiUrl : `${this.#whoamiUrl}?user_id=${encodeURIComponent(asserted)}`;
    const res = await getFromHomeserver(this.#fetch, url, token, this.#timeoutMs, {
      timedOut: 'Timed out checking the access token with the homeserver',
      unreachable: 'Could not reach the homeserver to check the access token',
    });
    if (res.status === 401) {
      await res.body?.cancel();
      return null;
    }
    if (res.status === 403 && asserted !== undefined) {
      // The service may not act as this user (outside its namespace, or not registered).
      await res.body?.cancel();
      throw errors.forbidden('The homeserver refused to let this token act as the user in user_id');
    }
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new MatrixError(ErrCode.UNKNOWN, `Homeserver answered ${res.status} when checking the access token`, {
        httpStatus: 502,
      });
    }
    let body: unknown;
    try {
      // whoami answers are tiny; refuse anything silly before parsing it.
      const text = await res.text();
      if (text.length > 64 * 1024) throw new Error('whoami response too large');
      body = JSON.parse(text);
    } catch (err) {
      throw new MatrixError(ErrCode.UNKNOWN, 'Homeserver sent an invalid whoami response', { httpStatus: 502, cause: err });
    }
    const { user_id: userId, device_id: deviceId, is_guest: isGuest } = (body ?? {}) as Record<string, unknown>;
    if (typeof userId !== 'string' || !userId.startsWith('@')) {
      throw new MatrixError(ErrCode.UNKNOWN, 'Homeserver sent an invalid whoami response', { httpStatus: 502 });
    }
    return Object.freeze({
      userId,
      isGuest: isGuest === true,
      ...(typeof deviceId === 'string' ? { deviceId } : {}),
    });
  }
}

function nonNegative(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) throw new TypeError(`WhoamiTokenVerifier: ${name} must be a non-negative number`);
  return value;
}
