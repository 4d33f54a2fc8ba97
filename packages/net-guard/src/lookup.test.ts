import { once } from 'node:events';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo, LookupFunction } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlockedAddressError, isBlockedAddressError } from './errors.js';
import { assertHostAllowed, guardedLookup, ipLiteralOf } from './lookup.js';
import { createAddressPolicy } from './policy.js';

/** Resolves every name to the given addresses; no DNS involved. */
function fixedLookup(addresses: { address: string; family: number }[]): LookupFunction {
  return ((_host: string, options: { all?: boolean }, cb: (...args: unknown[]) => void) => {
    if (options.all === true) cb(null, addresses);
    else cb(null, addresses[0]!.address, addresses[0]!.family);
  }) as unknown as LookupFunction;
}

function get(port: number, lookup: LookupFunction, host = 'service.test'): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path: '/', lookup, agent: false }, (res) => {
      res.setEncoding('utf8');
      let text = '';
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve(text));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('guardedLookup over a real loopback HTTP request', () => {
  let server: Server;
  let port: number;
  let hits = 0;
  beforeAll(async () => {
    server = createServer((_req, res) => {
      hits += 1;
      res.end('hello');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  });

  it('refuses loopback under the default policy, before connecting', async () => {
    const lookup = guardedLookup(createAddressPolicy(), { lookup: fixedLookup([{ address: '127.0.0.1', family: 4 }]) });
    const before = hits;
    const error = await get(port, lookup).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BlockedAddressError);
    expect(error).toMatchObject({ address: '127.0.0.1', hostname: 'service.test', range: 'loopback', code: 'ERR_BLOCKED_ADDRESS' });
    expect(hits).toBe(before);
  });

  it('allows loopback when 127.0.0.1/32 is allow-listed', async () => {
    const lookup = guardedLookup(createAddressPolicy({ allow: ['127.0.0.1/32'] }), {
      lookup: fixedLookup([{ address: '127.0.0.1', family: 4 }]),
    });
    expect(await get(port, lookup)).toBe('hello');
  });

  it('uses the real dns.lookup by default (localhost)', async () => {
    const refused = await get(port, guardedLookup(createAddressPolicy()), 'localhost').catch((e: unknown) => e);
    expect(isBlockedAddressError(refused)).toBe(true);
    // localhost may also resolve to ::1; only 127.0.0.1 is allowed, and that is what we connect to.
    expect(await get(port, guardedLookup(createAddressPolicy({ allow: ['127.0.0.1/32'] })), 'localhost')).toBe('hello');
  });

  it('drops refused addresses and connects only to allowed ones', async () => {
    const lookup = guardedLookup(createAddressPolicy({ allow: ['127.0.0.1/32'] }), {
      lookup: fixedLookup([
        { address: '127.0.0.2', family: 4 },
        { address: '127.0.0.1', family: 4 },
      ]),
    });
    expect(await get(port, lookup)).toBe('hello');
  });

  it('passes resolver errors through unchanged', async () => {
    const failing = ((_h: string, _o: unknown, cb: (err: Error) => void) => {
      cb(Object.assign(new Error('getaddrinfo ENOTFOUND service.test'), { code: 'ENOTFOUND' }));
    }) as unknown as LookupFunction;
    const error = await get(port, guardedLookup(createAddressPolicy(), { lookup: failing })).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ENOTFOUND' });
  });
});

describe('guardedLookup call shapes', () => {
  const policy = createAddressPolicy({ allow: ['127.0.0.1/32'] });
  const lookup = guardedLookup(policy, { lookup: fixedLookup([{ address: '127.0.0.1', family: 4 }]) });

  it('answers a single-address lookup', async () => {
    const [address, family] = await new Promise<[string, number]>((resolve, reject) => {
      (lookup as unknown as (h: string, o: object, cb: (e: Error | null, a: string, f: number) => void) => void)('x.test', {}, (e, a, f) =>
        e === null ? resolve([a, f]) : reject(e),
      );
    });
    expect([address, family]).toEqual(['127.0.0.1', 4]);
  });

  it('fails when the name resolves to nothing', async () => {
    const empty = guardedLookup(policy, { lookup: fixedLookup([]) as LookupFunction });
    const error = await new Promise<unknown>((resolve) => {
      (empty as unknown as (h: string, o: object, cb: (e: Error | null) => void) => void)('x.test', { all: true }, resolve);
    });
    expect(error).toBeInstanceOf(BlockedAddressError);
  });
});

describe('IP literal hosts', () => {
  const policy = createAddressPolicy({ allow: ['127.0.0.1/32'] });
  it('recognises literals, bracketed or not', () => {
    expect(ipLiteralOf('127.0.0.1')).toBe('127.0.0.1');
    expect(ipLiteralOf('[::1]')).toBe('::1');
    expect(ipLiteralOf('::1')).toBe('::1');
    expect(ipLiteralOf('example.org')).toBeUndefined();
  });
  it('checks literals against the policy and leaves names to the lookup', () => {
    expect(() => assertHostAllowed(policy, '127.0.0.1')).not.toThrow();
    expect(() => assertHostAllowed(policy, '127.0.0.2')).toThrow(BlockedAddressError);
    expect(() => assertHostAllowed(policy, '[::1]')).toThrow(/loopback/);
    expect(() => assertHostAllowed(policy, 'example.org')).not.toThrow();
  });
});
