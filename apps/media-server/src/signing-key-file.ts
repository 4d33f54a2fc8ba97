import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  formatSigningKeyFile,
  generateSigningKey,
  parseSigningKeyFile,
  type SigningKey,
} from '@hsmedia/signing';

/**
 * This server's Ed25519 signing key, from a key file in Synapse's format:
 * one line `ed25519 <version> <unpadded base64 seed>`.
 */
export type ServerSigningKey = SigningKey;

/** The key and whether this call created the file. */
export interface LoadedSigningKey {
  readonly key: ServerSigningKey;
  readonly created: boolean;
}

/** Problems with the key file: the message names the file (and the line). */
export class SigningKeyFileError extends Error {
  override readonly name: 'SigningKeyFileError' = 'SigningKeyFileError';
}

/**
 * The three operations on key files. The default is `@hsmedia/signing`'s
 * `parseSigningKeyFile`, `generateSigningKey` and `formatSigningKeyFile`; a
 * deployment that keeps keys elsewhere (a KMS, a secrets mount with another
 * format) passes its own.
 */
export interface SigningKeyCodec {
  parse(text: string): readonly ServerSigningKey[];
  generate(): ServerSigningKey;
  format(key: ServerSigningKey): string;
}

/** Synapse's key file format, through `@hsmedia/signing`. */
export const synapseSigningKeyCodec: SigningKeyCodec = Object.freeze({
  parse: (text: string): readonly ServerSigningKey[] => parseSigningKeyFile(text),
  generate: (): ServerSigningKey => generateSigningKey(),
  format: (key: ServerSigningKey): string => formatSigningKeyFile(key),
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
  codec: SigningKeyCodec = synapseSigningKeyCodec,
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
