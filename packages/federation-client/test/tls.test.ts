import { createAddressPolicy } from '@hsmedia/net-guard';
import { RemoteMediaError } from '@hsmedia/media-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FederationClient, type FederationClientOptions, type SrvResolver } from '../src/index.js';
import {
  closedPort,
  failureOf,
  INLINE_BODY,
  loopbackLookup,
  MULTIPART_TYPE,
  ORIGIN,
  readText,
  signingKey,
  startRemote,
  TEST_CA,
  verifySignature,
  type ScriptedRemote,
} from './helpers.js';

// A real HTTPS remote on 127.0.0.1 with a certificate for remote.test,
// matrix.remote.test and IP 127.0.0.1, signed by a throwaway test CA.
// Host names resolve to 127.0.0.1 through an injected lookup; DNS is never asked.

const V1 = '/_matrix/federation/v1/media/download/abc';
const REQUEST = { mediaId: 'abc', maxBytes: 1024, timeoutMs: 20_000 } as const;

let remote: ScriptedRemote;
let wellKnownDown: string;
let client: FederationClient;

function makeClient(overrides: Partial<FederationClientOptions>): FederationClient {
  return new FederationClient({
    serverName: ORIGIN,
    signingKey,
    addressPolicy: createAddressPolicy({ allow: ['127.0.0.1/32'] }),
    lookup: loopbackLookup(),
    wellKnownUrl: (host) => `${wellKnownDown}/${host}`,
    resolver: { resolveSrv: () => Promise.reject(Object.assign(new Error('none'), { code: 'ENOTFOUND' })) },
    ca: TEST_CA,
    ...overrides,
  });
}

function srvTo(port: number): SrvResolver {
  return {
    resolveSrv: (name: string) =>
      name === '_matrix-fed._tcp.remote.test' || name === '_matrix-fed._tcp.other.test'
        ? Promise.resolve([{ name: 'hs.example.net', port, priority: 0, weight: 0 }])
        : Promise.reject(Object.assign(new Error('none'), { code: 'ENOTFOUND' })),
  };
}

beforeAll(async () => {
  remote = await startRemote({ tls: true });
  remote.routes.set(V1, (_req, res) => {
    res.writeHead(200, { 'Content-Type': MULTIPART_TYPE });
    res.end(INLINE_BODY);
  });
  wellKnownDown = `http://127.0.0.1:${await closedPort()}`;
});
afterAll(async () => {
  await remote.close();
});
afterEach(() => {
  client?.close();
  remote.seen.length = 0;
});

describe('TLS', () => {
  it('verifies certificates by default: an untrusted CA is unreachable', async () => {
    client = new FederationClient({
      serverName: ORIGIN,
      signingKey,
      addressPolicy: createAddressPolicy({ allow: ['127.0.0.1/32'] }),
      destinations: { 'remote.test': remote.base },
    });
    const error = await failureOf(client.fetchMedia({ ...REQUEST, serverName: 'remote.test' }));
    expect(error).toBeInstanceOf(RemoteMediaError);
    expect(error).toMatchObject({ code: 'unreachable' });
    expect((error as Error).message).toMatch(/certificate/i);
    expect(remote.seen).toHaveLength(0);
  });

  it('trusts an extra CA; an IP destination is verified against the IP and sends no SNI', async () => {
    client = makeClient({ destinations: { 'remote.test': remote.base } });
    const media = await client.fetchMedia({ ...REQUEST, serverName: 'remote.test' });
    expect(await readText(media.body)).toBe('Hello, world!\n');
    expect(remote.seen[0]!.servername).toBeFalsy();
  });

  it('SRV delegation: connects to the SRV target, but Host, SNI and certificate use the server name', async () => {
    client = makeClient({ resolver: srvTo(remote.port) });
    const media = await client.fetchMedia({ ...REQUEST, serverName: 'remote.test' });
    expect(await readText(media.body)).toBe('Hello, world!\n');
    const [seen] = remote.seen;
    expect(seen!.servername).toBe('remote.test');
    expect(seen!.headers.host).toBe('remote.test');
    expect(verifySignature(seen!, 'remote.test')).toBe(true);
  });

  it('tries the next SRV target when one is unreachable', async () => {
    const down = await closedPort();
    client = makeClient({
      resolver: {
        resolveSrv: (name: string) =>
          name === '_matrix-fed._tcp.remote.test'
            ? Promise.resolve([
                { name: 'down.example.net', port: down, priority: 0, weight: 0 },
                { name: 'up.example.net', port: remote.port, priority: 5, weight: 0 },
              ])
            : Promise.reject(Object.assign(new Error('none'), { code: 'ENOTFOUND' })),
      },
    });
    const media = await client.fetchMedia({ ...REQUEST, serverName: 'remote.test' });
    expect(await readText(media.body)).toBe('Hello, world!\n');
    expect(remote.seen[0]!.servername).toBe('remote.test');
  });

  it('refuses a certificate that is not valid for the server name (DNS is not trusted to delegate)', async () => {
    client = makeClient({ resolver: srvTo(remote.port) });
    const error = await failureOf(client.fetchMedia({ ...REQUEST, serverName: 'other.test' }));
    expect(error).toMatchObject({ code: 'unreachable' });
    expect((error as Error).message).toMatch(/altnames|other\.test/);
    expect(remote.seen).toHaveLength(0);
  });

  it('well-known delegation with a port: SNI and certificate for the delegated name, destination stays the original', async () => {
    const wk = await startRemote();
    try {
      wk.routes.set('/example.org', (_req, res) => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ 'm.server': `matrix.remote.test:${remote.port}` }));
      });
      client = makeClient({ wellKnownUrl: (host) => `${wk.base}/${host}` });
      const media = await client.fetchMedia({ ...REQUEST, serverName: 'example.org' });
      expect(await readText(media.body)).toBe('Hello, world!\n');
      const [seen] = remote.seen;
      expect(seen!.servername).toBe('matrix.remote.test');
      expect(seen!.headers.host).toBe(`matrix.remote.test:${remote.port}`);
      expect(verifySignature(seen!, 'example.org')).toBe(true);
    } finally {
      await wk.close();
    }
  });
});
