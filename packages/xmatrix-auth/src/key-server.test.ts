import { readFileSync } from 'node:fs';
import { generateSigningKey, signingKeyFromSeed, validateServerKeysResponse, verifyJsonSignatures } from '@hsmedia/signing';
import Koa from 'koa';
import { afterEach, describe, expect, it } from 'vitest';
import { listen, rawRequest, renderErrors, type Listening } from '../test/helpers.js';
import { createKeyServer, type KeyServerOptions } from './key-server.js';

const vectors = JSON.parse(readFileSync(new URL('../test/fixtures/signing-vectors.json', import.meta.url), 'utf8')) as {
  seed_b64: string;
  derived_key_response: Record<string, unknown> & { valid_until_ts: number };
};
const specKey = signingKeyFromSeed(vectors.seed_b64, '1');
const DAY = 86_400_000;

let server: Listening | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(options: KeyServerOptions): Promise<Listening> {
  const app = new Koa();
  app.use(renderErrors());
  app.use(createKeyServer(options));
  app.use((ctx) => {
    ctx.body = 'next';
  });
  server = await listen(app);
  return server;
}

describe('createKeyServer', () => {
  // https://spec.matrix.org/v1.12/server-server-api/#get_matrixkeyv2server, signed with the test key of
  // https://spec.matrix.org/v1.12/appendices/#signing-key
  it('serves the derived vector body exactly', async () => {
    const validUntil = vectors.derived_key_response.valid_until_ts;
    const { port } = await start({ serverName: 'domain', signingKey: specKey, validityMs: DAY, now: () => validUntil - DAY });
    const res = await rawRequest(port, { path: '/_matrix/key/v2/server' });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.json).toEqual(vectors.derived_key_response);
  });

  it('serves the spec test-key body for valid_until_ts 1700000000000', async () => {
    const { port } = await start({ serverName: 'domain', signingKey: specKey, validityMs: DAY, now: () => 1_700_000_000_000 - DAY });
    const res = await rawRequest(port, { path: '/_matrix/key/v2/server' });
    expect(res.json).toMatchObject({
      signatures: {
        domain: {
          'ed25519:1': 'ewq/uPhfAzmWSa/3PRlr5Q0W59jG75Wtb6mzxIELuVRAxYMHOeMFue6fNXijZkIwLLembQ0+gl7DIkiUGcoUBg',
        },
      },
    });
  });

  it('publishes old keys, self-signs with every current key, and passes the checks a fetcher makes', async () => {
    const a = generateSigningKey('a');
    const b = generateSigningKey('b');
    const old = generateSigningKey('old');
    const now = 1_800_000_000_000;
    const { port } = await start({
      serverName: 'me.example:8448',
      signingKey: [a, b],
      oldVerifyKeys: [{ keyId: old.keyId, publicKey: old.publicKey, expiredTs: now - DAY }],
      now: () => now,
    });
    const body = (await rawRequest(port, { path: '/_matrix/key/v2/server' })).json as Record<string, unknown>;
    expect(body['old_verify_keys']).toEqual({ [old.keyId]: { key: old.publicKey, expired_ts: now - DAY } });
    expect(body['valid_until_ts']).toBe(now + DAY);
    expect(await verifyJsonSignatures(body, 'me.example:8448', { [a.keyId]: a.publicKey, [b.keyId]: b.publicKey })).toEqual([
      a.keyId,
      b.keyId,
    ]);
    const validated = await validateServerKeysResponse(body, { serverName: 'me.example:8448', now });
    expect(validated.verifyKeys.map((k) => k.keyId)).toEqual([a.keyId, b.keyId]);
  });

  it('re-signs once half the validity has passed', async () => {
    let t = 1_800_000_000_000;
    const { port } = await start({ serverName: 'me.example', signingKey: specKey, validityMs: 2 * 3_600_000, now: () => t });
    const first = (await rawRequest(port, { path: '/_matrix/key/v2/server' })).json as { valid_until_ts: number };
    t += 3_599_999;
    expect(((await rawRequest(port, { path: '/_matrix/key/v2/server' })).json as typeof first).valid_until_ts).toBe(first.valid_until_ts);
    t += 1;
    expect(((await rawRequest(port, { path: '/_matrix/key/v2/server' })).json as typeof first).valid_until_ts).toBe(t + 2 * 3_600_000);
  });

  it('passes other paths on, and answers other methods with 405 M_UNRECOGNIZED', async () => {
    const { port } = await start({ serverName: 'me.example', signingKey: specKey });
    expect((await rawRequest(port, { path: '/_matrix/key/v2/query' })).body).toBe('next');
    const post = await rawRequest(port, { method: 'POST', path: '/_matrix/key/v2/server' });
    expect(post.status).toBe(405);
    expect(post.headers['allow']).toBe('GET, HEAD');
    expect(post.json).toMatchObject({ errcode: 'M_UNRECOGNIZED' });
    expect((await rawRequest(port, { method: 'HEAD', path: '/_matrix/key/v2/server' })).status).toBe(200);
  });

  it('validates its options', () => {
    expect(() => createKeyServer({ serverName: 'bad name', signingKey: specKey })).toThrow(TypeError);
    expect(() => createKeyServer({ serverName: 'a.example', signingKey: [] })).toThrow(TypeError);
    expect(() => createKeyServer({ serverName: 'a.example', signingKey: specKey, validityMs: 1000 })).toThrow(RangeError);
  });
});
