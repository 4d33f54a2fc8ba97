import { ErrCode, MatrixError } from '@hsmedia/errors';
import {
  buildServerKeysResponse,
  isValidServerName,
  type OldVerifyKey,
  type SigningKey,
} from '@hsmedia/signing';
import type { Middleware } from 'koa';

/** The key server path (spec S2S `GET /_matrix/key/v2/server`). */
export const KEY_SERVER_PATH = '/_matrix/key/v2/server' as const;

const HOUR = 3_600_000;

/** Options of {@link createKeyServer}. */
export interface KeyServerOptions {
  /** Our server name, published as `server_name`. */
  readonly serverName: string;
  /** The current signing key(s): published in `verify_keys` and each signs the response. */
  readonly signingKey: SigningKey | readonly SigningKey[];
  /** Retired keys published under `old_verify_keys` (for old event signatures only). */
  readonly oldVerifyKeys?: readonly OldVerifyKey[];
  /** How far ahead `valid_until_ts` lies. At least one hour (spec advice). Default: 24 hours. */
  readonly validityMs?: number;
  /** Clock in ms since the epoch. Default: `Date.now`. */
  readonly now?: () => number;
}

/**
 * Koa middleware answering `GET /_matrix/key/v2/server` with our self-signed
 * keys (spec S2S "Publishing Keys"); other paths go to `next()`. The signed
 * body is reused until half its validity has passed, then signed afresh.
 * Other methods on the path get 405 `M_UNRECOGNIZED`.
 *
 * @example
 * app.use(createKeyServer({ serverName: 'media.example', signingKey }));
 */
export function createKeyServer(options: KeyServerOptions): Middleware {
  const { serverName } = options;
  if (!isValidServerName(serverName)) throw new TypeError(`serverName ${JSON.stringify(serverName)} is not a valid server name`);
  const signingKeys: readonly SigningKey[] = Array.isArray(options.signingKey)
    ? [...(options.signingKey as readonly SigningKey[])]
    : [options.signingKey as SigningKey];
  if (signingKeys.length === 0) throw new TypeError('signingKey must hold at least one key');
  const oldVerifyKeys = [...(options.oldVerifyKeys ?? [])];
  const validityMs = options.validityMs ?? 24 * HOUR;
  if (!Number.isSafeInteger(validityMs) || validityMs < HOUR) throw new RangeError('validityMs must be an integer of at least one hour');
  const now = options.now ?? Date.now;
  let cached: { body: string; refreshAt: number } | undefined;

  const body = (): string => {
    const t = now();
    if (cached === undefined || t >= cached.refreshAt) {
      const response = buildServerKeysResponse({ serverName, signingKeys, oldVerifyKeys, validUntilTs: t + validityMs });
      cached = { body: JSON.stringify(response), refreshAt: t + validityMs / 2 };
    }
    return cached.body;
  };

  return async function keyServer(ctx, next) {
    if (ctx.path !== KEY_SERVER_PATH && ctx.path !== `${KEY_SERVER_PATH}/`) return next();
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      throw new MatrixError(ErrCode.UNRECOGNIZED, 'Unrecognized request', {
        httpStatus: 405,
        headers: { Allow: 'GET, HEAD' },
      });
    }
    ctx.type = 'application/json';
    ctx.body = body();
  };
}
