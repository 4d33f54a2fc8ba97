/**
 * One verify key of a remote server: the shape of `StoredServerKey` in
 * `@hsmedia/signing`. media-core sits below signing in the package graph,
 * so it names the shape itself; TypeScript's structural types make
 * `MemoryMetadataStore` a signing `ServerKeyStore` all the same.
 */
export interface MemoryServerKey {
  /** The server the key belongs to (case-sensitive). */
  serverName: string;
  /** `ed25519:<version>`. */
  keyId: string;
  /** Unpadded base64 Ed25519 public key. */
  publicKey: string;
  /** Milliseconds since the epoch after which the key must not be used. */
  validUntilTs: number;
  /** When the key was fetched, in milliseconds since the epoch. */
  fetchedAt: number;
}

function copyKey(key: MemoryServerKey): MemoryServerKey {
  const { serverName, keyId, publicKey, validUntilTs, fetchedAt } = key;
  return { serverName, keyId, publicKey, validUntilTs, fetchedAt };
}

/** The server keys of `MemoryMetadataStore`, upserted by `(serverName, keyId)`. */
export class ServerKeyTable {
  readonly #servers = new Map<string, Map<string, MemoryServerKey>>();

  get(serverName: string): MemoryServerKey[] {
    return Array.from(this.#servers.get(serverName)?.values() ?? [], copyKey);
  }

  put(keys: readonly MemoryServerKey[]): void {
    for (const key of keys) {
      let byId = this.#servers.get(key.serverName);
      if (byId === undefined) this.#servers.set(key.serverName, (byId = new Map()));
      byId.set(key.keyId, copyKey(key));
    }
  }
}
