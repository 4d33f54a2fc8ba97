/**
 * The signing key beside a homeserver. Remote servers check our X-Matrix signatures against the
 * keys our server name publishes at `/_matrix/key/v2/server`
 * (https://spec.matrix.org/v1.12/server-server-api/#retrieving-server-keys), and beside a
 * homeserver that is the homeserver: hsmedia must sign with the homeserver's own key. So in
 * homeserver mode a missing key file is an error (never a new key), and at start the key is
 * compared with what the homeserver publishes.
 */
import { readFile } from 'node:fs/promises';
import type { MediaServerConfig } from './config.js';
import {
  loadOrCreateSigningKey,
  SigningKeyFileError,
  synapseSigningKeyCodec,
  type LoadedSigningKey,
  type ServerSigningKey,
  type SigningKeyCodec,
} from './signing-key-file.js';

/** The line format of a key file, for messages. */
const KEY_FILE_FORMAT = 'one line "ed25519 <key version> <unpadded base64 seed>", as Synapse writes it';

/** How to fix a key the homeserver does not publish. */
const KEY_FIX_HINT =
  "set signing_key_path to the homeserver's own key file (Synapse: signing_key_path in homeserver.yaml, or synapse.config_path), " +
  'or set auth.key_published_elsewhere: true if this key is published another way';

/**
 * The signing key of `config`: in homeserver mode the existing file (a missing one is a
 * {@link SigningKeyFileError} naming the path and the format); otherwise read or created.
 */
export async function loadSigningKeyFor(config: MediaServerConfig, codec: SigningKeyCodec = synapseSigningKeyCodec): Promise<LoadedSigningKey> {
  if (config.auth.kind === 'homeserver') {
    let text: string;
    try {
      text = await readFile(config.signingKeyPath, 'utf8');
    } catch (error) {
      throw new SigningKeyFileError(
        `signing key file ${config.signingKeyPath} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}). ` +
          `Beside a homeserver (auth.homeserver_url) hsmedia signs with the homeserver's own key and never creates one: ` +
          `point signing_key_path at the homeserver's key file (${KEY_FILE_FORMAT}).`,
        { cause: error },
      );
    }
    let key: ServerSigningKey | undefined;
    try {
      [key] = codec.parse(text);
    } catch (error) {
      throw new SigningKeyFileError(`${config.signingKeyPath}: ${(error as Error).message} (expected ${KEY_FILE_FORMAT})`, { cause: error });
    }
    if (key === undefined) throw new SigningKeyFileError(`${config.signingKeyPath}: the file holds no key (expected ${KEY_FILE_FORMAT})`);
    return { key, created: false };
  }
  return loadOrCreateSigningKey(config.signingKeyPath, codec);
}

/** The published-key check failed: the message says what differs and how to fix it. */
export class PublishedKeyMismatchError extends Error {
  override readonly name: 'PublishedKeyMismatchError' = 'PublishedKeyMismatchError';
}

/** Options for {@link checkPublishedKey}. */
export interface PublishedKeyCheck {
  readonly homeserverUrl: string;
  readonly serverName: string;
  readonly key: ServerSigningKey;
  readonly keyPath: string;
  /** Default: global fetch. */
  readonly fetch?: typeof fetch;
  /** Default 10 000 ms. */
  readonly timeoutMs?: number;
}

/**
 * Asks the homeserver (through `homeserverUrl`) for `/_matrix/key/v2/server` and checks that it
 * publishes our key ID with our public key under our server name.
 *
 * @throws {PublishedKeyMismatchError} on a mismatch, or when the homeserver cannot be asked.
 */
export async function checkPublishedKey(check: PublishedKeyCheck): Promise<void> {
  const { key, serverName, keyPath } = check;
  const url = new URL('_matrix/key/v2/server', check.homeserverUrl.endsWith('/') ? check.homeserverUrl : `${check.homeserverUrl}/`).href;
  const fail = (what: string): never => {
    throw new PublishedKeyMismatchError(`signing key ${key.keyId} of ${keyPath}: ${what}. Remote servers would reject every request we sign: ${KEY_FIX_HINT}.`);
  };
  let body: unknown;
  try {
    const res = await (check.fetch ?? globalThis.fetch)(url, {
      headers: { Accept: 'application/json' },
      redirect: 'error',
      signal: AbortSignal.timeout(check.timeoutMs ?? 10_000),
    });
    const text = await res.text();
    if (res.status !== 200) return fail(`the homeserver answered ${res.status} at ${url}, so the key cannot be checked`);
    if (text.length > 256 * 1024) return fail(`the homeserver's answer at ${url} is too large`);
    body = JSON.parse(text);
  } catch (error) {
    if (error instanceof PublishedKeyMismatchError) throw error;
    return fail(`could not ask the homeserver at ${url} (${(error as Error).message}); start it first`);
  }
  const answer = (typeof body === 'object' && body !== null ? body : {}) as { server_name?: unknown; verify_keys?: unknown };
  if (answer.server_name !== serverName) {
    fail(`the homeserver at ${url} publishes keys for ${JSON.stringify(answer.server_name)}, not for our server_name ${JSON.stringify(serverName)}`);
  }
  const verifyKeys = (typeof answer.verify_keys === 'object' && answer.verify_keys !== null ? answer.verify_keys : {}) as Record<string, { key?: unknown }>;
  const published = Object.keys(verifyKeys);
  const mine = verifyKeys[key.keyId];
  if (mine === undefined) {
    fail(`the homeserver publishes ${published.length === 0 ? 'no keys' : published.join(', ')} at ${url}, not ${key.keyId}`);
  } else if (mine.key !== key.publicKey) {
    fail(`the homeserver publishes ${key.keyId} at ${url} with another public key (${String(mine.key)}, ours is ${key.publicKey})`);
  }
}
