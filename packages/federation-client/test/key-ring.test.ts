import { createAddressPolicy } from '@hsmedia/net-guard';
import { buildServerKeysResponse, generateSigningKey, KeyRing } from '@hsmedia/signing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FederationClient } from '../src/index.js';
import { failureOf, json, ORIGIN, signingKey, startRemote, type ScriptedRemote } from './helpers.js';

// The signing package's KeyRing fetching keys through this client's
// discovery and SSRF-guarded transport.

let remote: ScriptedRemote;
const remoteKey = generateSigningKey('remote1');

beforeAll(async () => {
  remote = await startRemote();
  remote.routes.set('/_matrix/key/v2/server', (_req, res) =>
    json(res, 200, buildServerKeysResponse({ serverName: 'remote.test', signingKeys: remoteKey, validUntilTs: Date.now() + 3_600_000 })),
  );
  remote.routes.set('/_matrix/key/v2/query', (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => json(res, 200, { server_keys: [], echoed: JSON.parse(body) as unknown }));
  });
});
afterAll(async () => {
  await remote.close();
});

describe('keyRingOptions', () => {
  it('lets KeyRing fetch a server key over the guarded transport', async () => {
    const client = new FederationClient({
      serverName: ORIGIN,
      signingKey,
      addressPolicy: createAddressPolicy({ allow: ['127.0.0.1/32'] }),
      destinations: { 'remote.test': remote.base },
    });
    try {
      const ring = new KeyRing(client.keyRingOptions());
      const key = await ring.getVerifyKey('remote.test', remoteKey.keyId);
      expect(key.asymmetricKeyType).toBe('ed25519');
      expect(remote.seen.at(-1)!.url).toBe('/_matrix/key/v2/server');
    } finally {
      client.close();
    }
  });

  it('sends POST bodies (notary queries) and returns the answer as a Response', async () => {
    const client = new FederationClient({
      serverName: ORIGIN,
      signingKey,
      addressPolicy: createAddressPolicy({ allow: ['127.0.0.1/32'] }),
      destinations: { 'notary.test': remote.base },
    });
    try {
      const { resolveServer, fetch } = client.keyRingOptions();
      const base = await resolveServer('notary.test');
      expect(base).toBe('matrix-federation://notary.test');
      const response = await fetch(`${base}/_matrix/key/v2/query`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ server_keys: { 'remote.test': {} } }),
      });
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ server_keys: [], echoed: { server_keys: { 'remote.test': {} } } });
      expect(await failureOf(fetch('https://elsewhere.example/x', {}))).toBeInstanceOf(TypeError);
    } finally {
      client.close();
    }
  });

  it('keeps the SSRF guard: a refused address fails the key fetch', async () => {
    const client = new FederationClient({
      serverName: ORIGIN,
      signingKey,
      addressPolicy: createAddressPolicy(),
      destinations: { 'remote.test': remote.base },
    });
    try {
      const before = remote.seen.length;
      const ring = new KeyRing(client.keyRingOptions());
      expect(await failureOf(ring.getVerifyKey('remote.test', remoteKey.keyId))).toMatchObject({ name: 'SignatureError' });
      expect(remote.seen.length).toBe(before);
    } finally {
      client.close();
    }
  });
});
