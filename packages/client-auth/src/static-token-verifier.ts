import type { Requester } from '@hsmedia/runtime';
import type { AccessTokenVerifier } from './verifier.js';

/** A token table entry: a user ID, or a full requester (to declare guests or devices). */
export type StaticTokenEntry = string | { readonly userId: string; readonly deviceId?: string; readonly isGuest?: boolean };

/**
 * A fixed token → user table, for tests, demos and single-user deployments.
 * Its tokens are users' tokens, not application services': a `user_id`
 * query parameter is ignored, as a homeserver ignores it on a user's token.
 *
 * @example
 * ```ts
 * const verifier = new StaticTokenVerifier({ syt_alice: '@alice:example.org' });
 * ```
 */
export class StaticTokenVerifier implements AccessTokenVerifier {
  // A Map, not the object: a token such as "constructor" must not hit Object.prototype.
  readonly #tokens: Map<string, Requester>;

  constructor(tokens: Readonly<Record<string, StaticTokenEntry>>) {
    this.#tokens = new Map();
    for (const [token, entry] of Object.entries(tokens)) {
      if (token === '') throw new TypeError('StaticTokenVerifier: empty access token');
      const requester: Requester =
        typeof entry === 'string'
          ? { userId: entry, isGuest: false }
          : {
              userId: entry.userId,
              isGuest: entry.isGuest ?? false,
              ...(entry.deviceId === undefined ? {} : { deviceId: entry.deviceId }),
            };
      this.#tokens.set(token, Object.freeze(requester));
    }
  }

  verify(token: string): Promise<Requester | null> {
    return Promise.resolve(this.#tokens.get(token) ?? null);
  }

  /** Always known: the table is the whole truth. */
  known(token: string): Requester | null {
    return this.#tokens.get(token) ?? null;
  }
}
