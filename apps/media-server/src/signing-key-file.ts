import { createPrivateKey, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * This server's Ed25519 signing key, read from (or first written to) a key
 * file in Synapse's format: one line `ed25519 <version> <unpadded base64 seed>`.
 */
export interface ServerSigningKey {
  /** `ed25519:<version>`. */
  readonly keyId: string;
  readonly version: string;
  /** Unpadded base64 public key. */
  readonly publicKey: string;
  readonly privateKey: KeyObject;
}

/** The key and whether this call created the file. */
export interface LoadedSigningKey {
  readonly key: ServerSigningKey;
  readonly created: boolean;
}

/** Problems with the key file: the message names the file and the line. */
export class SigningKeyFileError extends Error {
  override readonly name: 'SigningKeyFileError' = 'SigningKeyFileError';
}

/**
 * The three operations on key files. They match `@hsmedia/signing`'s
 * `parseSigningKeyFile`, `generateSigningKey` and `formatSigningKeyFile`, so
 * that package's functions can be passed in instead of the built-in ones.
 */
export interface SigningKeyCodec {
  parse(text: string): readonly ServerSigningKey[];
  generate(): ServerSigningKey;
  format(key: ServerSigningKey): string;
}

/** PKCS#8 DER prefix for a raw 32-byte Ed25519 seed (RFC 8410). */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
/** SPKI DER prefix for a raw 32-byte Ed25519 public key (RFC 8410). */
const SPKI_PREFIX_LENGTH = 12;
const VERSION_RE = /^[A-Za-z0-9_]+$/;
const VERSION_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_';

function unpaddedBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64').replace(/=+$/, '');
}

function keyFromSeed(seed: Uint8Array, version: string): ServerSigningKey {
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  return { keyId: `ed25519:${version}`, version, publicKey: unpaddedBase64(spki.subarray(SPKI_PREFIX_LENGTH)), privateKey };
}

/** The built-in codec (node:crypto only). */
export const builtinSigningKeyCodec: SigningKeyCodec = Object.freeze({
  parse(text: string): ServerSigningKey[] {
    const keys: ServerSigningKey[] = [];
    for (const [index, raw] of text.split(/\r?\n/).entries()) {
      const line = raw.trim();
      if (line === '') continue;
      const [algorithm, version, seed, ...rest] = line.split(/\s+/);
      const where = `line ${index + 1}`;
      if (rest.length > 0 || seed === undefined || version === undefined) {
        throw new SigningKeyFileError(`${where}: expected "ed25519 <version> <base64 seed>"`);
      }
      if (algorithm !== 'ed25519') throw new SigningKeyFileError(`${where}: unsupported algorithm ${algorithm}`);
      if (!VERSION_RE.test(version)) throw new SigningKeyFileError(`${where}: key version must match [A-Za-z0-9_]+`);
      if (!/^[A-Za-z0-9+/]+={0,2}$/.test(seed)) throw new SigningKeyFileError(`${where}: seed is not base64`);
      const bytes = Buffer.from(seed, 'base64');
      if (bytes.byteLength !== 32) throw new SigningKeyFileError(`${where}: an Ed25519 seed is 32 bytes`);
      keys.push(keyFromSeed(bytes, version));
    }
    if (keys.length === 0) throw new SigningKeyFileError('the file holds no key');
    return keys;
  },
  generate(): ServerSigningKey {
    // Synapse's generate_signing_key: "a_" and four random characters.
    const suffix = Array.from(randomBytes(4), (byte) => VERSION_ALPHABET[byte % VERSION_ALPHABET.length]).join('');
    return keyFromSeed(randomBytes(32), `a_${suffix}`);
  },
  format(key: ServerSigningKey): string {
    const jwk = key.privateKey.export({ format: 'jwk' });
    const seed = Buffer.from(String(jwk.d), 'base64url');
    return `ed25519 ${key.version} ${unpaddedBase64(seed)}\n`;
  },
});

/**
 * Reads the first key of a Synapse-format key file, creating the file (and
 * its directory) with a new key when it does not exist. The file is created
 * exclusively with mode 0600, so two processes starting at once cannot
 * overwrite each other's key.
 *
 * @throws {SigningKeyFileError} for a file that exists but cannot be used.
 */
export async function loadOrCreateSigningKey(
  path: string,
  codec: SigningKeyCodec = builtinSigningKeyCodec,
): Promise<LoadedSigningKey> {
  for (;;) {
    const existing = await readKeyFile(path, codec);
    if (existing !== null) return { key: existing, created: false };
    const key = codec.generate();
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    try {
      await writeFile(path, codec.format(key), { flag: 'wx', mode: 0o600 });
      return { key, created: true };
    } catch (error) {
      // Another process created it between our read and write: use theirs.
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
}

async function readKeyFile(path: string, codec: SigningKeyCodec): Promise<ServerSigningKey | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new SigningKeyFileError(`${path}: ${(error as Error).message}`, { cause: error });
  }
  try {
    const [first] = codec.parse(text);
    if (first === undefined) throw new SigningKeyFileError('the file holds no key');
    return first;
  } catch (error) {
    throw new SigningKeyFileError(`${path}: ${(error as Error).message}`, { cause: error });
  }
}
