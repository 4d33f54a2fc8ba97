import type { KeyObject } from 'node:crypto';
import { canonicalJsonBytes } from './canonical-json.js';
import { isSignatureError, SignatureError } from './errors.js';
import { ED25519, parseKeyId, signBytes, verifyBytes, type SigningKey } from './signing-key.js';

/** `signatures` as it appears on a signed object: entity → key ID → signature. */
export type Signatures = Readonly<Record<string, Readonly<Record<string, string>>>>;

/** An object that may carry `signatures` (and `unsigned`, which is never signed). */
export interface SignableObject {
  readonly [key: string]: unknown;
  readonly signatures?: Signatures;
  readonly unsigned?: unknown;
}

/** The canonical bytes a signature covers: the object without `signatures` and `unsigned`. */
export function signedBytes(object: SignableObject): Uint8Array {
  const { signatures: _signatures, unsigned: _unsigned, ...rest } = object;
  return canonicalJsonBytes(rest);
}

/**
 * Signs a JSON object (spec appendix "Signing JSON"): removes `signatures`
 * and `unsigned`, signs the Canonical JSON, and merges the signature into
 * `signatures[entity][keyId]`. Returns a new object; the input is not changed.
 *
 * @throws {CanonicalJsonError} when the object has no canonical form.
 * @example
 * const signed = signJson({ one: 1 }, 'example.org', key);
 */
export function signJson<T extends SignableObject>(object: T, entity: string, key: SigningKey): T & { signatures: Signatures } {
  const signature = signBytes(key, signedBytes(object));
  const existing: Signatures = object.signatures ?? {};
  return {
    ...object,
    signatures: { ...existing, [entity]: { ...existing[entity], [key.keyId]: signature } },
  };
}

/**
 * Finds the verify key for a key ID. Return `undefined` when it is unknown;
 * the lookup may be asynchronous (for example a key ring that fetches).
 */
export type VerifyKeyLookup = (
  keyId: string,
) => KeyObject | string | undefined | Promise<KeyObject | string | undefined>;

/**
 * Checks the signatures of `entity` on a JSON object (spec appendix
 * "Checking for a Signature"): key IDs with an algorithm other than ed25519
 * are ignored; at least one remaining signature must have a known key and
 * verify, and every signature whose key is known must verify. Returns the
 * key IDs that verified. A lookup that throws a {@link SignatureError}
 * counts as an unknown key (other errors propagate).
 *
 * @throws {SignatureError} `MISSING_SIGNATURE`, `UNKNOWN_KEY` or `BAD_SIGNATURE`.
 */
export async function verifyJsonSignatures(
  object: SignableObject,
  entity: string,
  lookup: VerifyKeyLookup | Readonly<Record<string, KeyObject | string>>,
): Promise<string[]> {
  const mine = object.signatures?.[entity];
  if (mine === undefined || typeof mine !== 'object' || mine === null) {
    throw new SignatureError('MISSING_SIGNATURE', `No signature from ${entity}`);
  }
  const ids = Object.keys(mine).filter((id) => parseKeyId(id)?.algorithm === ED25519);
  if (ids.length === 0) throw new SignatureError('MISSING_SIGNATURE', `No ed25519 signature from ${entity}`);
  const find: VerifyKeyLookup =
    typeof lookup === 'function' ? lookup : (id) => (Object.hasOwn(lookup, id) ? lookup[id] : undefined);
  const bytes = signedBytes(object);
  const verified: string[] = [];
  let lookupError: SignatureError | undefined;
  for (const id of ids) {
    let key: KeyObject | string | undefined;
    try {
      key = await find(id);
    } catch (error) {
      // A key that cannot be fetched counts as unknown; another key may still verify.
      if (!isSignatureError(error)) throw error;
      lookupError = error;
      continue;
    }
    if (key === undefined) continue;
    const sig = mine[id];
    if (typeof sig !== 'string' || !verifyBytes(key, bytes, sig)) {
      throw new SignatureError('BAD_SIGNATURE', `Signature ${id} from ${entity} does not verify`);
    }
    verified.push(id);
  }
  if (verified.length === 0) {
    throw new SignatureError('UNKNOWN_KEY', `No known key for the signatures of ${entity}`, { cause: lookupError });
  }
  return verified;
}
