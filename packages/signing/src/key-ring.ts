import type { KeyObject } from 'node:crypto';
import { raceAbort } from '@hsmedia/runtime';
import { SignatureError } from './errors.js';
import { BoundedMap } from './internal/bounded-map.js';
import { readJsonLimited } from './internal/read-json.js';
import { MemoryServerKeyStore, type ServerKeyStore, type StoredServerKey } from './server-key-store.js';
import { validateServerKeysResponse, type ValidatedServerKeys } from './server-keys.js';
import { verifyJsonSignatures, type SignableObject } from './sign-json.js';
import { isValidServerName } from './server-name.js';
import { ED25519, parseKeyId, publicKeyFromBase64 } from './signing-key.js';

/** Finds a remote server's currently valid verify key. */
export interface KeyResolver {
  /**
   * The key `keyId` of `serverName`, valid now.
   *
   * @throws {SignatureError} `UNKNOWN_KEY`, `KEY_FETCH_FAILED` or `INVALID_SERVER_NAME`.
   */
  getVerifyKey(serverName: string, keyId: string, options?: { readonly signal?: AbortSignal }): Promise<KeyObject>;
}

/** The subset of `fetch` the key ring uses. */
export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

/** A notary (perspectives) server and the keys we already trust for it. */
export interface NotaryServer {
  /** The notary's server name. */
  readonly serverName: string;
  /** Trusted notary keys: key ID → unpadded base64 public key. */
  readonly verifyKeys: Readonly<Record<string, string>>;
}

/** Options of {@link KeyRing}. */
export interface KeyRingOptions {
  /** Maps a server name to a base URL such as `https://host:8448` (server discovery lives elsewhere). */
  readonly resolveServer: (serverName: string) => Promise<string>;
  /** Persistent cache shared by restarts and instances. Default: a {@link MemoryServerKeyStore}. */
  readonly store?: ServerKeyStore;
  /** `fetch`-compatible function. Default: the global `fetch`. */
  readonly fetch?: FetchLike;
  /** Clock in ms since the epoch. Default: `Date.now`. */
  readonly now?: () => number;
  /** Notaries asked (in order) when the origin itself gives no usable key. Default: none. */
  readonly notaries?: readonly NotaryServer[];
  /** How long a failed lookup of a server is remembered before fetching again. Default: 60 000 ms. */
  readonly failureTtlMs?: number;
  /** Timeout of each key fetch. Default: 10 000 ms. */
  readonly fetchTimeoutMs?: number;
  /** Largest key response accepted. Default: 1 MiB. */
  readonly maxResponseBytes?: number;
  /** Most servers kept in the in-memory caches. Default: 10 000. */
  readonly maxCachedServers?: number;
}

interface CachedKey {
  readonly keyObject: KeyObject;
  readonly validUntilTs: number;
}

interface Failure {
  readonly until: number;
  readonly error: SignatureError;
}

function positiveMs(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isFinite(v) || v <= 0) throw new RangeError(`${name} must be a positive number`);
  return v;
}

/**
 * Fetches, checks and caches remote server keys for verifying request
 * signatures (spec S2S "Retrieving server keys").
 *
 * Keys come from the origin's own `GET /_matrix/key/v2/server`, falling back
 * to the configured notaries (`POST /_matrix/key/v2/query`, notary signature
 * checked too). Keys are cached in memory and in the {@link ServerKeyStore}
 * until their effective expiry; `old_verify_keys` are never used. Concurrent
 * lookups of one server share one fetch, and a failed lookup is remembered
 * for `failureTtlMs` so that a flood of bad requests does not become a flood
 * of outbound fetches.
 *
 * @example
 * const keyRing = new KeyRing({ resolveServer: async (name) => `https://${name}:8448` });
 * const key = await keyRing.getVerifyKey('example.org', 'ed25519:abc');
 */
export class KeyRing implements KeyResolver {
  readonly #resolveServer: (serverName: string) => Promise<string>;
  readonly #store: ServerKeyStore;
  readonly #fetch: FetchLike;
  readonly #now: () => number;
  readonly #notaries: readonly NotaryServer[];
  readonly #failureTtlMs: number;
  readonly #fetchTimeoutMs: number;
  readonly #maxResponseBytes: number;
  readonly #memory: BoundedMap<string, Map<string, CachedKey>>;
  readonly #failures: BoundedMap<string, Failure>;
  readonly #inflight = new Map<string, Promise<void>>();

  constructor(options: KeyRingOptions) {
    if (typeof options.resolveServer !== 'function') throw new TypeError('resolveServer must be a function');
    this.#resolveServer = options.resolveServer;
    this.#store = options.store ?? new MemoryServerKeyStore();
    this.#fetch = options.fetch ?? ((url, init) => fetch(url, init));
    this.#now = options.now ?? Date.now;
    this.#notaries = (options.notaries ?? []).map((notary) => {
      if (!isValidServerName(notary.serverName)) throw new TypeError(`Invalid notary server name ${notary.serverName}`);
      for (const key of Object.values(notary.verifyKeys)) publicKeyFromBase64(key);
      return { serverName: notary.serverName, verifyKeys: { ...notary.verifyKeys } };
    });
    this.#failureTtlMs = positiveMs('failureTtlMs', options.failureTtlMs, 60_000);
    this.#fetchTimeoutMs = positiveMs('fetchTimeoutMs', options.fetchTimeoutMs, 10_000);
    this.#maxResponseBytes = positiveMs('maxResponseBytes', options.maxResponseBytes, 1024 * 1024);
    const maxServers = positiveMs('maxCachedServers', options.maxCachedServers, 10_000);
    this.#memory = new BoundedMap(maxServers);
    this.#failures = new BoundedMap(maxServers);
  }

  /**
   * The key `keyId` of `serverName`, valid now: from memory, then the
   * store, then the network.
   *
   * @throws {SignatureError} `INVALID_SERVER_NAME`, `UNKNOWN_KEY` (the cause
   *   says why, e.g. a `KEY_FETCH_FAILED`).
   */
  async getVerifyKey(serverName: string, keyId: string, options: { readonly signal?: AbortSignal } = {}): Promise<KeyObject> {
    if (!isValidServerName(serverName)) {
      throw new SignatureError('INVALID_SERVER_NAME', `${JSON.stringify(serverName)} is not a valid server name`);
    }
    if (parseKeyId(keyId)?.algorithm !== ED25519) {
      throw new SignatureError('UNKNOWN_KEY', `Unsupported key algorithm in ${keyId}`);
    }
    const cached = this.#fromMemory(serverName, keyId);
    if (cached !== undefined) return cached;
    const failure = this.#failures.get(serverName);
    if (failure !== undefined && failure.until > this.#now()) {
      throw new SignatureError('UNKNOWN_KEY', `No usable key ${keyId} for ${serverName} (recent lookup failed)`, {
        cause: failure.error,
      });
    }
    let flight = this.#inflight.get(serverName);
    if (flight === undefined) {
      flight = this.#refresh(serverName, keyId).finally(() => this.#inflight.delete(serverName));
      this.#inflight.set(serverName, flight);
    }
    await raceAbort(flight, options.signal);
    const fresh = this.#fromMemory(serverName, keyId);
    if (fresh !== undefined) return fresh;
    const recorded = this.#failures.get(serverName);
    throw new SignatureError('UNKNOWN_KEY', `No usable key ${keyId} for ${serverName}`, { cause: recorded?.error });
  }

  /** Forgets everything cached in memory (not the store) for a server, or for all servers. */
  clearMemory(serverName?: string): void {
    if (serverName === undefined) {
      this.#memory.clear();
      this.#failures.clear();
    } else {
      this.#memory.delete(serverName);
      this.#failures.delete(serverName);
    }
  }

  #fromMemory(serverName: string, keyId: string): KeyObject | undefined {
    const entry = this.#memory.get(serverName)?.get(keyId);
    return entry !== undefined && entry.validUntilTs > this.#now() ? entry.keyObject : undefined;
  }

  #remember(keys: readonly StoredServerKey[]): void {
    for (const key of keys) {
      let keyObject: KeyObject;
      try {
        keyObject = publicKeyFromBase64(key.publicKey);
      } catch {
        continue; // A corrupt stored row is just not a key.
      }
      let server = this.#memory.get(key.serverName);
      if (server === undefined) {
        server = new Map();
        this.#memory.set(key.serverName, server);
      }
      server.set(key.keyId, { keyObject, validUntilTs: key.validUntilTs });
    }
  }

  /** Store first, then the origin, then the notaries; records a failure when the key is still missing. */
  async #refresh(serverName: string, keyId: string): Promise<void> {
    this.#remember(await this.#store.getServerKeys(serverName));
    if (this.#fromMemory(serverName, keyId) !== undefined) return;
    let lastError = new SignatureError('UNKNOWN_KEY', `${serverName} does not publish ${keyId}`);
    const sources = [() => this.#fetchDirect(serverName), ...this.#notaries.map((n) => () => this.#fetchViaNotary(n, serverName, keyId))];
    for (const source of sources) {
      try {
        const validated = await source();
        const fetchedAt = this.#now();
        const rows = validated.verifyKeys.map((key) => ({
          serverName,
          keyId: key.keyId,
          publicKey: key.publicKey,
          validUntilTs: validated.validUntilTs,
          fetchedAt,
        }));
        this.#remember(rows);
        await this.#store.putServerKeys(rows);
        if (this.#fromMemory(serverName, keyId) !== undefined) {
          this.#failures.delete(serverName);
          return;
        }
        lastError = new SignatureError('UNKNOWN_KEY', `${serverName} does not publish ${keyId}`);
      } catch (error) {
        lastError =
          error instanceof SignatureError
            ? error
            : new SignatureError('KEY_FETCH_FAILED', `Fetching keys of ${serverName} failed`, { cause: error });
      }
    }
    this.#failures.set(serverName, { until: this.#now() + this.#failureTtlMs, error: lastError });
  }

  async #getJson(url: string, init: RequestInit): Promise<unknown> {
    const response = await this.#fetch(url, {
      ...init,
      redirect: 'manual',
      signal: AbortSignal.timeout(this.#fetchTimeoutMs),
    });
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new SignatureError('KEY_FETCH_FAILED', `${url} answered HTTP ${response.status}`);
    }
    return readJsonLimited(response, this.#maxResponseBytes);
  }

  async #baseUrl(serverName: string): Promise<string> {
    return (await this.#resolveServer(serverName)).replace(/\/+$/, '');
  }

  async #fetchDirect(serverName: string): Promise<ValidatedServerKeys> {
    const body = await this.#getJson(`${await this.#baseUrl(serverName)}/_matrix/key/v2/server`, {
      method: 'GET',
      headers: { accept: 'application/json' },
    });
    return validateServerKeysResponse(body, { serverName, now: this.#now() });
  }

  async #fetchViaNotary(notary: NotaryServer, serverName: string, keyId: string): Promise<ValidatedServerKeys> {
    const now = this.#now();
    const body = await this.#getJson(`${await this.#baseUrl(notary.serverName)}/_matrix/key/v2/query`, {
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': 'application/json' },
      body: JSON.stringify({ server_keys: { [serverName]: { [keyId]: { minimum_valid_until_ts: now } } } }),
    });
    const list = typeof body === 'object' && body !== null ? (body as { server_keys?: unknown }).server_keys : undefined;
    if (!Array.isArray(list)) throw new SignatureError('KEY_FETCH_FAILED', `Notary ${notary.serverName} sent no server_keys`);
    let lastError: unknown;
    for (const entry of list as unknown[]) {
      if (typeof entry !== 'object' || entry === null || (entry as { server_name?: unknown }).server_name !== serverName) {
        continue;
      }
      try {
        await verifyJsonSignatures(entry as SignableObject, notary.serverName, notary.verifyKeys);
        const validated = await validateServerKeysResponse(entry, { serverName, now });
        if (validated.verifyKeys.some((key) => key.keyId === keyId)) return validated;
      } catch (error) {
        lastError = error;
      }
    }
    throw new SignatureError('KEY_FETCH_FAILED', `Notary ${notary.serverName} has no valid ${keyId} for ${serverName}`, {
      cause: lastError,
    });
  }
}
