import type { SrvRecord } from 'node:dns';
import { raceAbort, type Clock, type Logger } from '@hsmedia/runtime';
import { parseServerName } from '@hsmedia/signing';
import { FederationError, isFederationError } from './errors.js';
import { firstHeader, readAll, type Transport } from './transport.js';

/**
 * Where and how to reach a server, as server discovery decided
 * (https://spec.matrix.org/v1.12/server-server-api/#resolving-server-names).
 */
export interface ResolvedServer {
  /** The server name asked for; X-Matrix `destination` always uses it, never the delegated name. */
  readonly serverName: string;
  /** `https`, except for a `destinations` override with an `http:` URL. */
  readonly scheme: 'https' | 'http';
  /**
   * Where to connect, in order of preference (several only with SRV). Hosts
   * are DNS names or bare IP literals (no brackets).
   */
  readonly targets: readonly { readonly host: string; readonly port: number }[];
  /** The `Host` header to send. */
  readonly hostHeader: string;
  /** The certificate name to verify and send as SNI; `null` when the certificate must be valid for the IP (no SNI). */
  readonly tlsServerName: string | null;
  /** Which rule decided: `'override'`, `'ip-literal'`, `'explicit-port'`, `'well-known'`, `'srv'`, `'srv-legacy'`, `'default-port'`. */
  readonly via: string;
}

/** The part of `dns.promises.Resolver` discovery uses. */
export interface SrvResolver {
  resolveSrv(hostname: string): Promise<SrvRecord[]>;
}

/** Options of {@link ServerResolver}. */
export interface ServerResolverOptions {
  readonly transport: Transport;
  /** `server name → base URL` overrides that skip discovery (`http://127.0.0.1:8008` in tests). */
  readonly destinations?: Readonly<Record<string, string>>;
  /** SRV lookups. Default: a `dns.promises.Resolver`. */
  readonly resolver: SrvResolver;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The well-known URL of a host. Default `https://<host>/.well-known/matrix/server`. */
  readonly wellKnownUrl?: (hostname: string) => string;
  /** For weighted SRV selection (RFC 2782). Default `Math.random`. */
  readonly random?: () => number;
  /** Most well-known results kept. Default 10 000. */
  readonly maxCachedHosts?: number;
}

const DEFAULT_PORT = 8448;
const HOUR = 60 * 60 * 1000;
/**
 * Cache successes 24 h unless the response says otherwise, never beyond 48 h
 * (https://spec.matrix.org/v1.12/server-server-api/#resolving-server-names).
 */
const WELL_KNOWN_DEFAULT_TTL = 24 * HOUR;
const WELL_KNOWN_MAX_TTL = 48 * HOUR;
/** An answer that says "no delegation" (non-200, bad JSON): cached for the spec's maximum for errors. */
const WELL_KNOWN_INVALID_TTL = HOUR;
/** Network-level failures back off exponentially from here, up to an hour (same section). */
const WELL_KNOWN_DOWN_BASE_TTL = 2 * 60 * 1000;
const WELL_KNOWN_MAX_BYTES = 50 * 1024;
const WELL_KNOWN_MAX_REDIRECTS = 5;

interface WellKnownEntry {
  /** The delegated server name, or null when the well-known was an error. */
  readonly delegated: string | null;
  readonly expiresAt: number;
  /** Consecutive network failures, for the backoff. */
  readonly failures: number;
}

interface WellKnownResult {
  readonly delegated: string | null;
  /** How long to cache it; `null` for a network failure (backoff applies). */
  readonly ttlMs: number | null;
}

/** The cache period a response asks for (Cache-Control, then Expires), or `undefined` when it says nothing. */
export function cachePeriodFromHeaders(
  cacheControl: string | undefined,
  expires: string | undefined,
  now: number,
): number | undefined {
  if (cacheControl !== undefined) {
    const directives = cacheControl.toLowerCase().split(',').map((d) => d.trim());
    if (directives.includes('no-store') || directives.includes('no-cache')) return 0;
    for (const directive of directives) {
      const m = /^max-age\s*=\s*"?(\d+)"?$/.exec(directive);
      if (m !== null) return Number(m[1]) * 1000;
    }
  }
  if (expires !== undefined) {
    const at = Date.parse(expires);
    return Number.isNaN(at) ? 0 : Math.max(0, at - now);
  }
  return undefined;
}

/** Orders SRV records by priority, then weighted-randomly within a priority (RFC 2782). */
function orderSrv(records: readonly SrvRecord[], random: () => number): SrvRecord[] {
  const byPriority = new Map<number, SrvRecord[]>();
  for (const r of records) byPriority.set(r.priority, [...(byPriority.get(r.priority) ?? []), r]);
  const ordered: SrvRecord[] = [];
  for (const priority of [...byPriority.keys()].sort((a, b) => a - b)) {
    const pool = [...byPriority.get(priority)!];
    while (pool.length > 0) {
      const total = pool.reduce((sum, r) => sum + r.weight, 0);
      let pick = 0;
      if (total > 0) {
        let point = random() * total;
        pick = pool.findIndex((r) => (point -= r.weight) < 0);
        if (pick < 0) pick = pool.length - 1;
      }
      ordered.push(pool.splice(pick, 1)[0]!);
    }
  }
  return ordered;
}

function bare(host: string): string {
  return host.startsWith('[') ? host.slice(1, -1) : host;
}

/**
 * Server discovery (https://spec.matrix.org/v1.12/server-server-api/#resolving-server-names): IP
 * literals, explicit ports, `/.well-known/matrix/server` with its caching
 * rules, SRV `_matrix-fed._tcp` then the deprecated `_matrix._tcp`, and
 * port 8448. A `destinations` override wins over all of it.
 *
 * Only decides where to go: the A/AAAA lookup of the chosen host happens at
 * connect time, through the SSRF-guarded lookup.
 */
export class ServerResolver {
  readonly #transport: Transport;
  readonly #destinations: ReadonlyMap<string, URL>;
  readonly #resolver: SrvResolver;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #wellKnownUrl: (hostname: string) => string;
  readonly #random: () => number;
  readonly #maxCachedHosts: number;
  readonly #wellKnown = new Map<string, WellKnownEntry>();
  readonly #inFlight = new Map<string, Promise<string | null>>();

  constructor(options: ServerResolverOptions) {
    this.#transport = options.transport;
    this.#resolver = options.resolver;
    this.#clock = options.clock;
    this.#logger = options.logger;
    this.#wellKnownUrl = options.wellKnownUrl ?? ((host) => `https://${host}/.well-known/matrix/server`);
    this.#random = options.random ?? Math.random;
    this.#maxCachedHosts = options.maxCachedHosts ?? 10_000;
    const destinations = new Map<string, URL>();
    for (const [name, base] of Object.entries(options.destinations ?? {})) {
      destinations.set(name, parseDestinationUrl(name, base));
    }
    this.#destinations = destinations;
  }

  /**
   * Decides where requests for `serverName` go.
   *
   * @throws {FederationError} `unreachable` for an invalid server name or an SRV record saying "no service".
   */
  async resolveServer(serverName: string, signal?: AbortSignal): Promise<ResolvedServer> {
    const override = this.#destinations.get(serverName);
    if (override !== undefined) {
      const host = bare(override.hostname);
      const ipHost = override.hostname.startsWith('[') || /^\d+\.\d+\.\d+\.\d+$/.test(host);
      const scheme = override.protocol === 'http:' ? 'http' : 'https';
      return {
        serverName,
        scheme,
        targets: [{ host, port: override.port === '' ? (scheme === 'http' ? 80 : 443) : Number(override.port) }],
        hostHeader: override.host,
        tlsServerName: ipHost ? null : host,
        via: 'override',
      };
    }
    const parts = parseServerName(serverName);
    if (parts === undefined) throw new FederationError('unreachable', `Invalid server name ${JSON.stringify(serverName)}`);
    // Step 1: IP literal. Host header is the server name as given.
    if (parts.kind !== 'dns') {
      return {
        serverName,
        scheme: 'https',
        targets: [{ host: bare(parts.host), port: parts.port ?? DEFAULT_PORT }],
        hostHeader: serverName,
        tlsServerName: null,
        via: 'ip-literal',
      };
    }
    // Step 2: DNS name with explicit port.
    if (parts.port !== undefined) {
      return {
        serverName,
        scheme: 'https',
        targets: [{ host: parts.host, port: parts.port }],
        hostHeader: serverName,
        tlsServerName: parts.host,
        via: 'explicit-port',
      };
    }
    // Step 3: well-known delegation.
    const delegated = await this.#delegationOf(parts.host, signal);
    if (delegated !== null) {
      const d = parseServerName(delegated)!;
      if (d.kind !== 'dns') {
        return {
          serverName,
          scheme: 'https',
          targets: [{ host: bare(d.host), port: d.port ?? DEFAULT_PORT }],
          hostHeader: delegated,
          tlsServerName: null,
          via: 'well-known',
        };
      }
      if (d.port !== undefined) {
        return {
          serverName,
          scheme: 'https',
          targets: [{ host: d.host, port: d.port }],
          hostHeader: `${d.host}:${d.port}`,
          tlsServerName: d.host,
          via: 'well-known',
        };
      }
      return this.#viaSrv(serverName, d.host);
    }
    // Steps 4–6: SRV on the server name itself, then port 8448.
    return this.#viaSrv(serverName, parts.host);
  }

  /** Steps 3.3–3.5 and 4–6: SRV `_matrix-fed._tcp`, then `_matrix._tcp`, then port 8448. */
  async #viaSrv(serverName: string, host: string): Promise<ResolvedServer> {
    // The certificate must match `host`, not the SRV target: DNS is not trusted to delegate.
    const base = { serverName, scheme: 'https', hostHeader: host, tlsServerName: host } as const;
    for (const [service, via] of [
      ['_matrix-fed._tcp', 'srv'],
      ['_matrix._tcp', 'srv-legacy'],
    ] as const) {
      const records = await this.#srv(`${service}.${host}`);
      if (records.length === 0) continue;
      if (records.length === 1 && (records[0]!.name === '.' || records[0]!.name === '')) {
        throw new FederationError('unreachable', `${serverName}: SRV ${service}.${host} says the service is not available`);
      }
      const targets = orderSrv(records, this.#random).map((r) => ({ host: r.name.replace(/\.$/, ''), port: r.port }));
      return { ...base, targets, via };
    }
    return { ...base, targets: [{ host, port: DEFAULT_PORT }], via: 'default-port' };
  }

  async #srv(name: string): Promise<SrvRecord[]> {
    try {
      return await this.#resolver.resolveSrv(name);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code !== 'ENOTFOUND' && code !== 'ENODATA' && code !== 'NXDOMAIN') {
        // A broken resolver should not make the server unreachable: fall through to port 8448.
        this.#logger.warn({ err: error, name }, 'SRV lookup failed');
      }
      return [];
    }
  }

  /** The delegated server name from the (cached) well-known, or null. */
  async #delegationOf(host: string, signal: AbortSignal | undefined): Promise<string | null> {
    const now = this.#clock.now();
    const cached = this.#wellKnown.get(host);
    if (cached !== undefined && cached.expiresAt > now) return cached.delegated;
    const running = this.#inFlight.get(host);
    if (running !== undefined) return raceAbort(running, signal);
    // Shared by every concurrent caller, so no caller's signal cancels it; its own timeouts bound it.
    const lookup = (async () => {
      const result = await this.#fetchWellKnown(host);
      const failures = result.ttlMs === null ? (cached?.failures ?? 0) + 1 : 0;
      const ttl =
        result.ttlMs ?? Math.min(WELL_KNOWN_INVALID_TTL, WELL_KNOWN_DOWN_BASE_TTL * 2 ** Math.min(failures - 1, 16));
      this.#remember(host, { delegated: result.delegated, expiresAt: this.#clock.now() + ttl, failures });
      return result.delegated;
    })();
    this.#inFlight.set(host, lookup);
    void lookup.then(
      () => this.#inFlight.delete(host),
      () => this.#inFlight.delete(host),
    );
    return raceAbort(lookup, signal);
  }

  #remember(host: string, entry: WellKnownEntry): void {
    this.#wellKnown.delete(host);
    this.#wellKnown.set(host, entry);
    while (this.#wellKnown.size > this.#maxCachedHosts) {
      this.#wellKnown.delete(this.#wellKnown.keys().next().value!);
    }
  }

  /** Fetches and validates `/.well-known/matrix/server`, following redirects (step 3 of resolving server names). */
  async #fetchWellKnown(host: string): Promise<WellKnownResult> {
    let url = new URL(this.#wellKnownUrl(host));
    const initialScheme = url.protocol;
    const seen = new Set<string>();
    try {
      for (let hop = 0; ; hop++) {
        if (seen.has(url.href) || hop > WELL_KNOWN_MAX_REDIRECTS) {
          this.#logger.info({ host }, 'well-known redirect loop');
          return { delegated: null, ttlMs: null };
        }
        seen.add(url.href);
        const res = await this.#transport.request({ url, maxBodyBytes: WELL_KNOWN_MAX_BYTES });
        const location = firstHeader(res.headers, 'location');
        if (res.status >= 300 && res.status < 400 && location !== undefined) {
          await res.body.cancel();
          const next = new URL(location, url);
          // Never downgrade to http unless we started there (tests).
          if (next.protocol !== 'https:' && next.protocol !== initialScheme) return { delegated: null, ttlMs: WELL_KNOWN_INVALID_TTL };
          url = next;
          continue;
        }
        if (res.status !== 200) {
          await res.body.cancel();
          return { delegated: null, ttlMs: WELL_KNOWN_INVALID_TTL };
        }
        const text = (await readAll(res.body)).toString('utf8');
        const delegated = parseWellKnown(text);
        if (delegated === null) return { delegated: null, ttlMs: WELL_KNOWN_INVALID_TTL };
        const period = cachePeriodFromHeaders(
          firstHeader(res.headers, 'cache-control'),
          firstHeader(res.headers, 'expires'),
          this.#clock.now(),
        );
        return { delegated, ttlMs: Math.min(period ?? WELL_KNOWN_DEFAULT_TTL, WELL_KNOWN_MAX_TTL) };
      }
    } catch (error) {
      if (!isFederationError(error)) throw error;
      this.#logger.info({ host, err: error }, 'well-known fetch failed');
      return { delegated: null, ttlMs: null };
    }
  }
}

/** `m.server` of a well-known body, if it is a valid server name; otherwise null. */
export function parseWellKnown(text: string): string | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const server = (value as Record<string, unknown>)['m.server'];
  return typeof server === 'string' && parseServerName(server) !== undefined ? server : null;
}

function parseDestinationUrl(name: string, base: string): URL {
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new TypeError(`destinations[${JSON.stringify(name)}]: ${JSON.stringify(base)} is not a URL`);
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || (url.pathname !== '/' && url.pathname !== '')) {
    throw new TypeError(`destinations[${JSON.stringify(name)}]: expected an http(s) base URL without a path`);
  }
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw new TypeError(`destinations[${JSON.stringify(name)}]: expected a base URL without query, fragment or credentials`);
  }
  return url;
}
