import { createRequire } from 'node:module';
import fc from 'fast-check';
import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { canonicalValue } from '../test/arbitraries.js';
import { vectors } from '../test/vectors.js';
import { decodeBase64, encodeUnpaddedBase64 } from './base64.js';
import { isSignatureError } from './errors.js';
import { signedBytes, signJson, verifyJsonSignatures, type SignableObject } from './sign-json.js';
import { generateSigningKey, signingKeyFromSeed } from './signing-key.js';

const anotherJson = createRequire(import.meta.url)('another-json') as { stringify(value: unknown): string };
const key = signingKeyFromSeed(vectors.seed_b64, '1');
const pair = nacl.sign.keyPair.fromSeed(decodeBase64(vectors.seed_b64));

async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return isSignatureError(error) ? error.code : error;
  }
  return undefined;
}

// https://spec.matrix.org/v1.12/appendices/#json-signing (cryptographic test vectors)
describe('signJson: spec vectors', () => {
  it.each(vectors.spec_json_signing.map((v) => [JSON.stringify(v.input), v] as const))('%s', async (_name, v) => {
    const signed = signJson(v.input, 'domain', key);
    expect(signed.signatures).toEqual({ domain: { 'ed25519:1': v.sig } });
    expect(await verifyJsonSignatures(signed, 'domain', { 'ed25519:1': key.publicKey })).toEqual(['ed25519:1']);
    expect(v.input).not.toHaveProperty('signatures');
  });

  // A https://spec.matrix.org/v1.12/server-server-api/#get_matrixkeyv2server answer signed with
  // the test key of https://spec.matrix.org/v1.12/appendices/#signing-key
  it('reproduces the key server response derived from the spec test key', async () => {
    const { signatures, ...unsigned } = vectors.derived_key_response;
    expect(signJson(unsigned, 'domain', key).signatures).toEqual(signatures);
    await verifyJsonSignatures(vectors.derived_key_response, 'domain', { 'ed25519:1': key.publicKey });
  });
});

describe('signJson: signatures and unsigned', () => {
  it('leaves unsigned and existing signatures out of the signed bytes, and merges signatures', async () => {
    const other = generateSigningKey('other');
    const base = { a: 1, unsigned: { age: 5 }, signatures: { 'x.example': { 'ed25519:z': 'abc' } } };
    const signed = signJson(signJson(base, 'domain', key), 'domain', other);
    expect(Buffer.from(signedBytes(signed)).toString()).toBe('{"a":1}');
    expect(signed.unsigned).toEqual({ age: 5 });
    expect(signed.signatures['x.example']).toEqual({ 'ed25519:z': 'abc' });
    expect(Object.keys(signed.signatures['domain'] ?? {})).toEqual(['ed25519:1', 'ed25519:other']);
    const changedUnsigned = { ...signed, unsigned: { age: 99 } };
    expect(await verifyJsonSignatures(changedUnsigned, 'domain', { 'ed25519:1': key.publicKey })).toEqual(['ed25519:1']);
  });

  it('fails for a missing entity, unsupported algorithms only, unknown keys and tampering', async () => {
    const signed = signJson({ a: 1 }, 'domain', key);
    const keys = { 'ed25519:1': key.publicKey };
    expect(await failure(verifyJsonSignatures(signed, 'elsewhere', keys))).toBe('MISSING_SIGNATURE');
    expect(await failure(verifyJsonSignatures({ a: 1, signatures: { domain: { 'curve:1': 'x' } } }, 'domain', keys))).toBe(
      'MISSING_SIGNATURE',
    );
    expect(await failure(verifyJsonSignatures(signed, 'domain', {}))).toBe('UNKNOWN_KEY');
    expect(await failure(verifyJsonSignatures({ ...signed, a: 2 }, 'domain', keys))).toBe('BAD_SIGNATURE');
    // Any known key that fails verification fails the object, even if another verifies.
    const two: SignableObject = {
      ...signed,
      signatures: { domain: { ...signed.signatures['domain'], 'ed25519:2': signed.signatures['domain']?.['ed25519:1'] ?? '' } },
    };
    const keys2 = { ...keys, 'ed25519:2': generateSigningKey().publicKey };
    expect(await failure(verifyJsonSignatures(two, 'domain', keys2))).toBe('BAD_SIGNATURE');
    // An unknown extra key is ignored when a known one verifies.
    expect(await verifyJsonSignatures(two, 'domain', keys)).toEqual(['ed25519:1']);
  });

  it('treats a lookup that throws SignatureError as an unknown key', async () => {
    const signed = signJson({ a: 1 }, 'domain', key);
    const { SignatureError } = await import('./errors.js');
    const lookup = (): never => {
      throw new SignatureError('KEY_FETCH_FAILED', 'down');
    };
    expect(await failure(verifyJsonSignatures(signed, 'domain', lookup))).toBe('UNKNOWN_KEY');
  });
});

describe('signJson cross-checked with tweetnacl + another-json', () => {
  it('agrees on random objects, both ways', async () => {
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.string({ maxLength: 8 }), canonicalValue, { maxKeys: 5 }), async (object) => {
        const { signatures: _s, unsigned: _u, ...rest } = object;
        const bytes = new TextEncoder().encode(String(anotherJson.stringify(rest)));
        const theirs = encodeUnpaddedBase64(nacl.sign.detached(bytes, pair.secretKey));
        const signed = signJson(object as SignableObject, 'domain', key);
        expect(signed.signatures['domain']?.['ed25519:1']).toBe(theirs);
        const mine = decodeBase64(signed.signatures['domain']?.['ed25519:1'] ?? '');
        expect(nacl.sign.detached.verify(bytes, mine, pair.publicKey)).toBe(true);
        await verifyJsonSignatures({ ...rest, signatures: { domain: { 'ed25519:1': theirs } } }, 'domain', {
          'ed25519:1': key.publicKey,
        });
      }),
      { numRuns: 300 },
    );
  });
});
