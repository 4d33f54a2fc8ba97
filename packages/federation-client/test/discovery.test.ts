import type { SrvRecord } from 'node:dns';
import { createAddressPolicy } from '@hsmedia/net-guard';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cachePeriodFromHeaders, FederationClient, FederationError, parseWellKnown, type SrvResolver } from '../src/index.js';
import { closedPort, failureOf, json, ORIGIN, signingKey, startRemote, type ScriptedRemote } from './helpers.js';

// Discovery decides where to go without connecting there; the only sockets
// opened here are to the well-known server on 127.0.0.1. Addresses in
// results are documentation ranges (192.0.2.0/24, 2001:db8::/32).

const HOUR = 3_600_000;

/** An SRV resolver answering from a table; unknown names are NXDOMAIN. */
function srvTable(table: Record<string, SrvRecord[]>): SrvResolver & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    resolveSrv(name: string) {
      asked.push(name);
      const records = table[name];
      if (records === undefined) return Promise.reject(Object.assign(new Error(`queryNotFound ${name}`), { code: 'ENOTFOUND' }));
      return Promise.resolve(records);
    },
  };
}

function srv(name: string, port: number, priority = 10, weight = 0): SrvRecord {
  return { name, port, priority, weight };
}

let wk: ScriptedRemote;
let now = 1_700_000_000_000;
let client: FederationClient;

function wkPath(host: string): string {
  return `/wk/${host}`;
}

function setWellKnown(host: string, status: number, body: string, headers: Record<string, string> = {}): void {
  wk.routes.set(wkPath(host), (_req, res) => {
    res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
    res.end(body);
  });
}

function hits(host: string): number {
  return wk.seen.filter((r) => r.url === wkPath(host)).length;
}

function makeClient(resolver: SrvResolver, wellKnownBase = wk.base): FederationClient {
  return new FederationClient({
    serverName: ORIGIN,
    signingKey,
    addressPolicy: createAddressPolicy({ allow: ['127.0.0.1/32'] }),
    resolver,
    wellKnownUrl: (host) => `${wellKnownBase}${wkPath(host)}`,
    clock: { now: () => now },
  });
}

beforeAll(async () => {
  wk = await startRemote();
});
afterAll(async () => {
  await wk.close();
});
afterEach(() => {
  client?.close();
  wk.routes.clear();
  wk.seen.length = 0;
});

// The cases of https://spec.matrix.org/v1.12/server-server-api/#resolving-server-names
describe('resolveServer: the spec cases', () => {
  it('IP literal: that IP on 8448, Host is the server name, no SNI', async () => {
    client = makeClient(srvTable({}));
    expect(await client.resolveServer('192.0.2.10')).toEqual({
      serverName: '192.0.2.10',
      scheme: 'https',
      targets: [{ host: '192.0.2.10', port: 8448 }],
      hostHeader: '192.0.2.10',
      tlsServerName: null,
      via: 'ip-literal',
    });
    expect(await client.resolveServer('[2001:db8::abcd]:5678')).toMatchObject({
      targets: [{ host: '2001:db8::abcd', port: 5678 }],
      hostHeader: '[2001:db8::abcd]:5678',
      tlsServerName: null,
    });
    expect(wk.seen).toHaveLength(0);
  });

  it('explicit port: no well-known, no SRV; Host keeps the port, certificate for the hostname', async () => {
    const resolver = srvTable({});
    client = makeClient(resolver);
    expect(await client.resolveServer('example.org:8888')).toMatchObject({
      targets: [{ host: 'example.org', port: 8888 }],
      hostHeader: 'example.org:8888',
      tlsServerName: 'example.org',
      via: 'explicit-port',
    });
    expect(wk.seen).toHaveLength(0);
    expect(resolver.asked).toEqual([]);
  });

  it('well-known with a delegated port', async () => {
    setWellKnown('example.org', 200, '{"m.server":"matrix.example.org:443"}');
    client = makeClient(srvTable({}));
    expect(await client.resolveServer('example.org')).toMatchObject({
      targets: [{ host: 'matrix.example.org', port: 443 }],
      hostHeader: 'matrix.example.org:443',
      tlsServerName: 'matrix.example.org',
      via: 'well-known',
    });
  });

  it('well-known without a port, then SRV _matrix-fed on the delegated name; certificate for the delegated name', async () => {
    setWellKnown('example.org', 200, '{"m.server":"matrix.example.org"}');
    client = makeClient(srvTable({ '_matrix-fed._tcp.matrix.example.org': [srv('hs1.example.net', 8449)] }));
    expect(await client.resolveServer('example.org')).toMatchObject({
      targets: [{ host: 'hs1.example.net', port: 8449 }],
      hostHeader: 'matrix.example.org',
      tlsServerName: 'matrix.example.org',
      via: 'srv',
    });
  });

  it('well-known without a port and no SRV: the delegated name on 8448', async () => {
    setWellKnown('example.org', 200, '{"m.server":"matrix.example.org"}');
    const resolver = srvTable({});
    client = makeClient(resolver);
    expect(await client.resolveServer('example.org')).toMatchObject({
      targets: [{ host: 'matrix.example.org', port: 8448 }],
      hostHeader: 'matrix.example.org',
      tlsServerName: 'matrix.example.org',
      via: 'default-port',
    });
    expect(resolver.asked).toEqual(['_matrix-fed._tcp.matrix.example.org', '_matrix._tcp.matrix.example.org']);
  });

  it('well-known 404: SRV _matrix-fed on the server name', async () => {
    setWellKnown('example.org', 404, '{"errcode":"M_NOT_FOUND"}');
    client = makeClient(srvTable({ '_matrix-fed._tcp.example.org': [srv('hs.example.net', 443)] }));
    expect(await client.resolveServer('example.org')).toMatchObject({
      targets: [{ host: 'hs.example.net', port: 443 }],
      hostHeader: 'example.org',
      tlsServerName: 'example.org',
      via: 'srv',
    });
  });

  it('well-known invalid JSON, no _matrix-fed: the deprecated _matrix._tcp', async () => {
    setWellKnown('example.org', 200, '{"m.server": ');
    client = makeClient(srvTable({ '_matrix._tcp.example.org': [srv('old.example.net.', 8448)] }));
    expect(await client.resolveServer('example.org')).toMatchObject({
      targets: [{ host: 'old.example.net', port: 8448 }],
      hostHeader: 'example.org',
      tlsServerName: 'example.org',
      via: 'srv-legacy',
    });
  });

  it('well-known unreachable and no SRV: the server name on 8448', async () => {
    client = makeClient(srvTable({}), `http://127.0.0.1:${await closedPort()}`);
    expect(await client.resolveServer('example.org')).toMatchObject({
      targets: [{ host: 'example.org', port: 8448 }],
      hostHeader: 'example.org',
      tlsServerName: 'example.org',
      via: 'default-port',
    });
  });

  it('well-known delegating to an IP literal: that IP on 8448, no SNI', async () => {
    setWellKnown('example.org', 200, '{"m.server":"[2001:db8::1]"}');
    client = makeClient(srvTable({}));
    expect(await client.resolveServer('example.org')).toMatchObject({
      targets: [{ host: '2001:db8::1', port: 8448 }],
      hostHeader: '[2001:db8::1]',
      tlsServerName: null,
      via: 'well-known',
    });
  });

  it('treats an invalid m.server as no delegation', async () => {
    setWellKnown('example.org', 200, '{"m.server":"bad name!"}');
    client = makeClient(srvTable({}));
    expect(await client.resolveServer('example.org')).toMatchObject({ via: 'default-port', hostHeader: 'example.org' });
  });

  it('follows well-known redirects, and treats a loop as an error', async () => {
    wk.routes.set(wkPath('example.org'), (_req, res) => {
      res.writeHead(301, { Location: '/moved' });
      res.end();
    });
    wk.routes.set('/moved', (_req, res) => json(res, 200, { 'm.server': 'moved.example.org:8449' }));
    client = makeClient(srvTable({}));
    expect(await client.resolveServer('example.org')).toMatchObject({ targets: [{ host: 'moved.example.org', port: 8449 }] });

    wk.routes.set(wkPath('loop.example.org'), (_req, res) => {
      res.writeHead(302, { Location: wkPath('loop.example.org') });
      res.end();
    });
    expect(await client.resolveServer('loop.example.org')).toMatchObject({ via: 'default-port' });
  });

  it('orders SRV records by priority, then by weight', async () => {
    client = makeClient(
      srvTable({
        '_matrix-fed._tcp.example.org': [srv('c.example.net', 3, 20), srv('a.example.net', 1, 10, 0), srv('b.example.net', 2, 10, 5)],
      }),
    );
    setWellKnown('example.org', 404, '');
    const resolved = await client.resolveServer('example.org');
    expect(resolved.targets.map((t) => t.host)).toEqual(['b.example.net', 'a.example.net', 'c.example.net']);
  });

  it('refuses an SRV record that says the service is unavailable', async () => {
    setWellKnown('example.org', 404, '');
    client = makeClient(srvTable({ '_matrix-fed._tcp.example.org': [srv('.', 0)] }));
    const error = await failureOf(client.resolveServer('example.org'));
    expect(error).toBeInstanceOf(FederationError);
    expect(error).toMatchObject({ code: 'unreachable' });
  });

  it('refuses invalid server names', async () => {
    client = makeClient(srvTable({}));
    for (const name of ['', 'a b', 'example.org:0', 'example.org:99999', '[::1', '300.1.1.1']) {
      expect(await failureOf(client.resolveServer(name))).toMatchObject({ code: 'unreachable' });
    }
  });

  it('lets a destinations override win over discovery', async () => {
    client = new FederationClient({
      serverName: ORIGIN,
      signingKey,
      addressPolicy: createAddressPolicy(),
      destinations: { 'example.org': 'https://matrix.internal:8443', 'ip.example.org': 'http://127.0.0.1:8008' },
    });
    expect(await client.resolveServer('example.org')).toEqual({
      serverName: 'example.org',
      scheme: 'https',
      targets: [{ host: 'matrix.internal', port: 8443 }],
      hostHeader: 'matrix.internal:8443',
      tlsServerName: 'matrix.internal',
      via: 'override',
    });
    expect(await client.resolveServer('ip.example.org')).toMatchObject({ scheme: 'http', tlsServerName: null });
    expect(
      () => new FederationClient({ serverName: ORIGIN, signingKey, addressPolicy: createAddressPolicy(), destinations: { x: 'ftp://x' } }),
    ).toThrow(TypeError);
  });
});

describe('well-known caching (resolving server names, step 3)', () => {
  it('caches a success for 24 h by default', async () => {
    setWellKnown('example.org', 200, '{"m.server":"matrix.example.org:443"}');
    client = makeClient(srvTable({}));
    await client.resolveServer('example.org');
    now += 24 * HOUR - 1;
    await client.resolveServer('example.org');
    expect(hits('example.org')).toBe(1);
    now += 2;
    await client.resolveServer('example.org');
    expect(hits('example.org')).toBe(2);
  });

  it('honours Cache-Control max-age, capped at 48 h', async () => {
    setWellKnown('short.example', 200, '{"m.server":"m.example:443"}', { 'Cache-Control': 'public, max-age=60' });
    setWellKnown('long.example', 200, '{"m.server":"m.example:443"}', { 'Cache-Control': 'max-age=31536000' });
    client = makeClient(srvTable({}));
    await client.resolveServer('short.example');
    await client.resolveServer('long.example');
    now += 61_000;
    await client.resolveServer('short.example');
    await client.resolveServer('long.example');
    expect([hits('short.example'), hits('long.example')]).toEqual([2, 1]);
    now += 48 * HOUR;
    await client.resolveServer('long.example');
    expect(hits('long.example')).toBe(2);
  });

  it('does not cache with no-store, and honours Expires', async () => {
    setWellKnown('nostore.example', 200, '{"m.server":"m.example:443"}', { 'Cache-Control': 'no-store' });
    setWellKnown('expires.example', 200, '{"m.server":"m.example:443"}', { Expires: new Date(now + 10 * 60_000).toUTCString() });
    client = makeClient(srvTable({}));
    await client.resolveServer('nostore.example');
    await client.resolveServer('nostore.example');
    await client.resolveServer('expires.example');
    now += 9 * 60_000;
    await client.resolveServer('expires.example');
    expect([hits('nostore.example'), hits('expires.example')]).toEqual([2, 1]);
    now += 2 * 60_000;
    await client.resolveServer('expires.example');
    expect(hits('expires.example')).toBe(2);
  });

  it('caches an invalid answer for an hour', async () => {
    setWellKnown('example.org', 404, '');
    client = makeClient(srvTable({}));
    await client.resolveServer('example.org');
    now += HOUR - 1;
    await client.resolveServer('example.org');
    expect(hits('example.org')).toBe(1);
    now += 2;
    await client.resolveServer('example.org');
    expect(hits('example.org')).toBe(2);
  });

  it('backs off exponentially on network failures, up to an hour', async () => {
    // Each attempt hangs up mid-answer: a network-level failure.
    wk.routes.set(wkPath('down.example'), (req) => req.socket.destroy());
    client = makeClient(srvTable({}));
    await client.resolveServer('down.example');
    let fetches = 1;
    // Each failure is cached twice as long as the one before: 2, 4, 8, 16, 32 minutes, then at most an hour.
    for (const minutes of [2, 4, 8, 16, 32, 60, 60]) {
      now += minutes * 60_000 - 1;
      await client.resolveServer('down.example');
      expect(hits('down.example')).toBe(fetches);
      now += 1;
      await client.resolveServer('down.example');
      expect(hits('down.example')).toBe(++fetches);
    }
  });

  it('asks once for concurrent callers', async () => {
    setWellKnown('example.org', 200, '{"m.server":"matrix.example.org:443"}');
    client = makeClient(srvTable({}));
    const results = await Promise.all([1, 2, 3, 4].map(() => client.resolveServer('example.org')));
    expect(new Set(results.map((r) => r.hostHeader))).toEqual(new Set(['matrix.example.org:443']));
    expect(hits('example.org')).toBe(1);
  });
});

describe('pure helpers', () => {
  it('parseWellKnown accepts only a valid m.server string', () => {
    expect(parseWellKnown('{"m.server":"a.example:8448"}')).toBe('a.example:8448');
    expect(parseWellKnown('{"m.server":"[2001:db8::1]:443","extra":1}')).toBe('[2001:db8::1]:443');
    for (const bad of ['', 'null', '[]', '{}', '{"m.server":1}', '{"m.server":"a b"}', '{"m.server":"a.example:x"}']) {
      expect(parseWellKnown(bad)).toBeNull();
    }
  });

  it('cachePeriodFromHeaders reads Cache-Control, then Expires', () => {
    expect(cachePeriodFromHeaders('max-age=60', undefined, 0)).toBe(60_000);
    expect(cachePeriodFromHeaders('public, MAX-AGE=5', undefined, 0)).toBe(5_000);
    expect(cachePeriodFromHeaders('no-cache', undefined, 0)).toBe(0);
    expect(cachePeriodFromHeaders(undefined, new Date(90_000).toUTCString(), 30_000)).toBe(60_000);
    expect(cachePeriodFromHeaders(undefined, 'garbage', 0)).toBe(0);
    expect(cachePeriodFromHeaders('public', undefined, 0)).toBeUndefined();
    expect(cachePeriodFromHeaders(undefined, undefined, 0)).toBeUndefined();
  });
});
