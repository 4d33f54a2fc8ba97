/**
 * One verify key of a remote server, as cached between restarts and shared
 * between instances. `validUntilTs` is the *effective* expiry:
 * `min(valid_until_ts, fetchedAt + 7 days)` (spec S2S "Publishing Keys").
 */
export interface StoredServerKey {
  /** The server the key belongs to (case-sensitive). */
  serverName: string;
  /** `ed25519:<version>`. */
  keyId: string;
  /** Unpadded base64 Ed25519 public key. */
  publicKey: string;
  /** Milliseconds since the epoch after which the key must not be used for requests. */
  validUntilTs: number;
  /** When the key was fetched, in milliseconds since the epoch. */
  fetchedAt: number;
}

/**
 * Persistent cache of remote server keys. The metadata store implements the
 * same shape, so restarts and other instances reuse fetched keys.
 */
export interface ServerKeyStore {
  /** Every stored key of a server, expired or not. */
  getServerKeys(serverName: string): Promise<StoredServerKey[]>;
  /** Inserts or replaces keys, keyed by `(serverName, keyId)`. */
  putServerKeys(keys: readonly StoredServerKey[]): Promise<void>;
}

/** A {@link ServerKeyStore} in memory, for tests and single-process use. */
export class MemoryServerKeyStore implements ServerKeyStore {
  readonly #servers = new Map<string, Map<string, StoredServerKey>>();

  /** Every stored key of a server, as copies. */
  getServerKeys(serverName: string): Promise<StoredServerKey[]> {
    const keys = this.#servers.get(serverName);
    return Promise.resolve(keys === undefined ? [] : Array.from(keys.values(), (key) => ({ ...key })));
  }

  /** Inserts or replaces keys, keyed by `(serverName, keyId)`. */
  putServerKeys(keys: readonly StoredServerKey[]): Promise<void> {
    for (const key of keys) {
      let server = this.#servers.get(key.serverName);
      if (server === undefined) {
        server = new Map();
        this.#servers.set(key.serverName, server);
      }
      server.set(key.keyId, { ...key });
    }
    return Promise.resolve();
  }
}
