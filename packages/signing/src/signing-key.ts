import { createPrivateKey, createPublicKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { decodeBase64, encodeUnpaddedBase64 } from './base64.js';
import { SignatureError } from './errors.js';
import { ed25519Verify } from './internal/ed25519-verify.js';

/** PKCS#8 DER prefix for a raw 32-byte Ed25519 seed (RFC 8410). */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
/** SPKI DER prefix for a raw 32-byte Ed25519 public key (RFC 8410). */
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** Key versions use `[a-zA-Z0-9_]` (spec appendix "Signing JSON"). */
const KEY_VERSION = /^[A-Za-z0-9_]+$/;

/** The only signing algorithm Matrix defines. */
export const ED25519 = 'ed25519' as const;

/**
 * An Ed25519 signing key of this server. The seed stays inside the
 * `KeyObject`; use {@link formatSigningKeyFile} to write it out.
 */
export interface SigningKey {
  /** `ed25519:<version>`, e.g. `ed25519:a_AbCd`. */
  readonly keyId: string;
  /** The version part of the key ID. */
  readonly version: string;
  /** The public key as unpadded base64 (43 characters). */
  readonly publicKey: string;
  /** The private key, for `node:crypto`. */
  readonly privateKey: KeyObject;
}

/** A public key with its ID, as found in `verify_keys`. */
export interface VerifyKey {
  /** `ed25519:<version>`. */
  readonly keyId: string;
  /** The public key as unpadded base64. */
  readonly publicKey: string;
}

/**
 * Splits a key ID into algorithm and version. Returns `undefined` unless it
 * has the form `<algorithm>:<version>` with both parts non-empty.
 */
export function parseKeyId(keyId: string): { readonly algorithm: string; readonly version: string } | undefined {
  const colon = keyId.indexOf(':');
  if (colon <= 0 || colon === keyId.length - 1) return undefined;
  return { algorithm: keyId.slice(0, colon), version: keyId.slice(colon + 1) };
}

function checkVersion(version: string): void {
  if (!KEY_VERSION.test(version)) {
    throw new SignatureError('INVALID_KEY', `Key version ${JSON.stringify(version)} must match [a-zA-Z0-9_]+`);
  }
}

/**
 * Builds a signing key from its 32-byte seed (raw bytes, or base64 as in
 * Synapse's signing key file).
 *
 * @throws {SignatureError} `INVALID_KEY` or `INVALID_BASE64`.
 */
export function signingKeyFromSeed(seed: Uint8Array | string, version: string): SigningKey {
  checkVersion(version);
  const bytes = typeof seed === 'string' ? decodeBase64(seed) : seed;
  if (bytes.byteLength !== 32) throw new SignatureError('INVALID_KEY', 'An Ed25519 seed is 32 bytes');
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, bytes]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  return {
    keyId: `${ED25519}:${version}`,
    version,
    publicKey: encodeUnpaddedBase64(spki.subarray(SPKI_PREFIX.length)),
    privateKey,
  };
}

/**
 * Generates a new signing key. The default version is `a_` plus four random
 * alphanumerics, as Synapse's `generate_signing_key` does.
 */
export function generateSigningKey(version?: string): SigningKey {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const v = version ?? `a_${Array.from(randomBytes(4), (b) => alphabet[b % alphabet.length]).join('')}`;
  return signingKeyFromSeed(randomBytes(32), v);
}

/** The 32-byte seed of a signing key (for writing key files; keep it secret). */
export function signingKeySeed(key: SigningKey): Uint8Array {
  const jwk = key.privateKey.export({ format: 'jwk' });
  if (typeof jwk.d !== 'string') throw new SignatureError('INVALID_KEY', 'Not an Ed25519 private key');
  return new Uint8Array(Buffer.from(jwk.d, 'base64url'));
}

/**
 * Reads Synapse's signing key file: one key per line,
 * `ed25519 <version> <unpadded base64 seed>`. Blank lines are skipped.
 *
 * @throws {SignatureError} `INVALID_KEY` for an unreadable line or a non-ed25519 key.
 */
export function parseSigningKeyFile(text: string): SigningKey[] {
  const keys: SigningKey[] = [];
  for (const [index, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === '') continue;
    const parts = line.split(/\s+/);
    if (parts.length !== 3) {
      throw new SignatureError('INVALID_KEY', `Signing key file line ${index + 1}: expected "<algorithm> <version> <seed>"`);
    }
    const [algorithm, version, seed] = parts as [string, string, string];
    if (algorithm !== ED25519) {
      throw new SignatureError('INVALID_KEY', `Signing key file line ${index + 1}: unsupported algorithm ${algorithm}`);
    }
    keys.push(signingKeyFromSeed(seed, version));
  }
  if (keys.length === 0) throw new SignatureError('INVALID_KEY', 'Signing key file holds no key');
  return keys;
}

/** Writes keys in Synapse's signing key file format (`ed25519 <version> <seed>\n` per key). */
export function formatSigningKeyFile(keys: SigningKey | readonly SigningKey[]): string {
  const list: readonly SigningKey[] = Array.isArray(keys) ? keys : [keys as SigningKey];
  return list.map((key) => `${ED25519} ${key.version} ${encodeUnpaddedBase64(signingKeySeed(key))}\n`).join('');
}

/**
 * Turns an unpadded base64 Ed25519 public key into a `KeyObject`.
 *
 * @throws {SignatureError} `INVALID_BASE64` or `INVALID_KEY` (not 32 bytes).
 */
export function publicKeyFromBase64(publicKey: string): KeyObject {
  const raw = decodeBase64(publicKey);
  if (raw.byteLength !== 32) throw new SignatureError('INVALID_KEY', 'An Ed25519 public key is 32 bytes');
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

/** Signs bytes with Ed25519 and returns the unpadded base64 signature (86 characters). */
export function signBytes(key: SigningKey, bytes: Uint8Array): string {
  return encodeUnpaddedBase64(sign(null, bytes, key.privateKey));
}

/**
 * Verifies an unpadded (or padded) base64 Ed25519 signature over bytes.
 * Returns `false` for a wrong signature, including one that is not 64 bytes
 * or not base64.
 */
export function verifyBytes(publicKey: KeyObject | string, bytes: Uint8Array, signature: string): boolean {
  let sig: Uint8Array;
  try {
    sig = decodeBase64(signature);
  } catch {
    return false;
  }
  if (sig.byteLength !== 64) return false;
  const key = typeof publicKey === 'string' ? publicKeyFromBase64(publicKey) : publicKey;
  // libsodium when sodium-native loads, else node:crypto (internal/ed25519-verify.ts).
  return ed25519Verify(key, bytes, sig);
}
