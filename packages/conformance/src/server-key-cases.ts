import type { ServerKeyStore, StoredServerKey } from '@hsmedia/signing';
import { describe, expect, it, type TestContext } from 'vitest';

const OTHER_SERVER = 'other.example.com:8448';

function serverKey(overrides: Partial<StoredServerKey> = {}): StoredServerKey {
  return {
    serverName: OTHER_SERVER,
    keyId: 'ed25519:abc',
    publicKey: 'VGhpcyBpcyBub3QgYSByZWFsIGtleSwganVzdCAzMiBieXRlcw',
    validUntilTs: 1_800_000_000_000,
    fetchedAt: 1_700_000_000_000,
    ...overrides,
  };
}

const byKeyId = (a: StoredServerKey, b: StoredServerKey): number => (a.keyId < b.keyId ? -1 : a.keyId > b.keyId ? 1 : 0);

/**
 * Cases for `@hsmedia/signing`'s {@link ServerKeyStore} (`getServerKeys`,
 * `putServerKeys`), run by `describeServerKeyStore` and, for stores that
 * also keep server keys, `describeMetadataStore` (which skips them otherwise).
 */
export function describeServerKeyCases(subject: (context: TestContext) => ServerKeyStore): void {
  describe('server keys', () => {
    it('answers [] for a server with no keys', async (context) => {
      const store = subject(context);
      expect(await store.getServerKeys(OTHER_SERVER)).toEqual([]);
    });

    it('stores several keys per server and keeps servers apart', async (context) => {
      const store = subject(context);
      const keys = [
        serverKey({ keyId: 'ed25519:a' }),
        serverKey({ keyId: 'ed25519:b', publicKey: 'b'.repeat(43) }),
        serverKey({ serverName: 'third.example', keyId: 'ed25519:a', publicKey: 'c'.repeat(43) }),
      ];
      await store.putServerKeys(keys);
      expect((await store.getServerKeys(OTHER_SERVER)).sort(byKeyId)).toEqual([keys[0], keys[1]]);
      expect(await store.getServerKeys('third.example')).toEqual([keys[2]]);
    });

    it('upserts by (serverName, keyId)', async (context) => {
      const store = subject(context);
      await store.putServerKeys([serverKey({ keyId: 'ed25519:a' }), serverKey({ keyId: 'ed25519:b' })]);
      const refreshed = serverKey({
        keyId: 'ed25519:a',
        publicKey: 'UmVmcmVzaGVkIGtleSBtYXRlcmlhbCBmb3IgdGhlIHRlc3Q',
        validUntilTs: 1_900_000_000_000,
        fetchedAt: 1_750_000_000_000,
      });
      await store.putServerKeys([refreshed]);
      const got = (await store.getServerKeys(OTHER_SERVER)).sort(byKeyId);
      expect(got).toEqual([refreshed, serverKey({ keyId: 'ed25519:b' })]);
    });

    it('keeps numbers as numbers and accepts an empty batch', async (context) => {
      const store = subject(context);
      await store.putServerKeys([]);
      const key = serverKey({ validUntilTs: Number.MAX_SAFE_INTEGER, fetchedAt: 0 });
      await store.putServerKeys([key]);
      const [got] = await store.getServerKeys(OTHER_SERVER);
      expect(got).toEqual(key);
      expect(typeof got?.validUntilTs).toBe('number');
      expect(typeof got?.fetchedAt).toBe('number');
    });
  });
}
