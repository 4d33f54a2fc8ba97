import { afterEach, describe, expect, it } from 'vitest';
import { sendJson, startServer, type TestServer } from '../test/http.js';
import { isSignatureError, SignatureError } from './errors.js';
import { KeyRing, type KeyRingOptions } from './key-ring.js';
import { MemoryServerKeyStore } from './server-key-store.js';
import { buildServerKeysResponse, MAX_KEY_VALIDITY_MS } from './server-keys.js';
import { signJson, type SignableObject } from './sign-json.js';
import { generateSigningKey, type SigningKey } from './signing-key.js';

const HOUR = 3_600_000;
const T0 = 1_800_000_000_000;

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

class Clock {
  t = T0;
  readonly now = (): number => this.t;
}

/** A key server for `name` whose response the test can change. */
async function keyServer(name: string, key: SigningKey, body?: (clock: number) => unknown): Promise<TestServer> {
  const server = await startServer((req, _body, res) => {
    if (req.url !== '/_matrix/key/v2/server') return sendJson(res, { errcode: 'M_UNRECOGNIZED' }, 404);
    sendJson(res, body ? body(T0) : buildServerKeysResponse({ serverName: name, signingKeys: key, validUntilTs: T0 + 24 * HOUR }));
  });
  servers.push(server);
  return server;
}

function ring(map: Record<string, string>, clock: Clock, extra: Partial<KeyRingOptions> = {}): KeyRing {
  return new KeyRing({
    resolveServer: (name) => {
      const url = map[name];
      return url === undefined ? Promise.reject(new Error(`no route to ${name}`)) : Promise.resolve(url);
    },
    now: clock.now,
    ...extra,
  });
}

async function codeOf(promise: Promise<unknown>): Promise<{ code?: string; cause?: string }> {
  try {
    await promise;
  } catch (error) {
    if (!isSignatureError(error)) throw error;
    const cause = error.cause;
    return { code: error.code, ...(isSignatureError(cause) ? { cause: cause.code } : {}) };
  }
  return {};
}

describe('KeyRing over HTTP', () => {
  it('fetches a key once, then serves it from memory and from the shared store', async () => {
    const key = generateSigningKey();
    const origin = await keyServer('origin.test', key);
    const clock = new Clock();
    const store = new MemoryServerKeyStore();
    const keyRing = ring({ 'origin.test': origin.baseUrl }, clock, { store });
    const found = await keyRing.getVerifyKey('origin.test', key.keyId);
    expect(found.asymmetricKeyType).toBe('ed25519');
    await keyRing.getVerifyKey('origin.test', key.keyId);
    expect(origin.requests).toHaveLength(1);
    expect(await store.getServerKeys('origin.test')).toEqual([
      { serverName: 'origin.test', keyId: key.keyId, publicKey: key.publicKey, validUntilTs: T0 + 24 * HOUR, fetchedAt: T0 },
    ]);
    // Another instance (or a restart) sharing the store does not fetch.
    await ring({ 'origin.test': origin.baseUrl }, clock, { store }).getVerifyKey('origin.test', key.keyId);
    expect(origin.requests).toHaveLength(1);
  });

  it('refetches when the origin rotates to a key we have not seen, keeping the old one until it expires', async () => {
    const first = generateSigningKey('one');
    const second = generateSigningKey('two');
    let current = first;
    const origin = await keyServer('o.test', first, () =>
      buildServerKeysResponse({ serverName: 'o.test', signingKeys: current, validUntilTs: T0 + HOUR }),
    );
    const keyRing = ring({ 'o.test': origin.baseUrl }, new Clock());
    await keyRing.getVerifyKey('o.test', first.keyId);
    current = second;
    await keyRing.getVerifyKey('o.test', second.keyId);
    await keyRing.getVerifyKey('o.test', first.keyId);
    expect(origin.requests).toHaveLength(2);
  });

  it('makes one fetch for concurrent lookups of one origin', async () => {
    const key = generateSigningKey();
    const origin = await keyServer('origin.test', key);
    const keyRing = ring({ 'origin.test': origin.baseUrl }, new Clock());
    await Promise.all(Array.from({ length: 20 }, () => keyRing.getVerifyKey('origin.test', key.keyId)));
    expect(origin.requests).toHaveLength(1);
  });

  it('rejects a key server that lies about its server_name, and remembers the failure briefly', async () => {
    const key = generateSigningKey();
    const liar = await keyServer('liar.test', key, () =>
      buildServerKeysResponse({ serverName: 'liar.test', signingKeys: key, validUntilTs: T0 + HOUR }),
    );
    const clock = new Clock();
    const keyRing = ring({ 'victim.test': liar.baseUrl }, clock, { failureTtlMs: 60_000 });
    expect(await codeOf(keyRing.getVerifyKey('victim.test', key.keyId))).toEqual({ code: 'UNKNOWN_KEY', cause: 'KEY_FETCH_FAILED' });
    await Promise.all(Array.from({ length: 10 }, () => codeOf(keyRing.getVerifyKey('victim.test', key.keyId))));
    expect(liar.requests).toHaveLength(1);
    clock.t += 60_001;
    await codeOf(keyRing.getVerifyKey('victim.test', key.keyId));
    expect(liar.requests).toHaveLength(2);
  });

  it.each([
    ['unsigned', (key: SigningKey) => ({ ...buildServerKeysResponse({ serverName: 'o.test', signingKeys: key, validUntilTs: T0 + HOUR }), signatures: {} })],
    [
      'signed by a key not in verify_keys',
      (key: SigningKey) => {
        const { signatures: _s, ...body } = buildServerKeysResponse({ serverName: 'o.test', signingKeys: key, validUntilTs: T0 + HOUR });
        return signJson(body, 'o.test', generateSigningKey(key.version));
      },
    ],
    [
      'tampered after signing',
      (key: SigningKey) => ({ ...buildServerKeysResponse({ serverName: 'o.test', signingKeys: key, validUntilTs: T0 + HOUR }), valid_until_ts: T0 + 2 * HOUR }),
    ],
    ['expired', (key: SigningKey) => buildServerKeysResponse({ serverName: 'o.test', signingKeys: key, validUntilTs: T0 - 1 })],
    ['a float valid_until_ts', (key: SigningKey) => ({ ...buildServerKeysResponse({ serverName: 'o.test', signingKeys: key, validUntilTs: T0 + HOUR }), valid_until_ts: T0 + 0.5 })],
    ['not JSON', () => '<html>'],
    ['a JSON array', () => []],
  ])('rejects a key response that is %s', async (_name, make) => {
    const key = generateSigningKey();
    const origin = await keyServer('o.test', key, () => make(key));
    const keyRing = ring({ 'o.test': origin.baseUrl }, new Clock());
    expect(await codeOf(keyRing.getVerifyKey('o.test', key.keyId))).toEqual({ code: 'UNKNOWN_KEY', cause: 'KEY_FETCH_FAILED' });
  });

  it('rejects non-200 answers, oversized bodies and unreachable servers', async () => {
    const key = generateSigningKey();
    const broken = await startServer((_req, _body, res) => sendJson(res, { errcode: 'M_UNKNOWN' }, 500));
    const huge = await startServer((_req, _body, res) => sendJson(res, { pad: 'x'.repeat(5000) }));
    servers.push(broken, huge);
    const keyRing = ring({ 'a.test': broken.baseUrl, 'b.test': huge.baseUrl }, new Clock(), { maxResponseBytes: 1000 });
    expect(await codeOf(keyRing.getVerifyKey('a.test', key.keyId))).toEqual({ code: 'UNKNOWN_KEY', cause: 'KEY_FETCH_FAILED' });
    expect(await codeOf(keyRing.getVerifyKey('b.test', key.keyId))).toEqual({ code: 'UNKNOWN_KEY', cause: 'KEY_FETCH_FAILED' });
    expect(await codeOf(keyRing.getVerifyKey('c.test', key.keyId))).toEqual({ code: 'UNKNOWN_KEY', cause: 'KEY_FETCH_FAILED' });
  });

  it('refetches an expired key and refuses it when the server still serves it expired', async () => {
    const key = generateSigningKey();
    const origin = await keyServer('o.test', key, () =>
      buildServerKeysResponse({ serverName: 'o.test', signingKeys: key, validUntilTs: T0 + HOUR }),
    );
    const clock = new Clock();
    const keyRing = ring({ 'o.test': origin.baseUrl }, clock);
    await keyRing.getVerifyKey('o.test', key.keyId);
    clock.t = T0 + HOUR + 1;
    expect(await codeOf(keyRing.getVerifyKey('o.test', key.keyId))).toEqual({ code: 'UNKNOWN_KEY', cause: 'KEY_FETCH_FAILED' });
    expect(origin.requests).toHaveLength(2);
  });

  it('caps validity at 7 days and never uses old_verify_keys', async () => {
    const key = generateSigningKey('new');
    const old = generateSigningKey('old');
    const origin = await keyServer('o.test', key, () =>
      buildServerKeysResponse({
        serverName: 'o.test',
        signingKeys: key,
        oldVerifyKeys: [{ keyId: old.keyId, publicKey: old.publicKey, expiredTs: T0 - HOUR }],
        validUntilTs: T0 + 365 * 24 * HOUR,
      }),
    );
    const store = new MemoryServerKeyStore();
    const keyRing = ring({ 'o.test': origin.baseUrl }, new Clock(), { store });
    await keyRing.getVerifyKey('o.test', key.keyId);
    expect((await store.getServerKeys('o.test')).map((k) => [k.keyId, k.validUntilTs])).toEqual([
      [key.keyId, T0 + MAX_KEY_VALIDITY_MS],
    ]);
    expect(await codeOf(keyRing.getVerifyKey('o.test', old.keyId))).toEqual({ code: 'UNKNOWN_KEY', cause: 'UNKNOWN_KEY' });
  });

  it('refuses bad server names and non-ed25519 key IDs without fetching', async () => {
    const keyRing = ring({}, new Clock());
    expect(await codeOf(keyRing.getVerifyKey('bad name', 'ed25519:1'))).toEqual({ code: 'INVALID_SERVER_NAME' });
    expect(await codeOf(keyRing.getVerifyKey('o.test', 'curve25519:1'))).toEqual({ code: 'UNKNOWN_KEY' });
  });

  it('asks a notary when the origin is down, checking both signatures', async () => {
    const originKey = generateSigningKey();
    const notaryKey = generateSigningKey();
    const signedByOrigin = buildServerKeysResponse({ serverName: 'o.test', signingKeys: originKey, validUntilTs: T0 + HOUR });
    let notaryBody: (req: unknown) => unknown = () => ({ server_keys: [signJson(signedByOrigin, 'notary.test', notaryKey)] });
    const notary = await startServer((req, body, res) => {
      if (req.method !== 'POST' || req.url !== '/_matrix/key/v2/query') return sendJson(res, {}, 404);
      sendJson(res, notaryBody(JSON.parse(body)));
    });
    const down = await startServer((_req, _body, res) => sendJson(res, {}, 502));
    servers.push(notary, down);
    const notaries = [{ serverName: 'notary.test', verifyKeys: { [notaryKey.keyId]: notaryKey.publicKey } }];
    const clock = new Clock();
    const keyRing = ring({ 'o.test': down.baseUrl, 'notary.test': notary.baseUrl }, clock, { notaries });
    await keyRing.getVerifyKey('o.test', originKey.keyId);
    expect(JSON.parse(notary.requests[0]?.body ?? '')).toEqual({
      server_keys: { 'o.test': { [originKey.keyId]: { minimum_valid_until_ts: T0 } } },
    });

    // Not signed by the notary, or not validly signed by the origin: refused.
    notaryBody = () => ({ server_keys: [signedByOrigin] });
    const again = ring({ 'o.test': down.baseUrl, 'notary.test': notary.baseUrl }, clock, { notaries });
    expect(await codeOf(again.getVerifyKey('o.test', originKey.keyId))).toEqual({ code: 'UNKNOWN_KEY', cause: 'KEY_FETCH_FAILED' });
    const forged: SignableObject = { ...signedByOrigin, valid_until_ts: T0 + 2 * HOUR };
    notaryBody = () => ({ server_keys: [signJson(forged, 'notary.test', notaryKey)] });
    const third = ring({ 'o.test': down.baseUrl, 'notary.test': notary.baseUrl }, clock, { notaries });
    expect(await codeOf(third.getVerifyKey('o.test', originKey.keyId))).toEqual({ code: 'UNKNOWN_KEY', cause: 'KEY_FETCH_FAILED' });
  });

  it('propagates the caller abort without cancelling the shared fetch', async () => {
    const key = generateSigningKey();
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const slow = await startServer(async (_req, _body, res) => {
      await gate;
      sendJson(res, buildServerKeysResponse({ serverName: 's.test', signingKeys: key, validUntilTs: T0 + HOUR }));
    });
    servers.push(slow);
    const keyRing = ring({ 's.test': slow.baseUrl }, new Clock());
    const controller = new AbortController();
    const aborted = keyRing.getVerifyKey('s.test', key.keyId, { signal: controller.signal });
    const patient = keyRing.getVerifyKey('s.test', key.keyId);
    controller.abort(new Error('client went away'));
    await expect(aborted).rejects.toThrow('client went away');
    release();
    await expect(patient).resolves.toBeDefined();
    expect(slow.requests).toHaveLength(1);
  });

  it('validates its options', () => {
    expect(() => new KeyRing({ resolveServer: undefined as never })).toThrow(TypeError);
    expect(() => new KeyRing({ resolveServer: async () => '', failureTtlMs: 0 })).toThrow(RangeError);
    expect(() => new KeyRing({ resolveServer: async () => '', notaries: [{ serverName: 'n.test', verifyKeys: { 'ed25519:x': 'Zm9v' } }] })).toThrow(
      SignatureError,
    );
  });
});
