import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { createRequire } from 'node:module';

/** The one function of libsodium (through the `sodium-native` binding) used here. */
export interface SodiumVerify {
  crypto_sign_verify_detached(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
}

/** Verifies one Ed25519 signature of `message` under `key` (a KeyObject of an Ed25519 public key). */
export type Ed25519Verify = (key: KeyObject, message: Uint8Array, signature: Uint8Array) => boolean;

/** Which implementation {@link ed25519Verify} uses. */
export type Ed25519Backend = 'libsodium' | 'node:crypto';

/**
 * `sodium-native` when it is installed (an optional dependency) and loads on
 * this platform; undefined otherwise, or when `HSMEDIA_ED25519=node` asks for
 * node:crypto. Loaded once, at import.
 */
function loadSodium(): SodiumVerify | undefined {
  if (process.env['HSMEDIA_ED25519'] === 'node') return undefined;
  try {
    const sodium = createRequire(import.meta.url)('sodium-native') as Partial<SodiumVerify>;
    return typeof sodium.crypto_sign_verify_detached === 'function' ? (sodium as SodiumVerify) : undefined;
  } catch {
    // Not installed, no prebuilt binary for this platform, or a failing load: node:crypto does the work.
    return undefined;
  }
}

/**
 * The raw 32 bytes of an Ed25519 key's public half: the end of its SPKI DER
 * encoding (RFC 8410); null for a key of another type (node:crypto judges it).
 */
function rawPublicKey(key: KeyObject): Uint8Array | null {
  if (key.asymmetricKeyType !== 'ed25519') return null;
  const der = (key.type === 'private' ? createPublicKey(key) : key).export({ format: 'der', type: 'spki' });
  return der.subarray(der.byteLength - 32);
}

/**
 * An Ed25519 verifier: libsodium's `crypto_sign_verify_detached` with
 * `sodium`, else node:crypto (OpenSSL). libsodium verifies in about half the
 * CPU time of node:crypto on x86-64 (`bench/small-media.mjs` prints both) and
 * is what Synapse verifies with (PyNaCl). The raw bytes of each key are kept
 * beside its KeyObject (the key, never a verification result: every request
 * runs its own verification).
 */
export function createEd25519Verify(sodium: SodiumVerify | undefined): Ed25519Verify {
  const nodeVerify: Ed25519Verify = (key, message, signature) => verify(null, message, key, signature);
  if (sodium === undefined) return nodeVerify;
  const rawKeys = new WeakMap<KeyObject, Uint8Array | null>();
  return (key, message, signature) => {
    let raw = rawKeys.get(key);
    if (raw === undefined) {
      raw = rawPublicKey(key);
      rawKeys.set(key, raw);
    }
    if (raw === null) return nodeVerify(key, message, signature);
    return sodium.crypto_sign_verify_detached(signature, message, raw);
  };
}

const sodium = loadSodium();

/** The verifier of this process (see {@link createEd25519Verify}). */
export const ed25519Verify: Ed25519Verify = createEd25519Verify(sodium);

/** The implementation behind {@link ed25519Verify}. */
export const ed25519Backend: Ed25519Backend = sodium === undefined ? 'node:crypto' : 'libsodium';
