import type { KeyObject } from 'node:crypto';
import { SignatureError } from './errors.js';
import { signJson, verifyJsonSignatures, type SignableObject, type Signatures } from './sign-json.js';
import { ED25519, parseKeyId, publicKeyFromBase64, type SigningKey, type VerifyKey } from './signing-key.js';

/** Consumers treat keys as valid for at most 7 days after fetching (spec S2S "Publishing Keys"). */
export const MAX_KEY_VALIDITY_MS: number = 7 * 24 * 60 * 60 * 1000;

/** A key this server no longer signs with, still published for old event signatures. */
export interface OldVerifyKey {
  /** `ed25519:<version>`. */
  readonly keyId: string;
  /** Unpadded base64 public key. */
  readonly publicKey: string;
  /** When the key stopped being used, in ms since the epoch. */
  readonly expiredTs: number;
}

/** The body of `GET /_matrix/key/v2/server` (spec object "Server Keys"). */
export interface ServerKeysResponse {
  readonly server_name: string;
  readonly verify_keys: Readonly<Record<string, { readonly key: string }>>;
  readonly old_verify_keys: Readonly<Record<string, { readonly key: string; readonly expired_ts: number }>>;
  readonly valid_until_ts: number;
  readonly signatures: Signatures;
  readonly [key: string]: unknown;
}

/** Options of {@link buildServerKeysResponse}. */
export interface BuildServerKeysOptions {
  /** This server's name. */
  readonly serverName: string;
  /** The current signing key(s); each is published and signs the response. */
  readonly signingKeys: SigningKey | readonly SigningKey[];
  /** Retired keys, published under `old_verify_keys`. */
  readonly oldVerifyKeys?: readonly OldVerifyKey[];
  /** `valid_until_ts` in ms since the epoch. */
  readonly validUntilTs: number;
}

/**
 * Builds and self-signs the `GET /_matrix/key/v2/server` response
 * (spec S2S "Publishing Keys").
 */
export function buildServerKeysResponse(options: BuildServerKeysOptions): ServerKeysResponse {
  const keys: readonly SigningKey[] = Array.isArray(options.signingKeys)
    ? options.signingKeys
    : [options.signingKeys as SigningKey];
  const verify_keys: Record<string, { key: string }> = {};
  for (const key of keys) verify_keys[key.keyId] = { key: key.publicKey };
  const old_verify_keys: Record<string, { key: string; expired_ts: number }> = {};
  for (const old of options.oldVerifyKeys ?? []) {
    old_verify_keys[old.keyId] = { key: old.publicKey, expired_ts: old.expiredTs };
  }
  let response: ServerKeysResponse = {
    server_name: options.serverName,
    verify_keys,
    old_verify_keys,
    valid_until_ts: options.validUntilTs,
    signatures: {},
  };
  for (const key of keys) response = signJson(response, options.serverName, key);
  return response;
}

/** A server's current verify keys, checked and with their effective expiry. */
export interface ValidatedServerKeys {
  /** The server the keys belong to. */
  readonly serverName: string;
  /** Keys usable for request signatures (never `old_verify_keys`). */
  readonly verifyKeys: readonly (VerifyKey & { readonly keyObject: KeyObject })[];
  /** `min(valid_until_ts, now + 7 days)`. */
  readonly validUntilTs: number;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function fail(message: string, cause?: unknown): SignatureError {
  return new SignatureError('KEY_FETCH_FAILED', message, { cause });
}

/**
 * Checks a "Server Keys" object, whether fetched from the server itself or
 * relayed by a notary: `server_name` must be the server asked about, every
 * origin signature made with a key in the same object's `verify_keys` must
 * verify and there must be at least one, and `valid_until_ts` must be in
 * the future. The effective expiry is capped at `now + 7 days`.
 *
 * @throws {SignatureError} `KEY_FETCH_FAILED`.
 */
export async function validateServerKeysResponse(
  body: unknown,
  expected: { readonly serverName: string; readonly now: number },
): Promise<ValidatedServerKeys> {
  if (!isRecord(body)) throw fail('Key response is not a JSON object');
  if (body['server_name'] !== expected.serverName) {
    throw fail(`Key response is for ${JSON.stringify(body['server_name'])}, not ${expected.serverName}`);
  }
  const validUntil = body['valid_until_ts'];
  if (typeof validUntil !== 'number' || !Number.isSafeInteger(validUntil)) {
    throw fail('Key response has no integer valid_until_ts');
  }
  if (validUntil <= expected.now) throw fail(`Keys of ${expected.serverName} expired at ${validUntil}`);
  const rawKeys = body['verify_keys'];
  if (!isRecord(rawKeys)) throw fail('Key response has no verify_keys object');
  const verifyKeys: (VerifyKey & { keyObject: KeyObject })[] = [];
  for (const [keyId, entry] of Object.entries(rawKeys)) {
    if (parseKeyId(keyId)?.algorithm !== ED25519) continue;
    if (!isRecord(entry) || typeof entry['key'] !== 'string') throw fail(`verify_keys.${keyId} has no key`);
    try {
      verifyKeys.push({ keyId, publicKey: entry['key'], keyObject: publicKeyFromBase64(entry['key']) });
    } catch (error) {
      throw fail(`verify_keys.${keyId} is not an Ed25519 public key`, error);
    }
  }
  if (verifyKeys.length === 0) throw fail('Key response has no ed25519 verify key');
  const byId = Object.fromEntries(verifyKeys.map((k) => [k.keyId, k.keyObject]));
  try {
    await verifyJsonSignatures(body as SignableObject, expected.serverName, byId);
  } catch (error) {
    throw fail(`Key response of ${expected.serverName} is not validly self-signed`, error);
  }
  return {
    serverName: expected.serverName,
    verifyKeys,
    validUntilTs: Math.min(validUntil, expected.now + MAX_KEY_VALIDITY_MS),
  };
}
